#include "report/json_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "io/read_file.h"
#include "report/signature.h"

static hp_status read_json(const char *path, const char *what, cJSON **root, char sha256_hex[65], char **bytes,
                           size_t *len, hp_error *err)
{
    *root = NULL;
    char *buf;
    size_t n;
    hp_status st = hp_read_file(path, what, HP_JSON_FILE_MAX, HP_READ_NONEMPTY, &buf, &n, err);
    if (st != HP_OK)
        return st;
    if (sha256_hex)
        hp_sha256_hex(buf, n, sha256_hex);
    if (strlen(buf) != n) {
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID, "%s %s: not valid JSON (it holds a NUL byte)", what, path);
    }
    const char *end = NULL;
    cJSON *t = cJSON_ParseWithOpts(buf, &end, 1);
    if (!t) {
        /* Locate the failure by line and column; do not quote the text (it may hold identifiers). */
        size_t off = end && end >= buf && end <= buf + n ? (size_t)(end - buf) : 0;
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= buf && ep <= buf + n)
            off = (size_t)(ep - buf);
        long line = 1, col = 1;
        for (size_t i = 0; i < off; i++) {
            if (buf[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID, "%s %s: not valid JSON (error near line %ld, column %ld)", what,
                            path, line, col);
    }
    /* What cJSON accepts but other readers would read differently, or a signature could not
     * cover: duplicate names, invalid UTF-8, \u0000, numbers out of range. */
    char fault[512];
    if (hp_json_check(buf, n, t, fault, sizeof fault)) {
        cJSON_Delete(t);
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID, "%s %s: %s", what, path, fault);
    }
    *root = t;
    if (bytes) {
        *bytes = buf;
        *len = n;
    } else {
        free(buf);
    }
    return HP_OK;
}

hp_status hp_json_file_read(const char *path, const char *what, cJSON **root, char sha256_hex[65], hp_error *err)
{
    return read_json(path, what, root, sha256_hex, NULL, NULL, err);
}

hp_status hp_json_file_read_bytes(const char *path, const char *what, cJSON **root, char **bytes, size_t *len,
                                  hp_error *err)
{
    if (bytes)
        *bytes = NULL;
    return read_json(path, what, root, NULL, bytes, len, err);
}
