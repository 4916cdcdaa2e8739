/* An evaluation's output folder appears whole or not at all: it is built as OUT.partial and
 * renamed to OUT when complete, so a failed run never leaves half a result under the final name
 * and never loses an earlier one. */
#ifndef HP_EVAL_OUTDIR_H
#define HP_EVAL_OUTDIR_H

#include "common/status.h"

/* Renames `partial` to `out`. An existing `out` is refused unless `overwrite`; then it is moved
 * aside, the new folder renamed in, and the old one removed (put back if the rename fails). */
hp_status hp_eval_outdir_publish(const char *partial, const char *out, int overwrite, hp_error *err);

#endif
