/* What a completed analysis was made from, kept beside its results as OUT/<slide-id>/run.json
 * (schema schemas/run.schema.json), so that a later run into the same OUT can tell a result it
 * may keep (resume) from one made with something else:
 *
 *   slide_sha256, model_sha256   the slide file and the model file
 *   mpp, mask_sha256, roi, stain the options that change results (--mpp, the --mask file's hash,
 *                                --roi, --stain with the target's parameters), null when not given
 *   tissue_threshold, region_threshold, min_region_tiles, smoothing_sigma_tiles, backend, case
 *
 * plus, for people and not compared: histoplan_version and finished_at. The reader thread count
 * and the batch size are left out: they do not change results.
 *
 * A key is a cJSON object; compare two with hp_analyze_key_diff. */
#ifndef HP_ANALYZE_KEY_H
#define HP_ANALYZE_KEY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/status.h"
#include "pipeline/analyze.h"

#define HP_ANALYZE_KEY_FILE "run.json"

/* The key of a run of `o` on the slide whose file hashes to `slide_sha256`. Reads (hashes) the
 * --mask file. The caller frees *key with cJSON_Delete. */
hp_status hp_analyze_key_make(const hp_analyze_options *o, const char *slide_sha256, cJSON **key,
                              hp_error *err);

/* Writes `key` with finished_at (now) as DIR/run.json, through a temporary file. */
hp_status hp_analyze_key_write(const char *dir, const cJSON *key, hp_error *err);

/* Compares the key of the completed result in `dir` (its run.json) with `key`.
 * Returns 0 when they agree; 1 when they differ, with `diff` saying what in words ("the model
 * (1a2b3c4d5e6f there, 0f9e8d7c6b5a now), --mpp (none there, 0.5 now)"); -1 when `dir` has no
 * readable run.json (made by an earlier histoplan), with `diff` saying so. `finished_at`
 * (may be NULL; HP_UTC_TIME_LEN bytes) receives the result's finish time, "" when unknown. */
int hp_analyze_key_diff(const char *dir, const cJSON *key, char *diff, size_t cap, char *finished_at);

#endif
