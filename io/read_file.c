/* Whole-file reads (see read_file.h). */
#include "io/read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "N MB" for limits of a megabyte or more, else "N bytes". */
static void limit_text(size_t max, char *out, size_t n)
{
    if (max >= (1u << 20) && max % (1u << 20) == 0)
        snprintf(out, n, "%zu MB", max >> 20);
    else
        snprintf(out, n, "%zu bytes", max);
}

hp_status hp_read_file(const char *path, const char *what, size_t max_bytes, int flags, char **out, size_t *len,
                       hp_error *err)
{
    const char *w = what ? what : "", *sp = what ? " " : "";
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s%s%s: cannot open: %s", w, sp, path, strerror(errno));
    char limit[32];
    limit_text(max_bytes, limit, sizeof limit);
    struct stat st;
    hp_status s = HP_OK;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode))
            s = hp_error_set(err, HP_ERR_INVALID, "%s%s%s: a directory, not a file", w, sp, path);
        else if (S_ISREG(st.st_mode) && (unsigned long long)st.st_size > max_bytes)
            s = hp_error_set(err, HP_ERR_INVALID, "%s%s%s: larger than %s", w, sp, path, limit);
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    /* Reads by chunks rather than trusting st_size: a pipe has none, and a file may grow. */
    while (s == HP_OK) {
        if (n + 65536 + 1 > cap) {
            size_t want = cap ? cap * 2 : 65536 + 1;
            if (want > max_bytes + 65536 + 1)
                want = max_bytes + 65536 + 1;
            char *nb = realloc(buf, want);
            if (!nb) {
                s = hp_error_set(err, HP_ERR_NOMEM, "%s%s%s: out of memory", w, sp, path);
                break;
            }
            buf = nb;
            cap = want;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (n > max_bytes)
            s = hp_error_set(err, HP_ERR_INVALID, "%s%s%s: larger than %s", w, sp, path, limit);
        else if (ferror(f))
            s = hp_error_set(err, HP_ERR_IO, "%s%s%s: read error: %s", w, sp, path, strerror(errno));
        else if (got == 0 || feof(f))
            break;
    }
    fclose(f);
    if (s == HP_OK) {
        buf[n] = '\0';
        if ((flags & HP_READ_NONEMPTY) && n == 0)
            s = hp_error_set(err, HP_ERR_INVALID, "%s%s%s: the file is empty", w, sp, path);
        else if ((flags & HP_READ_TEXT) && strlen(buf) != n)
            s = hp_error_set(err, HP_ERR_INVALID, "%s%s%s: not a text file (it holds a NUL byte)", w, sp, path);
    }
    if (s != HP_OK) {
        free(buf);
        return s;
    }
    *out = buf;
    if (len)
        *len = n;
    return HP_OK;
}
