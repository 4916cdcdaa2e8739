/* `histoplan eval` as a library call: a model over a data set, every output file in one folder.
 *
 * Steps: the data set (eval/eval_dataset.h) and its split (eval/eval_split.h); the data labels
 * matched to the card's classes (eval/eval_labels.h; a label that matches nothing is refused
 * before any image is read); the images classified (eval/eval_infer.h); metrics with bootstrap
 * intervals (eval/eval_metrics.h), per fold too for a k-fold split without a fold; then, in
 * OUT:
 *   metrics.json     schemas/metrics.schema.json
 *   predictions.csv  image, truth, predicted, one probability per class, tiles (and fold)
 *   submission.csv   the BACH test folder only: the challenge's "case,class" format
 *   reliability.png, confusion.png (labelled data), summary.html (one self-contained page)
 * The folder is built as OUT.partial and renamed when complete: an existing OUT is refused
 * unless `overwrite`, and then replaced only once the new one is complete, so a failed run
 * never loses an earlier result. */
#ifndef HP_EVAL_RUN_H
#define HP_EVAL_RUN_H

#include <stdint.h>

#include "common/status.h"
#include "eval/eval_dataset.h"
#include "eval/eval_infer.h"
#include "eval/eval_labels.h"
#include "eval/eval_metrics.h"
#include "eval/eval_split.h"
#include "models/model.h"

/* Bumped on any change a consumer could notice; the schema's schema_version const matches. */
#define HP_EVAL_SCHEMA_VERSION "1.0.0"

#define HP_EVAL_NOTICE                                                                           \
    "Research use only. Figures measured by software (histoplan) on the data named here; they "  \
    "say nothing about any other data and are not a diagnostic claim."

typedef struct {
    const char *out_dir;
    int overwrite;
    const char *model_path;     /* recorded (file name only) */
    const char *backend_name;   /* recorded */
    const char *split_spec;     /* NULL: all */
    const char *label_map_spec; /* --label-map; NULL: none */
    const char *expect_classes; /* --expect-classes; NULL: no check */
    int bootstrap;              /* replicates (default 1000); 0: no intervals */
    uint64_t seed;              /* bootstrap seed (default 1) */
    const char *stain_method_name, *stain_target_path; /* recorded; NULL: none */
    hp_eval_infer_options infer;
} hp_eval_run_options;

void hp_eval_run_options_init(hp_eval_run_options *o);

/* One data label and the card class it was matched to. */
typedef struct {
    const char *data_label; /* owned by the data set */
    int card_class;
    const char *how;        /* "spelling table", "same name", "--label-map" */
    int images;
} hp_eval_label_use;

/* Everything the writers need. Filled by hp_eval_run. */
typedef struct {
    const hp_eval_run_options *opt;
    const hp_card *card;
    char model_sha256[65];
    const hp_eval_dataset *data;
    hp_eval_split split;
    int n_classes;
    int n;               /* images evaluated */
    int *item;           /* their data set index */
    int *fold;           /* their fold, -1 without */
    int *truth;          /* card class, -1 when unlabelled */
    float *prob;         /* n x n_classes */
    hp_eval_image_info *info;
    int labelled;
    int carcinoma[HP_EVAL_MAX_CLASSES]; /* 1 carcinoma, 0 not, -1 unknown */
    int two_class_defined;
    hp_eval_label_use labels[HP_EVAL_MAX_LABELS];
    int n_labels;
    hp_eval_metrics *metrics;  /* NULL when unlabelled */
    hp_eval_ci *ci;            /* HP_EVAL_N_SCALARS(c); NULL without bootstrap */
    hp_eval_metrics *fold_metrics; /* split.k entries (n == 0: the fold had no image) */
    int n_fold_metrics;
    long tiles_total;
    double seconds_inference, seconds_total;
    char warnings[8][256];
    int n_warnings;
} hp_eval_result;

/* Runs the evaluation of `model` on `data_path` and writes OUT. `summary` (may be NULL)
 * receives a one-line result for the terminal. Errors name the file, the label or the image. */
hp_status hp_eval_run(hp_model *model, const char *data_path, const hp_eval_run_options *o,
                      char *summary, size_t summary_cap, hp_error *err);

/* The writers (eval/eval_write.c, eval/eval_plot.c, eval/eval_html.c), each into `dir`. */
hp_status hp_eval_write_metrics_json(const hp_eval_result *r, const char *path, hp_error *err);
hp_status hp_eval_write_predictions(const hp_eval_result *r, const char *path, hp_error *err);
/* The BACH challenge's Part A submission: "case,class" header, one row per test image in case
 * order, class 0 Normal, 1 Benign, 2 InSitu, 3 Invasive. The card's classes must be the four
 * BACH classes (in any order: each is mapped by name). */
hp_status hp_eval_write_submission(const hp_eval_result *r, const char *path, hp_error *err);
hp_status hp_eval_plot_reliability(const hp_eval_result *r, const char *path, hp_error *err);
hp_status hp_eval_plot_confusion(const hp_eval_result *r, const char *path, hp_error *err);
hp_status hp_eval_write_html(const hp_eval_result *r, const char *dir, const char *path,
                             hp_error *err);

/* The class names as written in output: the card's. */
static inline const char *hp_eval_class_label(const hp_eval_result *r, int k)
{
    return r->card->classes[k];
}

#endif
