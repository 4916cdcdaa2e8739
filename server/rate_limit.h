/* Requests per second per token: a token bucket for each token (rate r, burst 2r), kept in
 * memory by each server process. Thread-safe. */
#ifndef HP_SERVER_RATE_LIMIT_H
#define HP_SERVER_RATE_LIMIT_H

typedef struct hp_rate_limiter hp_rate_limiter;

/* rate <= 0: unlimited. NULL when out of memory. */
hp_rate_limiter *hp_rate_limiter_create(double rate);
void hp_rate_limiter_destroy(hp_rate_limiter *rl);

/* Takes one request from `key`'s bucket: 0 allowed, else the seconds to wait (>= 1) before a
 * request would be allowed (the Retry-After value). */
int hp_rate_limiter_take(hp_rate_limiter *rl, const char *key, double now_s);

#endif
