/* The output folder of one slide's analysis, OUT/<slide-id>/, and the folders beside it while it
 * is made (pipeline/analyze.h describes the outputs):
 *
 *   OUT/<id>.partial/    being written; marked (common/output_dir.h) with this process, so the
 *                        next run removes it once this process has ended, and never while it runs
 *   OUT/<id>/            the completed result, renamed from .partial; marked as an analysis
 *   OUT/<id>.replaced/   a completed result moved aside while --overwrite puts the new one in
 *                        place; removed right after (put back if a run died in between)
 *   OUT/<id>.lock        held (flock) by the process working on the slide, from before it looks
 *                        at the folders above until it is done with them; removed by it after
 * *
 * A folder under one of these names that histoplan did not make (no marker) is never removed,
 * replaced or skipped as done: the slide fails with a message naming it. */
#ifndef HP_ANALYZE_DIR_H
#define HP_ANALYZE_DIR_H

#include <signal.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "common/file_lock.h"
#include "common/status.h"

typedef struct {
    char *final_dir; /* OUT/<id> */
    char *part_dir;  /* OUT/<id>.partial */
    char *old_dir;   /* OUT/<id>.replaced */
    int part_made;   /* part_dir is this run's */
    hp_file_lock lock; /* OUT/<id>.lock, held when `locked` */
    int locked;
} hp_analyze_dir;

typedef struct {
    int overwrite;            /* replace a completed result (else kept when it matches, refused when not) */
    time_t overwrite_before;  /* > 0: replace only a result finished before this time */
    int nowait;               /* the slide's lock is held elsewhere: HP_ANALYZE_DIR_BUSY at once */
    const volatile sig_atomic_t *cancel; /* checked while waiting for the lock */
    void (*waiting)(void *user, const char *slide_id, const char *holder); /* may be NULL */
    void *user;
} hp_analyze_dir_options;

typedef enum {
    HP_ANALYZE_DIR_NEW = 0, /* OUT/<id>.partial is made and marked: write the results there */
    HP_ANALYZE_DIR_KEPT,    /* a completed result matching `key` is kept: nothing to do */
    HP_ANALYZE_DIR_BUSY,    /* nowait, and another process holds the slide */
} hp_analyze_dir_state;

/* Prepares OUT/<id> for a run whose key (pipeline/analyze_key.h) is `key`: creates OUT, takes
 * the slide's lock (waiting for another process unless nowait), removes leftovers of ended runs,
 * then keeps a completed result that matches `key`, or refuses one that does not (naming what
 * differs) unless overwrite, or makes and marks OUT/<id>.partial. The lock is held until
 * hp_analyze_dir_end. On failure nothing that was there is touched. Errors: HP_ERR_CANCELLED
 * when *cancel was set while waiting; HP_ERR_INVALID for a folder that is not histoplan's or a
 * result made from something else; HP_ERR_IO. */
hp_status hp_analyze_dir_begin(const char *out_dir, const char *slide_id, const cJSON *key,
                               const hp_analyze_dir_options *o, hp_analyze_dir *d, hp_analyze_dir_state *state,
                               hp_error *err);

/* Renames the complete .partial folder to OUT/<id>, replacing a completed result only now. */
hp_status hp_analyze_dir_commit(hp_analyze_dir *d, hp_error *err);

/* Removes this run's .partial folder (after a failure), releases the lock and frees the names;
 * accepts a zeroed struct. */
void hp_analyze_dir_end(hp_analyze_dir *d);

#endif
