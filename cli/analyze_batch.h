/* The batch behind `histoplan analyze`: the slides one after another, sharing OUT safely with
 * other processes, a summary that is always written, events for scripts, and signals.
 *
 * Order. Slides run in the order given. One that another process is analysing (it holds the
 * slide's lock) is put off to the end, then waited for; by then it is usually complete and is
 * skipped as done. So processes (or cluster jobs) given overlapping lists analyze each slide
 * once.
 *
 * Summary. OUT/batch-summary.json (pipeline/batch_summary.h) is merged under a lock: every 30 s
 * while slides finish, and at the end, also when the model could not be loaded and after SIGINT
 * or SIGTERM. The first SIGINT or SIGTERM stops the slide being analysed at its next batch (it is
 * recorded as interrupted, its partial folder removed, the slides after it as not started),
 * writes the summary and exits 130 (SIGINT) or 143 (SIGTERM); a second one ends the process at
 * once.
 *
 * --json: one JSON object per line on stdout for each event: {"event": "start", "index",
 * "total", "input_sha256"} when a slide starts; {"event": "done" | "skipped" | "failed" |
 * "interrupted" | "not-started", "index", "total", and the summary entry's fields} when it ends;
 * {"event": "summary", "slides", "done", "skipped", "failed", "interrupted", "not_started",
 * "exit_status"} last. The human-readable lines are then left out.
 *
 * Exit status (HP_EXIT_*): 0 every slide done or skipped; 1 some failed; 3 nothing ran (the
 * model cannot be loaded, the output folder cannot be made); 130 / 143 after a signal. */
#ifndef HP_CLI_ANALYZE_BATCH_H
#define HP_CLI_ANALYZE_BATCH_H

#include "models/model.h"
#include "pipeline/analyze.h"

typedef struct {
    hp_model *model;         /* NULL: it could not be loaded; every slide fails with `model_error` */
    const char *model_error; /* the reason, when model is NULL */
    hp_analyze_options *o;   /* out_dir set; the batch sets lock_nowait, cancel, progress */
    char **slides;
    int n_slides;
    int json;
    /* From a manifest (cli/manifest.h), else NULL: per slide its id, its case and its microns
     * per pixel (0: the slide's own, or --mpp), replacing the options' values. */
    const char *const *slide_ids;
    const char *const *cases;
    const double *mpps;
    const char *shard; /* "I/N" recorded in each summary entry, or NULL */
} hp_cli_batch;

/* Installs the SIGINT/SIGTERM handlers; call before loading the model, so a signal during the
 * load also ends with a summary. */
void hp_cli_batch_signals(void);

/* Runs the batch and returns the exit status. */
int hp_cli_batch_run(const hp_cli_batch *b);

#endif
