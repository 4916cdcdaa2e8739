/* server/tile_cache.h: a hash table (open hashing) over a doubly linked recency list. */
#include "server/tile_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 4096

typedef struct entry {
    struct entry *prev, *next;  /* recency: head is the most recent */
    struct entry *chain;        /* bucket chain */
    char *key;
    uint8_t *data;
    size_t n;
    char etag[40];
} entry;

struct hp_tile_cache {
    pthread_mutex_t mu;
    size_t max_bytes, bytes, entries;
    uint64_t hits, misses;
    entry *head, *tail;
    entry *buckets[N_BUCKETS];
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % N_BUCKETS;
}

hp_tile_cache *hp_tile_cache_create(size_t max_bytes)
{
    hp_tile_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    return c;
}

static void unlink_lru(hp_tile_cache *c, entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(hp_tile_cache *c, entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    c->head = e;
    if (!c->tail)
        c->tail = e;
}

static entry **find(hp_tile_cache *c, const char *key)
{
    entry **p = &c->buckets[hash(key)];
    while (*p && strcmp((*p)->key, key) != 0)
        p = &(*p)->chain;
    return p;
}

static void drop(hp_tile_cache *c, entry *e)
{
    entry **p = find(c, e->key);
    if (*p == e)
        *p = e->chain;
    unlink_lru(c, e);
    c->bytes -= e->n;
    c->entries--;
    free(e->key);
    free(e->data);
    free(e);
}

void hp_tile_cache_destroy(hp_tile_cache *c)
{
    if (!c)
        return;
    while (c->head)
        drop(c, c->head);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int hp_tile_cache_get(hp_tile_cache *c, const char *key, uint8_t **data, size_t *n,
                      char etag[40])
{
    int found = 0;
    pthread_mutex_lock(&c->mu);
    entry *e = *find(c, key);
    if (e && (*data = malloc(e->n ? e->n : 1))) {
        memcpy(*data, e->data, e->n);
        *n = e->n;
        memcpy(etag, e->etag, 40);
        unlink_lru(c, e);
        push_front(c, e);
        found = 1;
    }
    if (found)
        c->hits++;
    else
        c->misses++;
    pthread_mutex_unlock(&c->mu);
    return found;
}

void hp_tile_cache_put(hp_tile_cache *c, const char *key, const uint8_t *data, size_t n,
                       const char *etag)
{
    if (n > c->max_bytes)
        return;
    entry *e = calloc(1, sizeof *e);
    if (!e || !(e->key = strdup(key)) || !(e->data = malloc(n ? n : 1))) {
        if (e)
            free(e->key);
        free(e);
        return;
    }
    memcpy(e->data, data, n);
    e->n = n;
    strncpy(e->etag, etag, sizeof e->etag - 1);
    pthread_mutex_lock(&c->mu);
    entry *old = *find(c, key);
    if (old)
        drop(c, old);
    while (c->tail && c->bytes + n > c->max_bytes)
        drop(c, c->tail);
    entry **p = find(c, key);
    *p = e;
    push_front(c, e);
    c->bytes += n;
    c->entries++;
    pthread_mutex_unlock(&c->mu);
}

void hp_tile_cache_stats(hp_tile_cache *c, size_t *entries, size_t *bytes, uint64_t *hits,
                         uint64_t *misses)
{
    pthread_mutex_lock(&c->mu);
    *entries = c->entries, *bytes = c->bytes, *hits = c->hits, *misses = c->misses;
    pthread_mutex_unlock(&c->mu);
}
