/* Stain normalization inside the analyze run (pipeline/analyze.h, pipeline/stain.h).
 *
 * The target parameters are loaded once per run (a reference image, fitted, or stored
 * parameters read from JSON); the source parameters are fitted once per slide from a fixed
 * sample of its kept tissue tiles; then every batch is normalized before the model sees it.
 *
 * Which tiles the source fit uses: up to HP_ANALYZE_STAIN_FIT_TILES kept tiles spread evenly
 * over the grid's kept-tile list (kept tile floor(i * n / K) for i = 0..K-1), read one by one
 * exactly as the loader reads them. The sample depends only on the grid, never on the thread
 * count, the batch size or timing, so the normalization (and every result after it) is the
 * same however the run is parallelized; spreading the sample over the slide rather than taking
 * its first rows keeps one corner of the section from deciding the slide's stain.
 *
 * Thread safety: no global state; the normalizer is a plain value. */
#ifndef HP_ANALYZE_STAIN_H
#define HP_ANALYZE_STAIN_H

#include <stdint.h>

#include "common/status.h"
#include "pipeline/stain.h"
#include "pipeline/tile_grid.h"
#include "pipeline/tile_loader.h"

struct hp_slide;

/* Tiles sampled per slide for the source fit (32 tiles of 224 px: 1.6 M pixels, about 19 MB of
 * Macenko scratch). */
#define HP_ANALYZE_STAIN_FIT_TILES 32

/* A reference image larger than this many pixels is subsampled (every k-th pixel, in raster
 * order) before the fit, which bounds the fit's scratch memory. */
#define HP_ANALYZE_STAIN_TARGET_MAX_PIXELS 4000000

/* Loads the target parameters of `method` from `path`: a file whose name ends in ".json" (any
 * case) holds stored parameters (pipeline/stain.h's format), which must use the same method;
 * anything else is a reference image (PNG, JPEG or TIFF) whose parameters are fitted. Errors
 * name the file and the cause ("stain target ...: ..."): an unreadable file, a method mismatch,
 * a reference image that cannot be fitted (for example an all-white image). */
hp_status hp_analyze_stain_target_load(hp_stain_method method, const char *path,
                                       hp_stain_params *out, hp_error *err);

/* Fits the slide's source parameters on the sample described above and builds the normalizer
 * from them to `target`. `grid` must have at least one kept tile. A slide whose tiles cannot be
 * fitted (a degenerate stain: too few stained pixels, a single colour) fails with HP_ERR_INVALID
 * and a message that starts "stain normalization (<method>)" and gives the fit's reason. */
hp_status hp_analyze_stain_prepare(struct hp_slide *s, const hp_tile_grid *grid,
                                   const hp_stain_params *target, hp_stain_normalizer *nz,
                                   hp_error *err);

/* Normalizes the `count` filled tiles of a batch in place (tile x tile pixels each). */
hp_status hp_analyze_stain_apply(const hp_stain_normalizer *nz, hp_tile_batch *b, int tile,
                                 hp_error *err);

#endif
