/* The evaluation run: data, split, labels, inference, metrics, the output folder
 * (eval/eval_run.h). */
#include "eval/eval_run.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/remove_tree.h"
#include "common/sha256.h"
#include "eval/eval_outdir.h"

void hp_eval_run_options_init(hp_eval_run_options *o)
{
    memset(o, 0, sizeof *o);
    o->bootstrap = 1000;
    o->seed = 1;
    hp_eval_infer_options_init(&o->infer);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void __attribute__((format(printf, 2, 3))) warn(hp_eval_result *r, const char *fmt, ...)
{
    if (r->n_warnings >= 8)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->warnings[r->n_warnings++], sizeof r->warnings[0], fmt, ap);
    va_end(ap);
}

/* Matches every data label of the evaluated images to a card class; refuses the run, listing
 * every label that matches nothing, before a single image is read. */
static hp_status match_labels(hp_eval_result *r, const hp_eval_label_map *map, hp_error *err)
{
    const hp_card *card = r->card;
    char bad[HP_ERROR_MSG_MAX / 2] = "";
    int n_bad = 0, numeric = 0;
    for (int q = 0; q < r->n; q++) {
        const char *lab = r->data->items[r->item[q]].label;
        int u = 0;
        while (u < r->n_labels && strcmp(r->labels[u].data_label, lab))
            u++;
        if (u == r->n_labels) {
            if (u >= HP_EVAL_MAX_LABELS)
                return hp_error_set(err, HP_ERR_INVALID, "more than %d distinct labels",
                                    HP_EVAL_MAX_LABELS);
            const char *why = NULL;
            int k = hp_eval_label_to_card(lab, card, map, &why);
            int mapped = 0;
            for (int i = 0; map && i < map->n; i++)
                mapped |= !strcmp(map->from[i], lab);
            r->labels[u] = (hp_eval_label_use){
                .data_label = lab, .card_class = k,
                .how = mapped ? "--label-map"
                       : hp_eval_class_parse(lab) != HP_EVAL_CLASS_NONE ? "spelling table"
                                                                        : "same name"};
            r->n_labels++;
            if (k < 0) {
                size_t l = strlen(bad);
                snprintf(bad + l, sizeof bad - l, "%s'%s'", n_bad ? ", " : "", lab);
                n_bad++;
                numeric += !strcmp(why, "numeric");
            }
        }
        r->labels[u].images++;
        r->truth[q] = r->labels[u].card_class;
    }
    if (n_bad) {
        char classes[512] = "";
        for (int k = 0; k < card->n_classes; k++) {
            size_t l = strlen(classes);
            snprintf(classes + l, sizeof classes - l, "%s%s", k ? ", " : "", card->classes[k]);
        }
        return hp_error_set(err, HP_ERR_INVALID,
                            "the data's label%s %s match%s no class of the model card (%s)%s; "
                            "give --label-map DATA_LABEL=CARD_CLASS,... to map them explicitly",
                            n_bad > 1 ? "s" : "", bad, n_bad > 1 ? "" : "es", classes,
                            numeric ? "; a number is never taken as a class index, since "
                                      "nothing says in which order it counts"
                                    : "");
    }
    for (int k = 0; k < card->n_classes; k++) {
        int seen = 0;
        for (int u = 0; u < r->n_labels; u++)
            seen |= r->labels[u].card_class == k;
        if (!seen)
            warn(r, "the card's class '%s' has no image in the evaluated data", card->classes[k]);
    }
    return HP_OK;
}

static hp_status write_outputs(hp_eval_result *r, const char *dir, hp_error *err)
{
    char path[4096];
    hp_status st;
#define OUT(name) (snprintf(path, sizeof path, "%s/%s", dir, name), path)
    if ((st = hp_eval_write_predictions(r, OUT("predictions.csv"), err)) != HP_OK)
        return st;
    if (r->data->kind == HP_EVAL_DATA_BACH_TEST &&
        (st = hp_eval_write_submission(r, OUT("submission.csv"), err)) != HP_OK)
        return st;
    if (r->metrics) {
        if ((st = hp_eval_plot_reliability(r, OUT("reliability.png"), err)) != HP_OK ||
            (st = hp_eval_plot_confusion(r, OUT("confusion.png"), err)) != HP_OK)
            return st;
    }
    if ((st = hp_eval_write_metrics_json(r, OUT("metrics.json"), err)) != HP_OK)
        return st;
    return hp_eval_write_html(r, dir, OUT("summary.html"), err);
#undef OUT
}

