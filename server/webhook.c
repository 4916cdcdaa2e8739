/* server/webhook.h, with OpenSSL's HMAC. */
#include "server/webhook.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ids.h"

hp_status hp_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp,
                          const char *body, size_t body_len, char *out, size_t out_n,
                          hp_error *err)
{
    if (strncmp(secret, "whsec_", 6) != 0)
        return hp_error_set(err, HP_ERR_INVALID, "webhook secret without the whsec_ prefix");
    uint8_t key[128];
    size_t kn = 0;
    hp_error sub = {0};
    if (hp_base64_decode(secret + 6, key, sizeof key, &kn, &sub) != HP_OK || kn == 0)
        return hp_error_set(err, HP_ERR_INVALID, "webhook secret is not base64");
    char head[128];
    int hn = snprintf(head, sizeof head, "%s.%lld.", msg_id, (long long)timestamp);
    char *content = malloc((size_t)hn + body_len);
    if (!content)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    memcpy(content, head, (size_t)hn);
    memcpy(content + hn, body, body_len);
    uint8_t mac[32];
    unsigned mlen = 0;
    uint8_t *ok = HMAC(EVP_sha256(), key, (int)kn, (const uint8_t *)content, (size_t)hn + body_len,
                       mac, &mlen);
    free(content);
    if (!ok || mlen != 32)
        return hp_error_set(err, HP_ERR_INVALID, "HMAC failed");
    char *b64 = hp_base64_encode(mac, 32);
    if (!b64)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    int w = snprintf(out, out_n, "v1,%s", b64);
    free(b64);
    if (w < 0 || (size_t)w >= out_n)
        return hp_error_set(err, HP_ERR_INVALID, "signature buffer too small");
    return HP_OK;
}
