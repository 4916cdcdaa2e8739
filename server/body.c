/* server/body.h. */
#include "server/body.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/utf8.h"
#include "server/service_internal.h"

/* A route that takes no body still tolerates a small one ("{}" from a generic client). */
#define NONE_BODY_MAX 65536

static int content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (!ct || strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == 0 || ct[n] == ';' || ct[n] == ' ';
}

static int64_t body_limit(const hp_request *r)
{
    switch (r->route->body) {
    case HP_BODY_JSON:
        return r->svc->cfg.max_body;
    case HP_BODY_UPLOAD:
        return r->svc->cfg.max_upload;
    default:
        return NONE_BODY_MAX;
    }
}

static int is_sha256_hex(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

void hp_body_precheck(hp_request *r)
{
    const char *ct = hp_request_header(r, "Content-Type");
    const char *cl = hp_request_header(r, "Content-Length");
    int64_t limit = body_limit(r);
    if (cl) {
        char *end;
        errno = 0;
        long long v = strtoll(cl, &end, 10);
        if (!errno && *end == 0 && v > limit) {
            hp_respond_problem(r, HP_PROB_TOO_LARGE, NULL,
                               "the body has %lld bytes; this endpoint takes at most %lld", v,
                               (long long)limit);
            return;
        }
    }
    if (r->route->body == HP_BODY_JSON && ct && !content_type_is(ct, "application/json")) {
        hp_respond_problem(r, HP_PROB_MEDIA_TYPE, NULL, "send the body as application/json");
        return;
    }
    if (r->route->body != HP_BODY_UPLOAD)
        return;
    if (!content_type_is(ct, "application/octet-stream")) {
        hp_respond_problem(r, HP_PROB_MEDIA_TYPE, NULL,
                           "send the slide's bytes as application/octet-stream");
        return;
    }
    if (!is_sha256_hex(r->params[0])) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "sha256",
                           "the path ends in the file's SHA-256: 64 lower-case hex digits");
        return;
    }
    hp_service_path(r->svc, r->upload_tmp, sizeof r->upload_tmp, "uploads/.incoming-XXXXXX");
    r->upload_fd = mkstemp(r->upload_tmp);
    if (r->upload_fd < 0) {
        fprintf(stderr, "upload: cannot create a temporary file in the data folder: %s\n",
                strerror(errno));
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the upload cannot be stored now");
        return;
    }
    if (!(r->upload_md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(r->upload_md, EVP_sha256(), NULL))
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
}

static void upload_abort(hp_request *r)
{
    if (r->upload_fd >= 0) {
        close(r->upload_fd);
        unlink(r->upload_tmp);
        r->upload_fd = -1;
    }
}

void hp_body_absorb(hp_request *r, const char *data, size_t n)
{
    int64_t limit = body_limit(r);
    if (r->route->body == HP_BODY_UPLOAD) {
        if (r->upload_len + (int64_t)n > limit) {
            upload_abort(r);
            hp_respond_problem(r, HP_PROB_TOO_LARGE, NULL,
                               "the upload is larger than --max-upload (%lld bytes)",
                               (long long)limit);
            return;
        }
        EVP_DigestUpdate(r->upload_md, data, n);
        for (size_t done = 0; done < n;) {
            ssize_t w = write(r->upload_fd, data + done, n - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                fprintf(stderr, "upload: cannot write: %s\n", strerror(errno));
                upload_abort(r);
                hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the upload cannot be stored now");
                return;
            }
            done += (size_t)w;
        }
        r->upload_len += (int64_t)n;
        return;
    }
    if ((int64_t)(r->body_len + n) > limit) {
        hp_respond_problem(r, HP_PROB_TOO_LARGE, NULL,
                           "the body is larger than this endpoint takes (%lld bytes)",
                           (long long)limit);
        return;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb) {
            hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
            return;
        }
        r->body = nb;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
}

int hp_body_json_check(const char *s, size_t n, int max_depth, char *why, size_t why_n)
{
    size_t bad = hp_utf8_invalid_at(s, n);
    if (bad != (size_t)-1) {
        snprintf(why, why_n, "the body is not valid UTF-8 (byte %zu)", bad);
        return -1;
    }
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
            snprintf(why, why_n, "the body has a control character at byte %zu", i);
            return -1;
        }
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                snprintf(why, why_n, "the JSON nests deeper than %d levels (byte %zu)", max_depth,
                         i);
                return -1;
            }
        } else if (c == ']' || c == '}')
            depth--;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A name given twice in one object makes the JSON ambiguous (parsers keep the first, the last,
 * or both): such a body is refused rather than read one way here and another way elsewhere.
 * Sorting keeps this O(n log n) on objects with many members. Returns the duplicated name, or
 * NULL; -1 in *oom when out of memory. */
static const char *duplicate_name(const cJSON *node, int *oom)
{
    for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
        const char *d = duplicate_name(c, oom);
        if (d || *oom)
            return d;
    }
    if (!cJSON_IsObject(node))
        return NULL;
    size_t n = 0;
    for (const cJSON *c = node->child; c; c = c->next)
        n++;
    if (n < 2)
        return NULL;
    const char **names = malloc(n * sizeof *names);
    if (!names) {
        *oom = 1;
        return NULL;
    }
    size_t k = 0;
    for (const cJSON *c = node->child; c; c = c->next)
        names[k++] = c->string;
    qsort(names, n, sizeof *names, cmp_names);
    const char *dup = NULL;
    for (k = 1; k < n && !dup; k++)
        if (!strcmp(names[k - 1], names[k]))
            dup = names[k];
    free(names);
    return dup;
}

void hp_body_finish(hp_request *r)
{
    if (r->route->body == HP_BODY_UPLOAD) {
        uint8_t d[32];
        char hex[65];
        EVP_DigestFinal_ex(r->upload_md, d, NULL);
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", d[i]);
        if (fsync(r->upload_fd) != 0 || close(r->upload_fd) != 0) {
            r->upload_fd = -1;
            unlink(r->upload_tmp);
            hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the upload cannot be stored now");
            return;
        }
        r->upload_fd = -1;
        if (strcmp(hex, r->params[0]) != 0) {
            unlink(r->upload_tmp);
            hp_respond_problem(r, HP_PROB_VALIDATION, "sha256",
                               "the bytes received hash to %s, not to the SHA-256 in the path "
                               "(a truncated or altered upload)", hex);
        }
        return;
    }
    if (r->route->body != HP_BODY_JSON || r->body_len == 0)
        return;
    char why[160];
    if (hp_body_json_check(r->body, r->body_len, r->svc->cfg.max_json_depth, why, sizeof why)) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL, "%s", why);
        return;
    }
    const char *end = NULL;
    r->json = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (!r->json) {
        size_t at = end && end >= r->body ? (size_t)(end - r->body) : 0;
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL, "the body is not valid JSON (near byte %zu)",
                           at);
        return;
    }
    int oom = 0;
    const char *dup = duplicate_name(r->json, &oom);
    if (dup || oom) {
        hp_respond_problem(r, oom ? HP_PROB_UNAVAILABLE : HP_PROB_BAD_REQUEST, NULL,
                           oom ? "out of memory" : "the body names a member twice in one object");
        return;
    }
    /* Nothing but whitespace may follow the value. */
    for (const char *p = end; p < r->body + r->body_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL,
                               "the body has text after the JSON value (byte %zu)",
                               (size_t)(p - r->body));
            return;
        }
}
