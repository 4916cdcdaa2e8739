/* Reader threads filling a bounded ring of batch buffers in grid order (see tile_loader.h).
 *
 * Work is handed out tile by tile, in kept-tile order, under one mutex: a reader claims the next
 * tile, and when that tile starts a new batch it first takes a free buffer for the batch (waiting
 * if all are filling, ready or held). Because batches are opened in order and a tile's place in
 * its buffer depends only on its index, the bytes never depend on which thread read what. The
 * mutex is held only for bookkeeping, never across a read (a read takes milliseconds). */
#include "pipeline/tile_loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/image.h"
#include "io/slide.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct {
    hp_tile_batch batch;
    int state;
    int done; /* tiles finished in this batch */
} slot;

typedef struct {
    hp_tile_loader *l;
    int id;
    pthread_t thread;
    int started;
    uint8_t *scratch;
    hp_tile_thread_stats stats; /* under l->mu */
} reader;

struct hp_tile_loader {
    hp_slide *slide;
    const hp_tile_grid *grid;
    int batch_size, n_threads, n_slots;
    int reduce; /* tiles decoded at 1/reduce (hp_tile_reduction), 1: full size */
    int64_t reads0[HP_SLIDE_READ_KINDS]; /* the slide's read counts at create */
    int64_t n_batches;
    size_t batch_bytes, tile_bytes;
    hp_tile_allocator alloc;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* a buffer was released, or stop/failure */
    pthread_cond_t ready_cv; /* a batch became ready, or failure */
    slot *slots;
    reader *readers;
    int64_t next_tile;    /* next kept tile to claim */
    int64_t opened;       /* batches given a buffer so far */
    int filling;          /* slot of the newest opened batch */
    int64_t next_deliver; /* batch hp_tile_loader_next returns next */
    int stop, failed;
    double wait_seconds;
    hp_error err;
};

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *default_alloc(size_t bytes, void *user) { return malloc(bytes); }
static void default_free(void *p, void *user) { free(p); }

int hp_tile_reduction(hp_slide *slide, const hp_tile_grid *grid)
{
    int side = grid->read_w < grid->read_h ? grid->read_w : grid->read_h;
    int max = hp_slide_reduced_max(slide, grid->level), d = 1;
    while (d * 2 <= max && side >= d * 2 * grid->tile_size)
        d *= 2;
    /* Only where every read falls on whole reduced pixels: a read shifted by part of one would
     * move the tile by up to half an output pixel, which on real tissue changes more than the
     * decoding itself (a few grey levels against a tenth of one). */
    double ds = grid->level_downsample;
    for (; d > 1; d /= 2) {
        int ok = grid->read_w % d == 0 && grid->read_h % d == 0;
        for (int64_t k = 0; k < grid->n_tiles && ok; k++) {
            double lx = (double)grid->tiles[k].x0 / ds, ly = (double)grid->tiles[k].y0 / ds;
            ok = lx == floor(lx) && ly == floor(ly) && (int64_t)lx % d == 0 && (int64_t)ly % d == 0;
        }
        if (ok)
            break;
    }
    return d;
}

/* Reads tile `tile` into out: directly when the read is the tile's size, else into scratch and
 * resampled; with reduce > 1 the read is decoded at 1/reduce and resampled from there. */
static hp_status read_tile(hp_slide *slide, const hp_tile_grid *g, const hp_tile *tile, int reduce,
                           uint8_t *scratch, uint8_t *out, int *resample_failed, double *t_read)
{
    int direct = g->read_w == g->tile_size && g->read_h == g->tile_size;
    uint8_t *dst = direct ? out : scratch;
    *resample_failed = 0;
    if (!dst)
        return HP_ERR_INVALID;
    double t0 = now_seconds();
    hp_status st = reduce > 1 ? hp_slide_read_region_reduced(slide, g->level, tile->x0, tile->y0,
                                                             g->read_w, g->read_h, reduce, dst)
                              : hp_slide_read_region(slide, g->level, tile->x0, tile->y0,
                                                     g->read_w, g->read_h, dst);
    *t_read = now_seconds() - t0;
    if (st != HP_OK || direct)
        return st;
    st = hp_image_resize_rgb8(scratch, g->read_w / reduce, g->read_h / reduce, out, g->tile_size,
                              g->tile_size);
    *resample_failed = st != HP_OK;
    return st;
}

