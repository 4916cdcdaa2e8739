/* SHA-256 over OpenSSL 3: see sha256.h. */
#include "common/sha256.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *b, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        hex[2 * i] = digits[b[i] >> 4];
        hex[2 * i + 1] = digits[b[i] & 15];
    }
    hex[2 * n] = '\0';
}

hp_status hp_sha256(const void *data, size_t len, unsigned char digest[32], char hex[65])
{
    if (!digest || (!data && len))
        return HP_ERR_INVALID;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(len ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        ERR_clear_error();
        if (hex)
            hex[0] = '\0';
        return HP_ERR_INVALID;
    }
    memcpy(digest, md, 32);
    if (hex)
        to_hex(md, 32, hex);
    return HP_OK;
}

hp_status hp_sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char digest[32];
    if (!hex)
        return HP_ERR_INVALID;
    return hp_sha256(data, len, digest, hex);
}

hp_status hp_sha256_file(const char *path, char hex[65], hp_error *err)
{
    if (!path || !hex)
        return hp_error_set(err, HP_ERR_INVALID, "hp_sha256_file: NULL argument");
    hex[0] = '\0';
    hp_status st = HP_OK;
    unsigned char *buf = NULL;
    EVP_MD_CTX *ctx = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open for hashing: %s", path, strerror(errno));
    /* Streamed in blocks: model files can be hundreds of megabytes. */
    enum { BLOCK = 1 << 16 };
    buf = malloc(BLOCK);
    ctx = EVP_MD_CTX_new();
    if (!buf || !ctx) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory hashing", path);
        goto fail;
    }
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        st = hp_error_set(err, HP_ERR_IO, "%s: OpenSSL could not start SHA-256", path);
        goto fail;
    }
    size_t n;
    while ((n = fread(buf, 1, BLOCK, f)) > 0) {
        if (EVP_DigestUpdate(ctx, buf, n) != 1) {
            st = hp_error_set(err, HP_ERR_IO, "%s: OpenSSL SHA-256 update failed", path);
            goto fail;
        }
    }
    if (ferror(f)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: read error while hashing", path);
        goto fail;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32) {
        st = hp_error_set(err, HP_ERR_IO, "%s: OpenSSL SHA-256 final failed", path);
        goto fail;
    }
    to_hex(md, 32, hex);

fail:
    EVP_MD_CTX_free(ctx);
    free(buf);
    fclose(f);
    return st;
}
