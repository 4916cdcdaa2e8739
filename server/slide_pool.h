/* Open slides of the tile server, by job id. Opening a whole-slide image (parsing its TIFF
 * directories, OpenSlide's index) costs far more than reading one tile, so handles stay open
 * while tiles are asked for, up to a bound; the least recently used unreferenced handle is
 * closed first. A handle is read by many request threads at once (hp_slide_read_region is
 * thread-safe) and closed only when no request holds it. Thread-safe. */
#ifndef HP_SERVER_SLIDE_POOL_H
#define HP_SERVER_SLIDE_POOL_H

#include "common/status.h"
#include "io/slide.h"
#include "server/deepzoom.h"

typedef struct hp_slide_pool hp_slide_pool;

typedef struct {
    hp_slide *slide;
    hp_dz_layout dz;  /* the slide's Deep Zoom layout */
    double mpp_x, mpp_y; /* 0 when the slide does not say */
} hp_pooled_slide;

/* A pool keeping at most `max_open` slides open (at least 1). NULL when out of memory. */
hp_slide_pool *hp_slide_pool_create(int max_open);
/* Closes every slide; no request may hold one. */
void hp_slide_pool_destroy(hp_slide_pool *p);

/* The open slide of `key` (a job id), opening `path` when it is not open. Release it with
 * hp_slide_pool_release. NULL when the slide cannot be opened (err says why). */
hp_pooled_slide *hp_slide_pool_acquire(hp_slide_pool *p, const char *key, const char *path,
                                       hp_error *err);
void hp_slide_pool_release(hp_slide_pool *p, hp_pooled_slide *s);

#endif
