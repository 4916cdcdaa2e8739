/* The authorize stage: the bearer token (Authorization: Bearer hp_...) looked up by its hash,
 * the route's roles, and the token's request rate. Sets a 401, 403, 429 or 503 response when
 * the request may not go on. */
#ifndef HP_SERVER_AUTH_H
#define HP_SERVER_AUTH_H

#include "server/request.h"

/* 1 authorized (r->token filled when the route needs a token), 0 answered. */
int hp_authorize(hp_request *r);

#endif
