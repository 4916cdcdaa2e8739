/* server/slide_pool.h: a short array (max_open is small), searched linearly. */
#include "server/slide_pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    hp_pooled_slide s;
    char key[64];
    int refs;
    uint64_t used;
} slot;

struct hp_slide_pool {
    pthread_mutex_t mu;
    slot *slots;
    int n, max;
    uint64_t clock;
};

hp_slide_pool *hp_slide_pool_create(int max_open)
{
    hp_slide_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max = max_open < 1 ? 1 : max_open;
    if (!(p->slots = calloc((size_t)p->max, sizeof *p->slots))) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void hp_slide_pool_destroy(hp_slide_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        hp_slide_close(p->slots[i].s.slide);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p);
}

#define SLIDE_BLOCK_CACHE_MB 64 /* per open slide */

/* The decoded-tile cache per open slide: SLIDE_BLOCK_CACHE_MB, or $HP_TILE_BLOCK_CACHE_MB (0
 * turns it off, so a benchmark can measure what it gains). */
static size_t block_cache_bytes(void)
{
    const char *e = getenv("HP_TILE_BLOCK_CACHE_MB");
    char *end;
    long mb = e && *e ? strtol(e, &end, 10) : SLIDE_BLOCK_CACHE_MB;
    if (e && *e && (*end || mb < 0 || mb > 4096))
        mb = SLIDE_BLOCK_CACHE_MB;
    return (size_t)mb << 20;
}

static hp_status open_slide(const char *path, hp_pooled_slide *out, hp_error *err)
{
    memset(out, 0, sizeof *out);
    /* Neighbouring Deep Zoom tiles share the slide's JPEG tiles: each is decoded once while it
     * stays among the most recently used (io/tiff_block_cache.h). */
    hp_slide_options opt = {.block_cache_bytes = block_cache_bytes()};
    hp_slide *s = hp_slide_open(path, &opt, err);
    if (!s)
        return err->code ? err->code : HP_ERR_IO;
    int n = hp_slide_level_count(s);
    if (n > HP_DZ_MAX_SLIDE_LEVELS)
        n = HP_DZ_MAX_SLIDE_LEVELS;
    int64_t lw[HP_DZ_MAX_SLIDE_LEVELS], lh[HP_DZ_MAX_SLIDE_LEVELS];
    double ld[HP_DZ_MAX_SLIDE_LEVELS];
    for (int i = 0; i < n; i++) {
        if (hp_slide_level_dimensions(s, i, &lw[i], &lh[i]) != HP_OK) {
            hp_error_set(err, HP_ERR_INVALID, "level %d: %s", i, hp_slide_error(s));
            hp_slide_close(s);
            return HP_ERR_INVALID;
        }
        ld[i] = hp_slide_level_downsample(s, i);
    }
    if (hp_dz_layout_init(&out->dz, n, lw, lh, ld, HP_DZ_TILE, HP_DZ_OVERLAP) != 0) {
        hp_slide_close(s);
        return hp_error_set(err, HP_ERR_INVALID, "the slide has no pixels to lay out as tiles");
    }
    hp_mpp_source src;
    if (hp_slide_mpp(s, &out->mpp_x, &out->mpp_y, &src) != HP_OK || src == HP_MPP_NONE)
        out->mpp_x = out->mpp_y = 0;
    out->slide = s;
    return HP_OK;
}

hp_pooled_slide *hp_slide_pool_acquire(hp_slide_pool *p, const char *key, const char *path,
                                       hp_error *err)
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->slots[i].key, key)) {
            p->slots[i].refs++;
            p->slots[i].used = ++p->clock;
            pthread_mutex_unlock(&p->mu);
            return &p->slots[i].s;
        }
    pthread_mutex_unlock(&p->mu);

    /* Opened outside the lock: other slides keep serving meanwhile. */
    hp_pooled_slide fresh;
    if (open_slide(path, &fresh, err) != HP_OK)
        return NULL;

    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->slots[i].key, key)) { /* another request opened it meanwhile */
            p->slots[i].refs++;
            p->slots[i].used = ++p->clock;
            pthread_mutex_unlock(&p->mu);
            hp_slide_close(fresh.slide);
            return &p->slots[i].s;
        }
    int at = -1;
    if (p->n < p->max) {
        at = p->n++;
    } else {
        for (int i = 0; i < p->n; i++)
            if (p->slots[i].refs == 0 && (at < 0 || p->slots[i].used < p->slots[at].used))
                at = i;
        if (at >= 0)
            hp_slide_close(p->slots[at].s.slide);
    }
    if (at < 0) { /* every slot is being read: serve this request without keeping the slide */
        pthread_mutex_unlock(&p->mu);
        hp_pooled_slide *own = malloc(sizeof *own);
        if (!own) {
            hp_slide_close(fresh.slide);
            hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            return NULL;
        }
        *own = fresh;
        return own;
    }
    slot *s = &p->slots[at];
    s->s = fresh;
    snprintf(s->key, sizeof s->key, "%s", key);
    s->refs = 1;
    s->used = ++p->clock;
    pthread_mutex_unlock(&p->mu);
    return &s->s;
}

void hp_slide_pool_release(hp_slide_pool *p, hp_pooled_slide *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n; i++)
        if (&p->slots[i].s == s) {
            p->slots[i].refs--;
            pthread_mutex_unlock(&p->mu);
            return;
        }
    pthread_mutex_unlock(&p->mu);
    hp_slide_close(s->slide); /* one kept outside the pool */
    free(s);
}