hp_status hp_tile_read(hp_slide *slide, const hp_tile_grid *grid, const hp_tile *tile,
                       uint8_t *scratch, uint8_t *out)
{
    int rf = 0;
    double t = 0;
    return read_tile(slide, grid, tile, hp_tile_reduction(slide, grid), scratch, out, &rf, &t);
}

hp_status hp_tile_read_full(hp_slide *slide, const hp_tile_grid *grid, const hp_tile *tile,
                            uint8_t *scratch, uint8_t *out)
{
    int rf = 0;
    double t = 0;
    return read_tile(slide, grid, tile, 1, scratch, out, &rf, &t);
}

/* Records the first failure and wakes everyone: readers stop, the consumer returns the error.
 * Called with l->mu held. */
static void fail_locked(hp_tile_loader *l, hp_status code, const char *msg)
{
    hp_error_set(&l->err, code, "%s", msg);
    l->failed = 1;
    pthread_cond_broadcast(&l->work_cv);
    pthread_cond_broadcast(&l->ready_cv);
}

static int free_slot_locked(hp_tile_loader *l)
{
    for (int s = 0; s < l->n_slots; s++)
        if (l->slots[s].state == SLOT_FREE)
            return s;
    return -1;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    hp_tile_loader *l = r->l;
    const hp_tile_grid *g = l->grid;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        if (l->stop || l->failed || l->next_tile >= g->n_tiles)
            break;
        int64_t t = l->next_tile;
        if (t / l->batch_size == l->opened) {
            int s = free_slot_locked(l);
            if (s < 0) {
                pthread_cond_wait(&l->work_cv, &l->mu);
                continue;
            }
            slot *sl = &l->slots[s];
            int64_t first = l->opened * l->batch_size;
            int64_t left = g->n_tiles - first;
            sl->state = SLOT_FILLING;
            sl->done = 0;
            sl->batch.batch_index = l->opened;
            sl->batch.first = first;
            sl->batch.count = left < l->batch_size ? (int)left : l->batch_size;
            sl->batch.tiles = g->tiles + first;
            if (sl->batch.count < l->batch_size) /* the short last batch: a zero tail, always */
                memset(sl->batch.rgb + (size_t)sl->batch.count * l->tile_bytes, 0,
                       (size_t)(l->batch_size - sl->batch.count) * l->tile_bytes);
            l->filling = s;
            l->opened++;
        }
        int s = l->filling;
        l->next_tile++;
        uint8_t *out = l->slots[s].batch.rgb + (size_t)(t % l->batch_size) * l->tile_bytes;
        pthread_mutex_unlock(&l->mu);

        const hp_tile *tile = &g->tiles[t];
        double t0 = now_seconds(), t_read = 0;
        int resample_failed = 0;
        hp_status st = read_tile(l->slide, g, tile, l->reduce, r->scratch, out, &resample_failed,
                                 &t_read);
        double t2 = now_seconds(), t1 = t0 + t_read;

        pthread_mutex_lock(&l->mu);
        r->stats.read_seconds += t1 - t0;
        r->stats.resample_seconds += t2 - t1;
        if (st != HP_OK) {
            char msg[HP_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "tile %lld (column %d, row %d, level-0 %lld,%lld) of %s: %s",
                     (long long)t, tile->i, tile->j, (long long)tile->x0, (long long)tile->y0,
                     hp_slide_path(l->slide),
                     resample_failed ? "resampling failed (out of memory)"
                                     : hp_slide_error(l->slide));
            fail_locked(l, st, msg);
            break;
        }
        r->stats.tiles++;
        r->stats.bytes_read += (int64_t)(g->read_w / l->reduce) * (g->read_h / l->reduce) * 3;
        slot *sl = &l->slots[s];
        if (++sl->done == sl->batch.count) {
            sl->state = SLOT_READY;
            pthread_cond_broadcast(&l->ready_cv);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

hp_status hp_tile_loader_create(hp_slide *slide, const hp_tile_grid *grid, int batch_size,
                                int n_threads, int queue_depth, const hp_tile_loader_options *opt,
                                hp_tile_loader **out, hp_error *err)
{
    *out = NULL;
    if (!slide || !grid)
        return hp_error_set(err, HP_ERR_INVALID, "tile loader: no slide or no grid");
    if (batch_size < 1 || batch_size > 65536)
        return hp_error_set(err, HP_ERR_INVALID, "tile loader: batch size %d outside 1..65536",
                            batch_size);
    if (queue_depth < 1 || queue_depth > 64)
        return hp_error_set(err, HP_ERR_INVALID, "tile loader: queue depth %d outside 1..64",
                            queue_depth);
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n < 1 ? 1 : n > 256 ? 256 : (int)n;
    }
    if (n_threads > 256)
        return hp_error_set(err, HP_ERR_INVALID, "tile loader: %d threads (at most 256)",
                            n_threads);
    if (grid->tile_size < 1 || grid->tile_size > HP_TILE_SIZE_MAX || grid->read_w < 1 ||
        grid->read_h < 1 || grid->read_w > HP_TILE_READ_SIDE_MAX ||
        grid->read_h > HP_TILE_READ_SIDE_MAX || grid->n_tiles < 0 ||
        (grid->n_tiles > 0 && !grid->tiles))
        return hp_error_set(err, HP_ERR_INVALID, "tile loader: the grid is malformed");
    size_t tile_bytes = (size_t)grid->tile_size * grid->tile_size * 3;
    if ((double)tile_bytes * batch_size * queue_depth > 64.0 * 1024 * 1024 * 1024)
        return hp_error_set(err, HP_ERR_INVALID,
                            "tile loader: %d buffers of %d tiles of %d px exceed 64 GiB",
                            queue_depth, batch_size, grid->tile_size);

    hp_tile_loader *l = calloc(1, sizeof *l);
    if (!l)
        return hp_error_set(err, HP_ERR_NOMEM, "tile loader: out of memory");
    l->slide = slide;
    l->grid = grid;
    l->batch_size = batch_size;
    l->n_threads = n_threads;
    l->tile_bytes = tile_bytes;
    l->batch_bytes = tile_bytes * (size_t)batch_size;
    l->n_batches = (grid->n_tiles + batch_size - 1) / batch_size;
    l->n_slots = l->n_batches < queue_depth ? (int)l->n_batches : queue_depth;
    l->reduce = opt && opt->full_decode ? 1 : hp_tile_reduction(slide, grid);
    hp_slide_read_counts(slide, l->reads0, HP_SLIDE_READ_KINDS);
    l->alloc.alloc = default_alloc;
    l->alloc.free = default_free;
    if (opt && opt->allocator.alloc) {
        l->alloc = opt->allocator;
        if (!l->alloc.free)
            l->alloc.free = default_free;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work_cv, NULL);
    pthread_cond_init(&l->ready_cv, NULL);
    hp_status st = HP_ERR_NOMEM;
    l->slots = calloc((size_t)(l->n_slots ? l->n_slots : 1), sizeof *l->slots);
    l->readers = calloc((size_t)n_threads, sizeof *l->readers);
    if (!l->slots || !l->readers)
        goto fail;
    for (int s = 0; s < l->n_slots; s++) {
        l->slots[s].batch.rgb = l->alloc.alloc(l->batch_bytes, l->alloc.user);
        if (!l->slots[s].batch.rgb) {
            hp_error_set(err, HP_ERR_NOMEM, "tile loader: cannot allocate a %zu-byte batch buffer",
                         l->batch_bytes);
            goto fail;
        }
    }
    int direct = grid->read_w == grid->tile_size && grid->read_h == grid->tile_size;
    for (int t = 0; t < n_threads; t++) {
        reader *r = &l->readers[t];
        r->l = l;
        r->id = t;
        if (!direct && !(r->scratch = malloc((size_t)grid->read_w * grid->read_h * 3)))
            goto fail;
    }
    for (int t = 0; t < n_threads; t++) {
        if (pthread_create(&l->readers[t].thread, NULL, reader_main, &l->readers[t]) != 0) {
            st = HP_ERR_NOMEM;
            hp_error_set(err, st, "tile loader: cannot start reader thread %d", t);
            goto fail;
        }
        l->readers[t].started = 1;
    }
    *out = l;
    return HP_OK;

fail:
    hp_error_set(err, st, "tile loader: out of memory");
    hp_tile_loader_destroy(l);
    return st;
}

hp_status hp_tile_loader_next(hp_tile_loader *l, hp_tile_batch **batch)
{
    *batch = NULL;
    pthread_mutex_lock(&l->mu);
    double t0 = now_seconds();
    hp_status st = HP_OK;
    while (!l->failed && l->next_deliver < l->n_batches) {
        int found = -1, held = 0;
        for (int s = 0; s < l->n_slots; s++) {
            if (l->slots[s].state == SLOT_READY &&
                l->slots[s].batch.batch_index == l->next_deliver)
                found = s;
            held += l->slots[s].state == SLOT_HELD;
        }
        if (found >= 0) {
            l->slots[found].state = SLOT_HELD;
            l->next_deliver++;
            *batch = &l->slots[found].batch;
            break;
        }
        if (held == l->n_slots) {
            /* The readers have no buffer to fill: waiting would never end. */
            char msg[160];
            snprintf(msg, sizeof msg,
                     "tile loader: all %d batch buffers are held; release one before asking for "
                     "the next batch",
                     l->n_slots);
            fail_locked(l, HP_ERR_INVALID, msg);
            break;
        }
        pthread_cond_wait(&l->ready_cv, &l->mu);
    }
    if (l->failed) {
        st = l->err.code;
        *batch = NULL;
    }
    l->wait_seconds += now_seconds() - t0;
    pthread_mutex_unlock(&l->mu);
    return st;
}

void hp_tile_loader_release(hp_tile_loader *l, hp_tile_batch *batch)
{
    if (!l || !batch)
        return;
    pthread_mutex_lock(&l->mu);
    for (int s = 0; s < l->n_slots; s++)
        if (&l->slots[s].batch == batch && l->slots[s].state == SLOT_HELD) {
            l->slots[s].state = SLOT_FREE;
            pthread_cond_broadcast(&l->work_cv);
        }
    pthread_mutex_unlock(&l->mu);
}

const char *hp_tile_loader_error(hp_tile_loader *l)
{
    return l->err.code == HP_OK ? "" : l->err.msg;
}

void hp_tile_loader_stats_get(hp_tile_loader *l, hp_tile_loader_stats *stats,
                              hp_tile_thread_stats *per_thread)
{
    memset(stats, 0, sizeof *stats);
    pthread_mutex_lock(&l->mu);
    stats->n_threads = l->n_threads;
    stats->reduce = l->reduce;
    hp_slide_read_counts(l->slide, stats->reads, HP_SLIDE_READ_KINDS);
    for (int k = 0; k < HP_SLIDE_READ_KINDS; k++)
        stats->reads[k] -= l->reads0[k];
    stats->wait_seconds = l->wait_seconds;
    for (int t = 0; t < l->n_threads; t++) {
        const hp_tile_thread_stats *r = &l->readers[t].stats;
        stats->total.tiles += r->tiles;
        stats->total.bytes_read += r->bytes_read;
        stats->total.read_seconds += r->read_seconds;
        stats->total.resample_seconds += r->resample_seconds;
        if (per_thread)
            per_thread[t] = *r;
    }
    pthread_mutex_unlock(&l->mu);
}

int64_t hp_tile_loader_batch_count(const hp_tile_loader *l) { return l->n_batches; }

void hp_tile_loader_destroy(hp_tile_loader *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->work_cv);
    pthread_cond_broadcast(&l->ready_cv);
    pthread_mutex_unlock(&l->mu);
    if (l->readers) {
        for (int t = 0; t < l->n_threads; t++) {
            if (l->readers[t].started)
                pthread_join(l->readers[t].thread, NULL);
            free(l->readers[t].scratch);
        }
    }
    if (l->slots)
        for (int s = 0; s < l->n_slots; s++)
            if (l->slots[s].batch.rgb)
                l->alloc.free(l->slots[s].batch.rgb, l->alloc.user);
    pthread_cond_destroy(&l->work_cv);
    pthread_cond_destroy(&l->ready_cv);
    pthread_mutex_destroy(&l->mu);
    free(l->slots);
    free(l->readers);
    free(l);
}