static void free_result(hp_eval_result *r)
{
    free(r->item);
    free(r->fold);
    free(r->truth);
    free(r->prob);
    free(r->info);
    free(r->metrics);
    free(r->ci);
    free(r->fold_metrics);
}

hp_status hp_eval_run(hp_model *model, const char *data_path, const hp_eval_run_options *o,
                      char *summary, size_t summary_cap, hp_error *err)
{
    double t0 = now_s();
    hp_eval_result r = {.opt = o};
    hp_eval_dataset *d = NULL;
    hp_eval_label_map map = {0};
    int *all_fold = NULL;
    unsigned char *sel = NULL;
    char partial[4096] = "";
    hp_status st = HP_OK;
    struct stat sb;

    r.card = hp_model_card(model);
    if (!r.card)
        return hp_error_set(err, HP_ERR_INVALID, "the model has no card (classes, MPP); eval needs one");
    r.n_classes = r.card->n_classes;
    if (r.n_classes > HP_EVAL_MAX_CLASSES)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "the card lists %d classes; eval takes up to %d",
                            r.n_classes, HP_EVAL_MAX_CLASSES);
    if (!o->out_dir || !*o->out_dir)
        return hp_error_set(err, HP_ERR_INVALID, "no output folder given");
    /* Refused before any work, so a long run cannot end by finding it could not publish. */
    if (!o->overwrite && lstat(o->out_dir, &sb) == 0)
        return hp_error_set(err, HP_ERR_INVALID, "%s exists; --overwrite replaces it", o->out_dir);
    if ((st = hp_eval_card_check(r.card, o->expect_classes, err)) != HP_OK)
        return st;
    if ((st = hp_eval_split_parse(o->split_spec, &r.split, err)) != HP_OK)
        return st;
    if (o->label_map_spec && (st = hp_eval_label_map_parse(o->label_map_spec, r.card, &map, err)) != HP_OK)
        goto done;
    if ((st = hp_eval_dataset_open(data_path, &d, err)) != HP_OK)
        goto done;
    r.data = d;
    if (d->ignored_files)
        warn(&r, "%s: files that are not .tif were left out of the BACH class folders (%d)", d->root,
             d->ignored_files);
    all_fold = malloc(sizeof *all_fold * (size_t)d->n);
    sel = malloc((size_t)d->n);
    if (!all_fold || !sel) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((st = hp_eval_split_apply(&r.split, d, all_fold, sel, err)) != HP_OK)
        goto done;
    for (int i = 0; i < d->n; i++)
        r.n += sel[i];
    if (r.n == 0) {
        st = hp_error_set(err, HP_ERR_INVALID, "the split %s selects no image of %s", r.split.spec,
                          data_path);
        goto done;
    }
    int C = r.n_classes;
    r.item = malloc(sizeof *r.item * (size_t)r.n);
    r.fold = malloc(sizeof *r.fold * (size_t)r.n);
    r.truth = malloc(sizeof *r.truth * (size_t)r.n);
    r.prob = malloc(sizeof *r.prob * (size_t)r.n * C);
    r.info = calloc((size_t)r.n, sizeof *r.info);
    if (!r.item || !r.fold || !r.truth || !r.prob || !r.info) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0, q = 0; i < d->n; i++)
        if (sel[i]) {
            r.item[q] = i;
            r.fold[q] = all_fold[i];
            r.truth[q++] = -1;
        }
    r.labelled = hp_eval_dataset_labelled(d);
    if (r.labelled && (st = match_labels(&r, &map, err)) != HP_OK)
        goto done;
    r.two_class_defined = 1;
    for (int k = 0; k < C; k++) {
        hp_eval_class c = hp_eval_card_class_canonical(r.card, k);
        r.carcinoma[k] = c == HP_EVAL_CLASS_NONE ? -1
                         : (c == HP_EVAL_CLASS_IN_SITU || c == HP_EVAL_CLASS_INVASIVE);
        if (r.carcinoma[k] < 0)
            r.two_class_defined = 0;
    }
    if (d->kind == HP_EVAL_DATA_BACH_TEST) {
        for (int c = 0; c < HP_EVAL_N_CANONICAL; c++) {
            int found = 0;
            for (int k = 0; k < C; k++)
                found |= hp_eval_card_class_canonical(r.card, k) == (hp_eval_class)c;
            if (!found) {
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "the BACH submission format needs the four BACH classes; the "
                                  "model card has no class meaning '%s'",
                                  hp_eval_class_name((hp_eval_class)c));
                goto done;
            }
        }
    }

    /* Inference. */
    hp_eval_infer_options io = o->infer;
    if (!(io.default_mpp > 0))
        io.default_mpp = d->default_mpp;
    double ti = now_s();
    if ((st = hp_eval_infer(model, d->items, r.item, r.n, &io, r.prob, r.info, err)) != HP_OK)
        goto done;
    r.seconds_inference = now_s() - ti;
    for (int q = 0; q < r.n; q++)
        r.tiles_total += r.info[q].tiles;

    /* Metrics. */
    if (r.labelled) {
        const int *carc = r.two_class_defined ? r.carcinoma : NULL;
        r.metrics = malloc(sizeof *r.metrics);
        if (!r.metrics) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto done;
        }
        if ((st = hp_eval_metrics_compute(r.n, C, r.truth, r.prob, carc, NULL, 0, r.metrics, err)) !=
            HP_OK)
            goto done;
        if (o->bootstrap > 0) {
            r.ci = calloc((size_t)HP_EVAL_N_SCALARS(C), sizeof *r.ci);
            if (!r.ci) {
                st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
                goto done;
            }
            if ((st = hp_eval_bootstrap(r.n, C, r.truth, r.prob, carc, NULL, 0, o->bootstrap, o->seed,
                                        r.ci, err)) != HP_OK)
                goto done;
        }
        if (r.split.kind == HP_EVAL_SPLIT_KFOLD && r.split.fold < 0) {
            r.fold_metrics = calloc((size_t)r.split.k, sizeof *r.fold_metrics);
            int *idx = malloc(sizeof *idx * (size_t)r.n);
            if (!r.fold_metrics || !idx) {
                free(idx);
                st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
                goto done;
            }
            r.n_fold_metrics = r.split.k;
            for (int f = 0; f < r.split.k && st == HP_OK; f++) {
                int m = 0;
                for (int q = 0; q < r.n; q++)
                    if (r.fold[q] == f)
                        idx[m++] = q;
                if (m > 0)
                    st = hp_eval_metrics_compute(r.n, C, r.truth, r.prob, carc, idx, m,
                                                 &r.fold_metrics[f], err);
            }
            free(idx);
            if (st != HP_OK)
                goto done;
        }
    }

    /* Outputs. */
    if (o->model_path && (st = hp_sha256_file(o->model_path, r.model_sha256, err)) != HP_OK)
        goto done;
    snprintf(partial, sizeof partial, "%s.partial", o->out_dir);
    hp_remove_tree(partial);
    if (mkdir(partial, 0755) != 0) {
        st = hp_error_set(err, HP_ERR_IO, "%s: cannot create: %s", partial, strerror(errno));
        partial[0] = 0;
        goto done;
    }
    r.seconds_total = now_s() - t0;
    if ((st = write_outputs(&r, partial, err)) != HP_OK)
        goto done;
    if ((st = hp_eval_outdir_publish(partial, o->out_dir, o->overwrite, err)) != HP_OK)
        goto done;
    partial[0] = 0;
    if (summary) {
        if (r.metrics)
            snprintf(summary, summary_cap,
                     "%d images, %ld tiles, %.1f images/s: accuracy %.4f, balanced accuracy %.4f, "
                     "macro-F1 %.4f",
                     r.n, r.tiles_total, r.seconds_inference > 0 ? r.n / r.seconds_inference : 0.0,
                     r.metrics->accuracy, r.metrics->balanced_accuracy, r.metrics->macro_f1);
        else
            snprintf(summary, summary_cap, "%d images, %ld tiles, %.1f images/s: predictions only",
                     r.n, r.tiles_total,
                     r.seconds_inference > 0 ? r.n / r.seconds_inference : 0.0);
    }
done:
    if (partial[0])
        hp_remove_tree(partial);
    free_result(&r);
    free(all_fold);
    free(sel);
    hp_eval_label_map_free(&map);
    hp_eval_dataset_destroy(d);
    return st;
}
