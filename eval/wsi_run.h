/* `histoplan eval-wsi` as a library call: each slide's BACH Part B annotation XML against the
 * tile predictions of its analysis (eval/wsi_truth.h, eval/wsi_score.h), scored, and written to
 * OUT (built as OUT.partial, renamed when complete):
 *   wsi-metrics.json   schemas/wsi-metrics.schema.json: per slide and pooled over the slides,
 *                      the score, its sums, Dice and IoU per label; the mean of the slides'
 *                      scores
 *   maps/<slide-id>.truth.png, maps/<slide-id>.pred.png   the two rasters (white normal, green
 *                      benign, orange in situ, red invasive), for a reader to see what was scored
 * Pairs are taken in order: the i-th truth file with the i-th findings file (and the i-th slide
 * file when slides are given). A truth file named after another pair's slide id is refused as a
 * likely mix-up. */
#ifndef HP_WSI_RUN_H
#define HP_WSI_RUN_H

#include <stdio.h>

#include "common/status.h"
#include "eval/wsi_score.h"

#define HP_WSI_SCHEMA_VERSION "1.0.0"

/* Rasters larger than this are refused (ask for a coarser level or downsample). */
#define HP_WSI_RASTER_MAX_PIXELS (64LL * 1000 * 1000)

typedef struct {
    int n;                  /* slides */
    const char *const *truth;    /* n annotation XML files */
    const char *const *findings; /* n findings.json files */
    const char *const *slides;   /* NULL, or n slide files (for --level) */
    int level;              /* >= 0: rasterize at this pyramid level of each slide (slides given) */
    double downsample;      /* used when level < 0 (default 16) */
    const char *out_dir;
    int overwrite;
} hp_wsi_run_options;

/* Runs the scoring; prints one line per slide and the pooled score to `log` (may be NULL). */
hp_status hp_wsi_run(const hp_wsi_run_options *o, FILE *log, hp_error *err);

#endif
