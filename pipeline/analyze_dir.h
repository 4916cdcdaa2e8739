/* The output folder of one slide's analysis, OUT/<slide-id>/, and the folders beside it while it
 * is made (pipeline/analyze.h describes the outputs):
 *
 *   OUT/<id>.partial/    being written; marked (common/output_dir.h) with this process, so the
 *                        next run removes it once this process has ended, and never while it runs
 *   OUT/<id>/            the completed result, renamed from .partial; marked as an analysis
 *   OUT/<id>.replaced/   a completed result moved aside while --overwrite puts the new one in
 *                        place; removed right after (put back if a run died in between)
 *
 * A folder under one of these names that histoplan did not make (no marker) is never removed,
 * replaced or skipped as done: the slide fails with a message naming it. */
#ifndef HP_ANALYZE_DIR_H
#define HP_ANALYZE_DIR_H

#include "common/status.h"

typedef struct {
    char *final_dir; /* OUT/<id> */
    char *part_dir;  /* OUT/<id>.partial */
    char *old_dir;   /* OUT/<id>.replaced */
    int part_made;   /* part_dir is this run's */
} hp_analyze_dir;

/* Prepares OUT/<id>: removes leftovers of ended runs in OUT, then either reports a completed
 * result (*skipped = 1 when skip_completed and not overwrite; an error when neither) or makes
 * and marks OUT/<id>.partial for this run. On failure nothing that was there is touched. */
hp_status hp_analyze_dir_begin(const char *out_dir, const char *slide_id, int overwrite, int skip_completed,
                               hp_analyze_dir *d, int *skipped, hp_error *err);

/* Renames the complete .partial folder to OUT/<id>, replacing a completed result only now. */
hp_status hp_analyze_dir_commit(hp_analyze_dir *d, hp_error *err);

/* Removes this run's .partial folder (after a failure) and frees the names; accepts a zeroed
 * struct. */
void hp_analyze_dir_end(hp_analyze_dir *d);

#endif
