/* The parse stage's body handling: size limits, content types, and the JSON body checked before
 * cJSON sees it (valid UTF-8, nesting depth), or an upload streamed to a temporary file in
 * DIR/uploads while its SHA-256 is computed. */
#ifndef HP_SERVER_BODY_H
#define HP_SERVER_BODY_H

#include <stddef.h>

#include "server/request.h"

/* From the headers alone: Content-Type (415), Content-Length over the limit (413), an upload's
 * temporary file. */
void hp_body_precheck(hp_request *r);
/* One chunk of the body. */
void hp_body_absorb(hp_request *r, const char *data, size_t n);
/* The whole body has arrived: parse the JSON (r->json), or close the upload's file. */
void hp_body_finish(hp_request *r);

/* Checks JSON text before parsing: 0 when acceptable, else -1 with `why` (a sentence) and the
 * byte offset. Exposed for the fuzz harness. */
int hp_body_json_check(const char *s, size_t n, int max_depth, char *why, size_t why_n);

#endif
