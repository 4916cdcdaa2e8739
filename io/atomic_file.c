#include "io/atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

hp_status hp_atomic_open(const char *path, hp_atomic_file *af, hp_error *err)
{
    af->f = NULL;
    size_t n = strlen(path);
    af->tmp = malloc(n + 16);
    if (!af->tmp)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    memcpy(af->tmp, path, n);
    memcpy(af->tmp + n, ".tmp-XXXXXX", 12);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        hp_status st = hp_error_set(err, HP_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                                    path, strerror(errno));
        free(af->tmp);
        af->tmp = NULL;
        return st;
    }
    /* mkstemp makes the file private (0600); outputs are ordinary data files. */
    (void)fchmod(fd, 0644);
    af->f = fdopen(fd, "wb");
    if (!af->f) {
        hp_status st = hp_error_set(err, HP_ERR_IO, "%s: cannot open temporary file: %s", path,
                                    strerror(errno));
        close(fd);
        unlink(af->tmp);
        free(af->tmp);
        af->tmp = NULL;
        return st;
    }
    return HP_OK;
}

hp_status hp_atomic_finish(const char *path, hp_atomic_file *af, int ok, hp_error *err)
{
    hp_status st = HP_OK;
    if (ok && (fflush(af->f) != 0 || fsync(fileno(af->f)) != 0))
        ok = 0;
    if (fclose(af->f) != 0)
        ok = 0;
    if (!ok)
        st = hp_error_set(err, HP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    else if (rename(af->tmp, path) != 0)
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot rename temporary file into place: %s", path,
                          strerror(errno));
    if (st)
        unlink(af->tmp);
    free(af->tmp);
    af->tmp = NULL;
    af->f = NULL;
    return st;
}

hp_status hp_atomic_write_text(const char *path, const char *text, hp_error *err)
{
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, af.f) == n && fputc('\n', af.f) != EOF;
    return hp_atomic_finish(path, &af, ok, err);
}
