/* Standard Webhooks signatures (https://www.standardwebhooks.com): the signed content is
 * "<webhook-id>.<webhook-timestamp>.<body>", signed with HMAC-SHA256 under the secret's bytes
 * (the base64 after "whsec_"), sent as "webhook-signature: v1,<base64 signature>". */
#ifndef HP_SERVER_WEBHOOK_H
#define HP_SERVER_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

/* `out` receives "v1,<base64>" (at least 64 bytes). */
hp_status hp_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp,
                          const char *body, size_t body_len, char *out, size_t out_n,
                          hp_error *err);

#endif
