/* Decoded TIFF blocks, least recently used first out (see the header). A small open-addressed
 * table would be faster to search, but with a few thousand 192 KB blocks a linear scan of the
 * keys costs microseconds against the milliseconds a JPEG decode takes. */
#include "io/tiff_block_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int level;
    int64_t index; /* -1: empty */
    uint64_t used; /* last use, from the cache's clock */
} slot;

struct hp_block_cache {
    pthread_mutex_t mu;
    size_t block_bytes;
    int n;
    slot *slots;
    uint8_t *data; /* n x block_bytes */
    uint64_t clock;
    int64_t hits, misses;
};

hp_block_cache *hp_block_cache_create(size_t budget_bytes, size_t block_bytes)
{
    if (block_bytes == 0 || budget_bytes / block_bytes < 4)
        return NULL;
    size_t n = budget_bytes / block_bytes;
    if (n > 65536)
        n = 65536;
    hp_block_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = malloc(n * sizeof *c->slots);
    c->data = malloc(n * block_bytes);
    if (!c->slots || !c->data) {
        free(c->slots);
        free(c->data);
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        c->slots[i] = (slot){.level = -1, .index = -1, .used = 0};
    c->n = (int)n;
    c->block_bytes = block_bytes;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void hp_block_cache_destroy(hp_block_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->slots);
    free(c->data);
    free(c);
}

static int find(const hp_block_cache *c, int level, int64_t index)
{
    for (int i = 0; i < c->n; i++)
        if (c->slots[i].index == index && c->slots[i].level == level)
            return i;
    return -1;
}

int hp_block_cache_get(hp_block_cache *c, int level, int64_t index, uint8_t *out)
{
    pthread_mutex_lock(&c->mu);
    int i = find(c, level, index);
    if (i >= 0) {
        c->slots[i].used = ++c->clock;
        memcpy(out, c->data + (size_t)i * c->block_bytes, c->block_bytes);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return i >= 0;
}

void hp_block_cache_put(hp_block_cache *c, int level, int64_t index, const uint8_t *data)
{
    pthread_mutex_lock(&c->mu);
    int i = find(c, level, index); /* another thread may have decoded it meanwhile */
    if (i < 0) {
        i = 0;
        for (int k = 1; k < c->n && c->slots[i].used; k++)
            if (c->slots[k].used < c->slots[i].used)
                i = k;
        c->slots[i].level = level;
        c->slots[i].index = index;
        memcpy(c->data + (size_t)i * c->block_bytes, data, c->block_bytes);
    }
    c->slots[i].used = ++c->clock;
    pthread_mutex_unlock(&c->mu);
}

void hp_block_cache_stats(hp_block_cache *c, int64_t *hits, int64_t *misses)
{
    pthread_mutex_lock(&c->mu);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}
