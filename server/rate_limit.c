/* server/rate_limit.h: an open-addressing table of buckets keyed by token id. Tokens are few
 * (one per lab system or person), so the table grows rarely and is never pruned. */
#include "server/rate_limit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char key[48];
    double tokens, last;
} bucket;

struct hp_rate_limiter {
    pthread_mutex_t mu;
    double rate, burst;
    bucket *b;
    size_t cap, n;
};

hp_rate_limiter *hp_rate_limiter_create(double rate)
{
    hp_rate_limiter *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = rate * 2 > 1 ? rate * 2 : 1;
    rl->cap = 64;
    if (!(rl->b = calloc(rl->cap, sizeof *rl->b))) {
        free(rl);
        return NULL;
    }
    pthread_mutex_init(&rl->mu, NULL);
    return rl;
}

void hp_rate_limiter_destroy(hp_rate_limiter *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->mu);
    free(rl->b);
    free(rl);
}

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static bucket *find(hp_rate_limiter *rl, const char *key)
{
    size_t i = hash(key) & (rl->cap - 1);
    while (rl->b[i].key[0] && strcmp(rl->b[i].key, key))
        i = (i + 1) & (rl->cap - 1);
    return &rl->b[i];
}

static int grow(hp_rate_limiter *rl)
{
    bucket *old = rl->b;
    size_t oc = rl->cap;
    bucket *nb = calloc(oc * 2, sizeof *nb);
    if (!nb)
        return -1;
    rl->b = nb;
    rl->cap = oc * 2;
    for (size_t i = 0; i < oc; i++)
        if (old[i].key[0])
            *find(rl, old[i].key) = old[i];
    free(old);
    return 0;
}

int hp_rate_limiter_take(hp_rate_limiter *rl, const char *key, double now_s)
{
    if (!rl || rl->rate <= 0)
        return 0;
    int wait = 0;
    pthread_mutex_lock(&rl->mu);
    if (rl->n * 2 >= rl->cap && grow(rl) != 0) {
        pthread_mutex_unlock(&rl->mu);
        return 0; /* out of memory: never refuse a client for our own failure */
    }
    bucket *b = find(rl, key);
    if (!b->key[0]) {
        strncpy(b->key, key, sizeof b->key - 1);
        b->tokens = rl->burst;
        b->last = now_s;
        rl->n++;
    }
    b->tokens += (now_s - b->last) * rl->rate;
    if (b->tokens > rl->burst)
        b->tokens = rl->burst;
    b->last = now_s;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else {
        wait = (int)ceil((1 - b->tokens) / rl->rate);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}
