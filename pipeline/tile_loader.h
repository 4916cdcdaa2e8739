/* The tile loader: reader threads read the grid's kept tiles from a slide, resample them to the
 * model's input size and hand them out in batches, so decoding overlaps inference.
 *
 * Memory is bounded whatever the slide's size: `queue_depth` batch buffers of
 * batch_size x tile x tile x 3 bytes (allocated at create through the caller's allocator, so they
 * may be CUDA pinned memory), plus one read buffer per thread.
 *
 * Order and content are fixed: batch k holds kept tiles k*B .. k*B+B-1 of the grid, whatever the
 * thread count, queue depth or timing, and each tile's bytes are those of hp_tile_read: the read
 * at the grid's level and read size, followed by hp_image_resize_rgb8 to tile x tile (area
 * averages when shrinking, bilinear when enlarging). When the read shrinks by 2 or more and the
 * slide's level is stored as JPEG tiles that the plain TIFF reader decodes, the read is decoded
 * at 1/2, 1/4 or 1/8 by libjpeg-turbo's DCT scaling (hp_tile_reduction, hp_slide.h "Reduced
 * reads") and resampled from there: decoding costs a fraction, and the pixels differ from a
 * full decode followed by area averaging by about one grey level on average (tests/unit/
 * test_tile_loader.c measures it). Threads share the tiles of one batch, so a queue depth
 * of 1 still keeps every thread busy until the batch is full.
 *
 * Errors: a failed tile read fails the loader with the tile and the slide named; hp_tile_loader_next
 * then returns the error (batches not yet handed out are dropped) and hp_tile_loader_error gives
 * the message. The first error wins.
 *
 * Threads: one consumer thread calls next/release; create/destroy must not race with them. The
 * slide and the grid must outlive the loader. */
#ifndef HP_TILE_LOADER_H
#define HP_TILE_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "io/slide.h"
#include "pipeline/tile_grid.h"

struct hp_slide;

/* Batch buffer allocation; alloc == NULL means malloc/free. Both are called from the thread that
 * calls create (alloc) and destroy (free), never from reader threads. */
typedef struct {
    void *(*alloc)(size_t bytes, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} hp_tile_allocator;

typedef struct {
    hp_tile_allocator allocator;
    int full_decode; /* 1: never decode at reduced scale (hp_tile_read_full's pixels) */
} hp_tile_loader_options;

/* A batch handed out by hp_tile_loader_next; valid until hp_tile_loader_release. */
typedef struct {
    uint8_t *rgb;         /* batch_size x tile x tile x 3 bytes, interleaved RGB; tiles past
                           * `count` are zero */
    int count;            /* tiles filled: batch_size, or fewer in the last batch */
    int64_t batch_index;  /* k */
    int64_t first;        /* kept-tile index of the first tile, k * batch_size */
    const hp_tile *tiles; /* grid->tiles + first: `count` tiles with their grid positions */
} hp_tile_batch;

/* Per reader thread: what it read and where its time went (for the stage-time shares). */
typedef struct {
    int64_t tiles;
    int64_t bytes_read;   /* pixels read from the slide x 3 */
    double read_seconds;  /* inside hp_slide_read_region (decode included) */
    double resample_seconds;
} hp_tile_thread_stats;

typedef struct {
    hp_tile_thread_stats total; /* sums over the threads */
    /* The slide's reads per reader (hp_slide_read_kind) since the loader started, and the
     * reduction tiles are decoded at (hp_tile_reduction; 1 with full_decode). */
    int64_t reads[HP_SLIDE_READ_KINDS];
    int reduce;
    double wait_seconds;        /* time hp_tile_loader_next spent waiting for a batch */
    int n_threads;
} hp_tile_loader_stats;

typedef struct hp_tile_loader hp_tile_loader;

/* Starts `n_threads` readers (1..256; <= 0: one per online CPU) over `grid`'s kept tiles.
 * batch_size 1..65536, queue_depth 1..64; `opt` may be NULL. Allocates min(queue_depth, batches)
 * buffers now, so an allocation failure is reported here. The caller frees *out with
 * hp_tile_loader_destroy. */
hp_status hp_tile_loader_create(struct hp_slide *slide, const hp_tile_grid *grid, int batch_size,
                                int n_threads, int queue_depth, const hp_tile_loader_options *opt,
                                hp_tile_loader **out, hp_error *err);

/* Waits for the next batch in order. HP_OK with *batch set; HP_OK with *batch == NULL at the end
 * of the stream; an error code after a read failure (or when every buffer is held by the caller,
 * which could never finish). */
hp_status hp_tile_loader_next(hp_tile_loader *l, hp_tile_batch **batch);

/* Gives a batch's buffer back to the readers. Batches may be released in any order. */
void hp_tile_loader_release(hp_tile_loader *l, hp_tile_batch *batch);

/* The first error's message, or "" when none. */
const char *hp_tile_loader_error(hp_tile_loader *l);

/* Statistics so far (safe to call at any time from the consumer thread); `per_thread` may be
 * NULL, else it receives n_threads entries. */
void hp_tile_loader_stats_get(hp_tile_loader *l, hp_tile_loader_stats *stats,
                              hp_tile_thread_stats *per_thread);

/* The number of batches the grid makes: ceil(n_tiles / batch_size). */
int64_t hp_tile_loader_batch_count(const hp_tile_loader *l);

/* Stops the readers (each finishes at most the tile it is reading), joins them and frees the
 * buffers, held batches included. Accepts NULL. */
void hp_tile_loader_destroy(hp_tile_loader *l);

/* Reads one kept tile exactly as the loader does by default, into `out` (tile x tile x 3 bytes);
 * `scratch` holds read_w x read_h x 3 bytes (may be NULL when the read size equals the tile
 * size). For callers that need a single tile, and for tests. hp_tile_read_full reads it as the
 * loader does with full_decode: never at reduced scale. */
hp_status hp_tile_read(struct hp_slide *slide, const hp_tile_grid *grid, const hp_tile *tile,
                       uint8_t *scratch, uint8_t *out);
hp_status hp_tile_read_full(struct hp_slide *slide, const hp_tile_grid *grid, const hp_tile *tile,
                            uint8_t *scratch, uint8_t *out);

/* The reduction the loader decodes the grid's tiles at: the largest of 1, 2, 4, 8 that
 * hp_slide_reduced_max allows for the grid's level, that still leaves the read at least the
 * tile's size (so resampling only shrinks), and at which every tile's read starts and ends on
 * whole reduced pixels (a grid whose step is not a multiple of it is read at full size, so no
 * tile moves). */
int hp_tile_reduction(struct hp_slide *slide, const hp_tile_grid *grid);

#endif
