/* The whole-slide analysis of one slide: tissue, tile grid, tiles through the model, probability
 * grid, regions, and every output file in OUT/<slide-id>/ (heatmap_<class>.png, overlay.png,
 * mask.png, heatmap.tiff, regions.geojson, regions.xml, tiles.csv, findings.json).
 *
 * Completion. Everything is written into OUT/<slide-id>.partial/ (each file also through a
 * temporary name), and that folder is renamed to OUT/<slide-id> only when every file, findings.json
 * last, is complete. So OUT/<slide-id>/ exists only for a finished run: a crash leaves at most a
 * .partial folder, which the next run into OUT removes once the process that made it has ended
 * (never while it runs). With `overwrite`, an existing folder is replaced only after the new one
 * is complete (renamed aside, the new one renamed in, the old removed), and only when histoplan
 * made it: each folder carries a .histoplan-output marker (pipeline/analyze_dir.h), and a folder
 * without one is never replaced, removed or skipped as done.
 *
 * Privacy: the slide's file name never appears in an output path or file; the slide id is the
 * caller's (A-Za-z0-9_-, 1..64 characters) or the first 12 hex digits of the file's SHA-256.
 *
 * Determinism: tile order is fixed by the grid and the loader (pipeline/tile_loader.h), and the
 * stain fit's tile sample by the grid alone, so the reader thread count does not change any
 * result.
 *
 * Thread safety: one call uses the model given (one thread at a time on it, model.h). */
#ifndef HP_ANALYZE_H
#define HP_ANALYZE_H

#include "common/status.h"
#include "models/model.h"
#include "pipeline/findings.h"
#include "pipeline/stain.h"

typedef struct {
    const char *out_dir;  /* OUT: the slide's folder is OUT/<slide-id> */
    const char *slide_id; /* NULL: first 12 hex digits of the slide's SHA-256 */
    const char *accession; /* --case, NULL when not given */
    double mpp;           /* > 0 overrides the slide's microns per pixel (--mpp) */
    int overwrite;        /* replace a completed folder (else refused) */
    int skip_completed;   /* a completed folder is not an error: the slide is skipped (resume) */
    int threads;          /* reader threads; <= 0: one per CPU */
    int batch;            /* tiles per model batch (default 16) */
    double min_tissue;    /* tissue fraction a tile needs (default 0.5, as the model was trained) */
    double region_threshold; /* default 0.5 */
    int min_region_tiles; /* default 2 */
    double sigma;         /* smoothing of the maps before regions, in tiles (default 1) */
    const char *backend_name;  /* "cpu" or "cuda", written into findings.json */
    const char *model_sha256;  /* the model file's hash (64 hex) */
    /* A user tissue mask (--mask; pipeline/tissue.h's mask_path) replacing the detection; NULL:
     * detect. */
    const char *mask_path;
    /* A region of interest in level-0 pixels (--roi): the mask is cleared outside it and the tile
     * grid starts at its corner and covers only it. roi_w <= 0: the whole slide. */
    int64_t roi_x, roi_y, roi_w, roi_h;
    /* Stain normalization (--stain, --stain-target; pipeline/analyze_stain.h): the target's
     * parameters (their method is the method used); the slide's own are fitted once per slide
     * and every batch is normalized before the model. NULL: none. Not recorded in findings.json,
     * whose schema has no place for it. */
    const hp_stain_params *stain_target;
    /* Progress: called after each batch with tiles done and total; may be NULL. */
    void (*progress)(void *user, long done, long total);
    void *progress_user;
} hp_analyze_options;

void hp_analyze_options_init(hp_analyze_options *o);

typedef enum { HP_ANALYZE_DONE = 0, HP_ANALYZE_SKIPPED } hp_analyze_outcome;

/* Analyzes `slide_path` with `model` (which must carry a card giving classes, input size and
 * MPP). On success fills *f (start from hp_findings_init; the caller frees it with
 * hp_findings_free, after a failure too) and *outcome; `slide_id` receives the id used (also on
 * failure once known, else ""). A completed folder gives HP_ANALYZE_SKIPPED when
 * skip_completed, else HP_ERR_INVALID saying --overwrite replaces it. Errors name the cause
 * (never the file name); a slide without MPP gives a message naming --mpp. */
hp_status hp_analyze_slide(hp_model *model, const char *slide_path, const hp_analyze_options *o,
                           hp_findings *f, hp_analyze_outcome *outcome,
                           char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1], hp_error *err);

#endif
