/* server/ids.h over OpenSSL's random generator, SHA-256 and base64. */
#include "server/ids.h"

#include <openssl/rand.h>
#include <string.h>

static const char B32[] = "abcdefghijklmnopqrstuvwxyz234567";

hp_status hp_random_bytes(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? HP_OK : HP_ERR_IO;
}

hp_status hp_id_new(char kind, char *out)
{
    uint8_t r[17];
    if (hp_random_bytes(r, sizeof r) != HP_OK)
        return HP_ERR_IO;
    out[0] = kind;
    out[1] = '_';
    /* 26 characters x 5 bits = 130 bits from 17 random bytes. */
    uint32_t acc = 0;
    int bits = 0, k = 0, o = 2;
    while (o < HP_ID_LEN) {
        if (bits < 5) {
            acc = (acc << 8) | r[k++];
            bits += 8;
        }
        out[o++] = B32[(acc >> (bits - 5)) & 31];
        bits -= 5;
    }
    out[HP_ID_LEN] = 0;
    return HP_OK;
}

int hp_id_valid(char kind, const char *s)
{
    if (!s || strlen(s) != HP_ID_LEN || s[0] != kind || s[1] != '_')
        return 0;
    for (int i = 2; i < HP_ID_LEN; i++)
        if (!strchr(B32, s[i]) || !s[i])
            return 0;
    return 1;
}

void hp_base64url_encode(const void *data, size_t n, char out[65])
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const uint8_t *d = data;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && i < 48; i++) {
        acc = (acc << 8) | d[i];
        bits += 8;
        while (bits >= 6) {
            out[o++] = A[(acc >> (bits - 6)) & 63];
            bits -= 6;
        }
    }
    if (bits > 0)
        out[o++] = A[(acc << (6 - bits)) & 63];
    out[o] = 0;
}
