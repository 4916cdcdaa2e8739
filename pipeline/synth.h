/* Synthetic H&E whole-slide images with ground truth.
 *
 * A slide is a pure function of (seed, width, height, mpp): every pixel's colour and class are
 * computed from its level-0 coordinates alone, so any tile can be produced on its own, tiles agree
 * at their borders, and the same parameters always give the same bytes. Structures are sized in
 * micrometres (a nucleus is 6-13 um whatever the MPP), so a slide at 0.25 um/px and one at
 * 0.5 um/px show the same tissue at two magnifications.
 *
 * Classes (the BACH breast histology set): 0 background (glass), 1 normal (ducts and lobules of
 * two cell layers in loose pink stroma), 2 benign (crowded but orderly enlarged glands with
 * slit-like lumens in pale cellular stroma, fibroadenoma-like), 3 in situ (large round ducts filled
 * with large dark atypical nuclei, an intact outer cell layer), 4 invasive (small irregular nests
 * and cords of atypical cells in dense pink stroma, no duct boundaries).
 *
 * Colour: a stain model. Each pixel carries hematoxylin and eosin optical densities that are
 * turned into RGB with Ruifrok and Johnston's H&E stain vectors (Beer-Lambert), so colour
 * deconvolution with the same vectors recovers the stains; the test suite relies on it.
 * Hematoxylin per tissue pixel rises from normal to benign to in situ and invasive.
 *
 * Thread safety: an hp_synth is immutable after creation; hp_synth_render and hp_synth_class_at
 * may be called from any number of threads at once. */
#ifndef HP_SYNTH_H
#define HP_SYNTH_H

#include <stdint.h>

#include "common/status.h"

enum {
    HP_SYNTH_BACKGROUND = 0,
    HP_SYNTH_NORMAL = 1,
    HP_SYNTH_BENIGN = 2,
    HP_SYNTH_IN_SITU = 3,
    HP_SYNTH_INVASIVE = 4,
    HP_SYNTH_NCLASSES = 5
};

/* Sizes the generator accepts: smaller slides cannot hold a tile, larger ones are not slides. */
#define HP_SYNTH_MIN_SIDE 256
#define HP_SYNTH_MAX_SIDE 500000

/* The class's name as the ground truth files spell it: "Background", "Normal", "Benign",
 * "InSitu", "Invasive" (BACH's names); NULL outside 0..4. */
const char *hp_synth_class_name(int cls);

typedef struct {
    uint64_t seed;
    int64_t width, height; /* level 0, pixels */
    double mpp;            /* micrometres per level-0 pixel */
} hp_synth_params;

typedef struct hp_synth hp_synth;

/* Checks the parameters (sizes within HP_SYNTH_MIN_SIDE..HP_SYNTH_MAX_SIDE, mpp within 0.05..20)
 * and prepares the layout. The caller frees *out with hp_synth_destroy. */
hp_status hp_synth_create(const hp_synth_params *p, hp_synth **out, hp_error *err);
void hp_synth_destroy(hp_synth *s);
const hp_synth_params *hp_synth_get_params(const hp_synth *s);

/* The class at level-0 pixel (x, y); background outside the slide. The layout is quantized to
 * 8x8-pixel blocks of the level-0 grid, so every caller sees the same boundaries. */
int hp_synth_class_at(const hp_synth *s, int64_t x, int64_t y);

/* Renders the level-0 region [x0, x0+w) x [y0, y0+h) into rgb (w*h*3 bytes, rows top to bottom).
 * If cls is not NULL it receives each pixel's class (w*h bytes). Pixels outside the slide are
 * rendered as glass. Returns HP_ERR_INVALID for bad arguments, HP_ERR_NOMEM. */
hp_status hp_synth_render(const hp_synth *s, int64_t x0, int64_t y0, int w, int h, uint8_t *rgb,
                          uint8_t *cls);

/* ---- Writing a slide and its ground truth (pipeline/synth.c, pipeline/synth_truth.c) ---- */

typedef struct {
    int tile;        /* TIFF tile side, a multiple of 16 in 64..2048 (default 256) */
    int quality;     /* JPEG quality 1..100 (default 90) */
    int truth_scale; /* label mask pixel = truth_scale x truth_scale level-0 pixels, 1..4096 (64) */
    int threads;     /* rendering threads; <= 0: one per online CPU (output is the same) */
    /* Called after each row of level-0 tiles; may be NULL. */
    void (*progress)(void *user, long done, long total);
    void *progress_user;
} hp_synth_write_options;

/* Fills the defaults above. */
void hp_synth_write_options_init(hp_synth_write_options *o);

/* Writes the slide to `path` (pyramidal tiled JPEG TIFF, Aperio-style; see
 * io/tiff_pyramid_writer.h) and its ground truth beside it, named from `path` without its
 * extension: STEM.truth.png (8-bit gray label mask, values 0..4 as the classes above, one pixel
 * per truth_scale x truth_scale block, sampled at the block's centre), STEM.truth.geojson (a
 * QuPath-compatible FeatureCollection: one Polygon annotation per connected region of a class,
 * level-0 pixel coordinates, traced on the label mask) and STEM.truth.json (seed, size, mpp,
 * classes, exact per-class area in level-0 pixels and mm2). Every file is written under a
 * temporary name and renamed into place when complete. Memory is O(width x tile x levels). */
hp_status hp_synth_write(const hp_synth *s, const char *path, const hp_synth_write_options *o,
                         hp_error *err);

/* The ground-truth paths for a slide path: STEM + suffix (".truth.png" ...). Caller frees. */
char *hp_synth_truth_path(const char *slide_path, const char *suffix);

/* Writes the three truth files from a label mask (mw x mh, row-major) and exact per-class pixel
 * counts. Used by hp_synth_write; exposed for tests. */
hp_status hp_synth_write_truth(const hp_synth *s, const char *slide_path, const uint8_t *mask,
                               int mw, int mh, int truth_scale,
                               const int64_t counts[HP_SYNTH_NCLASSES], hp_error *err);

#endif
