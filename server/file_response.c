/* server/file_response.h. */
#include "server/file_response.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int hp_parse_range(const char *h, int64_t size, int64_t *off, int64_t *len)
{
    if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
        return 0; /* absent, another unit, or several ranges: the whole file (RFC 9110 allows) */
    const char *p = h + 6;
    char *end;
    if (*p == '-') { /* the last N bytes */
        if (p[1] < '0' || p[1] > '9')
            return 0;
        errno = 0;
        long long n = strtoll(p + 1, &end, 10);
        if (errno || *end || n <= 0)
            return n == 0 && !errno && !*end ? -1 : 0;
        if (size == 0)
            return -1;
        *len = n < size ? n : size;
        *off = size - *len;
        return 1;
    }
    if (*p < '0' || *p > '9')
        return 0;
    errno = 0;
    long long a = strtoll(p, &end, 10);
    if (errno || *end != '-')
        return 0;
    const char *q = end + 1;
    long long b = size - 1;
    if (*q) {
        if (*q < '0' || *q > '9')
            return 0;
        b = strtoll(q, &end, 10);
        if (errno || *end || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    if (b >= size)
        b = size - 1;
    *off = a;
    *len = b - a + 1;
    return 1;
}

void hp_respond_path(hp_request *r, const char *path, const char *content_type)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "the file is not there");
        return;
    }
    char etag[96];
    snprintf(etag, sizeof etag, "\"%llx-%llx-%llx\"", (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL + st.st_mtim.tv_nsec);
    hp_respond_header(r, "ETag", etag);
    hp_respond_header(r, "Accept-Ranges", "bytes");
    const char *inm = hp_request_header(r, "If-None-Match");
    if (inm && (strstr(inm, etag) || !strcmp(inm, "*"))) {
        close(fd);
        hp_respond_text(r, 304, NULL, "", 0);
        return;
    }
    int64_t off = 0, len = st.st_size;
    int k = hp_parse_range(hp_request_header(r, "Range"), st.st_size, &off, &len);
    if (k < 0) {
        close(fd);
        char cr[64];
        snprintf(cr, sizeof cr, "bytes */%lld", (long long)st.st_size);
        hp_respond_header(r, "Content-Range", cr);
        hp_respond_problem(r, HP_PROB_RANGE, "Range", "the file has %lld bytes",
                           (long long)st.st_size);
        return;
    }
    if (k > 0) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)off, (long long)(off + len - 1),
                 (long long)st.st_size);
        hp_respond_header(r, "Content-Range", cr);
    }
    hp_respond_file(r, k > 0 ? 206 : 200, content_type, fd, off, len);
}
