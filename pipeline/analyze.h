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
 * Resume and sharing an output folder. The folder also holds run.json (pipeline/analyze_key.h):
 * the slide's and the model's hashes and the options that change results. A completed folder
 * whose run.json matches this run is kept and the slide is skipped (a rerun resumes where a
 * batch stopped); one that does not match is refused, naming what differs, unless `overwrite`,
 * which replaces it. Several processes (or cluster jobs on a shared file system) may analyze
 * into one OUT at the same time: each slide is claimed with a lock (OUT/<slide-id>.lock, an
 * flock released when its process ends however it ends; common/file_lock.h), so each slide is
 * analyzed once: a process that finds a slide claimed waits for it (or, with `lock_nowait`,
 * returns HP_ANALYZE_BUSY at once) and then finds it complete. While the lock is held, a
 * .partial folder of the slide is a dead run's, whichever host made it, and is removed.
 *
 * Stages. A run is a short sequence of named stages (identify, claim, open, tissue, tiling,
 * inference, maps, regions, write, commit); a failure is classified by its stage and cause
 * (hp_analyze_failure), so a batch can report it in a fixed vocabulary.
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

#include <signal.h>
#include <time.h>

#include "common/status.h"
#include "models/model.h"
#include "pipeline/analyze_sr.h"
#include "pipeline/findings.h"
#include "pipeline/stain.h"

typedef struct {
    const char *out_dir;  /* OUT: the slide's folder is OUT/<slide-id> */
    const char *slide_id; /* NULL: first 12 hex digits of the slide's SHA-256 */
    const char *accession; /* --case, NULL when not given */
    double mpp;           /* > 0 overrides the slide's microns per pixel (--mpp) */
    /* Replace a completed folder even when it matches this run (and when it does not: else
     * refused). With overwrite_before > 0, only a result finished before that time is replaced:
     * one that another process sharing OUT completed during this run is kept (skipped). */
    int overwrite;
    time_t overwrite_before;
    /* Another process analysing this slide (holding its lock): 0 waits for it, 1 returns at once
     * with HP_ANALYZE_BUSY, so a batch can do other slides first. */
    int lock_nowait;
    /* A super-resolved slide (`histoplan upscale`, pipeline/upscale.h) is not a scanned image:
     * refused as a source unless this is set (--allow-derived). */
    int allow_derived;
    /* Super-resolution of tiles when the slide is coarser than the model (--sr; the decision
     * table is pipeline/analyze_sr.h): HP_SR_OFF resamples (the default), HP_SR_AUTO picks the
     * fitting model among `sr_models` (the zoo's faithful ones), HP_SR_MODEL uses sr_models[0]. */
    hp_sr_mode sr_mode;
    const hp_sr_candidate *sr_models;
    int n_sr_models;
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
    /* Called (with progress_user) once when the run starts waiting for another process that
     * holds the slide's lock, naming it ("process 4242 on this host"); may be NULL. */
    void (*waiting)(void *user, const char *slide_id, const char *holder);
    /* When not NULL and set (a signal handler sets it), the run stops at the next stage or
     * batch: HP_ERR_CANCELLED, failure HP_ANALYZE_FAIL_INTERRUPTED, nothing left in OUT. */
    const volatile sig_atomic_t *cancel;
} hp_analyze_options;

void hp_analyze_options_init(hp_analyze_options *o);

typedef enum {
    HP_ANALYZE_DONE = 0,
    HP_ANALYZE_SKIPPED, /* a completed result of the same slide, model and options was kept */
    HP_ANALYZE_BUSY,    /* lock_nowait, and another process holds the slide: nothing done */
} hp_analyze_outcome;

/* Why a run failed, in a fixed vocabulary for batch summaries and scripts. */
typedef enum {
    HP_ANALYZE_FAIL_NONE = 0,
    HP_ANALYZE_FAIL_UNREADABLE,  /* the slide (or --mask) cannot be opened, hashed or read; damaged */
    HP_ANALYZE_FAIL_UNSUPPORTED, /* a format, layout or model input histoplan does not handle */
    HP_ANALYZE_FAIL_NO_MPP,      /* the slide gives no microns per pixel, and no --mpp was given */
    HP_ANALYZE_FAIL_NO_TISSUE,   /* no usable tissue: the mask or region of interest is unusable */
    HP_ANALYZE_FAIL_MODEL,       /* the model cannot be used for this, or failed on the tiles */
    HP_ANALYZE_FAIL_IO,          /* the output folder cannot be written, or holds other results */
    HP_ANALYZE_FAIL_INTERRUPTED, /* stopped by `cancel` (a signal) */
} hp_analyze_failure;

/* "unreadable", "unsupported", "no-mpp", "no-tissue", "model", "io", "interrupted"; NULL for
 * HP_ANALYZE_FAIL_NONE. */
const char *hp_analyze_failure_name(hp_analyze_failure f);

typedef struct {
    hp_analyze_outcome outcome;
    hp_analyze_failure failure; /* HP_ANALYZE_FAIL_NONE unless the run failed */
    char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1]; /* the id used, "" until known */
    char stage[16];             /* the stage that failed, "" when none */
} hp_analyze_result;

/* Analyzes `slide_path` with `model` (which must carry a card giving classes, input size and
 * MPP) into OUT/<slide-id>/. On success fills *f (start from hp_findings_init; the caller frees
 * it with hp_findings_free, after a failure too) and r->outcome. On failure, r->failure and
 * r->stage say why and where, and nothing is left in OUT that was not there. Errors name the
 * cause (a reader's message may name the file; the caller scrubs what it stores); a slide
 * without MPP gives a message naming --mpp. */
hp_status hp_analyze_run(hp_model *model, const char *slide_path, const hp_analyze_options *o,
                         hp_findings *f, hp_analyze_result *r, hp_error *err);

/* hp_analyze_run for callers that need only the outcome and the slide id. */
hp_status hp_analyze_slide(hp_model *model, const char *slide_path, const hp_analyze_options *o,
                           hp_findings *f, hp_analyze_outcome *outcome,
                           char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1], hp_error *err);

#endif
