/* RFC 4180 records and whole text files for the evaluation readers (eval/eval_csv.h). */
#include "eval/eval_csv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hp_eval_csv_record(const char **p, char **fields, int max)
{
    const char *s = *p;
    int n = 0;
    for (;;) {
        char buf[4096];
        size_t len = 0;
        if (*s == '"') {
            s++;
            for (;;) {
                if (!*s)
                    return -1;
                if (*s == '"') {
                    if (s[1] == '"') {
                        if (len + 1 < sizeof buf)
                            buf[len++] = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                if (len + 1 < sizeof buf)
                    buf[len++] = *s;
                s++;
            }
            if (*s && *s != ',' && *s != '\n' && *s != '\r')
                return -1;
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r') {
                if (len + 1 < sizeof buf)
                    buf[len++] = *s;
                s++;
            }
        }
        buf[len] = 0;
        if (n < max)
            fields[n] = strdup(buf);
        n++;
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s == '\n')
            s++;
        break;
    }
    *p = s;
    return n;
}

char *hp_eval_read_text(const char *path, hp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 131072;
            if (cap > (size_t)256 << 20) {
                hp_error_set(err, HP_ERR_INVALID, "%s: larger than 256 MB", path);
                goto fail;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                hp_error_set(err, HP_ERR_NOMEM, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, 65536, f);
        len += r;
        if (r < 65536)
            break;
    }
    if (ferror(f)) {
        hp_error_set(err, HP_ERR_IO, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    buf[len] = 0;
    if (strlen(buf) != len) {
        hp_error_set(err, HP_ERR_INVALID, "%s: not a text file (it holds a NUL byte)", path);
        free(buf);
        return NULL;
    }
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

