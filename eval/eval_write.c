/* metrics.json, predictions.csv and submission.csv of an evaluation (eval/eval_run.h). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/utc_time.h"
#include "eval/eval_run.h"
#include "io/atomic_file.h"
#include "io/csv_write.h"

/* ---- metrics.json ------------------------------------------------------------------------ */

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* {"value": v, "ci95": [lo, hi] | null, "ci_replicates": n} */
static cJSON *metric(const hp_eval_result *r, double v, int scalar)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "value", num_or_null(v));
    if (r->ci && scalar >= 0 && isfinite(r->ci[scalar].lo) && isfinite(r->ci[scalar].hi)) {
        cJSON *ci = cJSON_AddArrayToObject(o, "ci95");
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->ci[scalar].lo));
        cJSON_AddItemToArray(ci, cJSON_CreateNumber(r->ci[scalar].hi));
    } else {
        cJSON_AddNullToObject(o, "ci95");
    }
    cJSON_AddNumberToObject(o, "ci_replicates", r->ci && scalar >= 0 ? r->ci[scalar].valid : 0);
    return o;
}

static const char *base_name(const char *p)
{
    const char *s = p ? strrchr(p, '/') : NULL;
    return s ? s + 1 : p;
}

static const char *const definitions[][2] = {
    {"predicted", "the most probable class of the image's probability vector (first on a tie)"},
    {"accuracy", "share of images predicted right"},
    {"balanced_accuracy", "mean sensitivity over the classes that have images"},
    {"two_class_accuracy",
     "carcinoma (in situ, invasive) against non-carcinoma (normal, benign), true and predicted "
     "class each mapped; null unless every class is one of BACH's four"},
    {"macro_f1", "mean per-class F1 over the classes true or predicted somewhere"},
    {"macro_auc", "mean of the defined one-vs-rest ROC AUCs"},
    {"brier", "mean over images of sum over classes of (p_k - [truth = k])^2 (0 best, 2 worst)"},
    {"ece",
     "expected calibration error of the top-class confidence, 15 equal-width bins, bin = "
     "min(floor(15 conf), 14)"},
    {"sensitivity", "TP/(TP+FN)"},
    {"specificity", "TN/(TN+FP)"},
    {"ppv", "TP/(TP+FP)"},
    {"f1", "2TP/(2TP+FP+FN)"},
    {"auc", "one-vs-rest ROC AUC of the class's probability; ties count one half"},
    {"ci95",
     "2.5th and 97.5th percentile (linear interpolation) over bootstrap replicates that define "
     "the metric; each replicate draws the evaluated images with replacement"},
};

static cJSON *metrics_object(const hp_eval_result *r)
{
    const hp_eval_metrics *m = r->metrics;
    int C = r->n_classes;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "images", m->n);
    cJSON_AddItemToObject(o, "accuracy", metric(r, m->accuracy, HP_EVAL_M_ACCURACY));
    cJSON_AddItemToObject(o, "balanced_accuracy",
                          metric(r, m->balanced_accuracy, HP_EVAL_M_BALANCED_ACCURACY));
    cJSON_AddItemToObject(o, "two_class_accuracy",
                          metric(r, m->two_class_accuracy, HP_EVAL_M_TWO_CLASS_ACCURACY));
    cJSON_AddItemToObject(o, "macro_f1", metric(r, m->macro_f1, HP_EVAL_M_MACRO_F1));
    cJSON_AddItemToObject(o, "macro_auc", metric(r, m->macro_auc, HP_EVAL_M_MACRO_AUC));
    cJSON_AddItemToObject(o, "brier", metric(r, m->brier, HP_EVAL_M_BRIER));
    cJSON_AddItemToObject(o, "ece", metric(r, m->ece, HP_EVAL_M_ECE));
    cJSON *pc = cJSON_AddArrayToObject(o, "per_class");
    for (int k = 0; k < C; k++) {
        cJSON *c = cJSON_CreateObject();
        int base = HP_EVAL_M_OVERALL + HP_EVAL_M_PER_CLASS * k;
        cJSON_AddStringToObject(c, "class", r->card->classes[k]);
        cJSON_AddNumberToObject(c, "support", (double)m->support[k]);
        cJSON_AddNumberToObject(c, "predicted", (double)m->predicted[k]);
        cJSON_AddItemToObject(c, "sensitivity", metric(r, m->sensitivity[k], base + HP_EVAL_M_SENS));
        cJSON_AddItemToObject(c, "specificity", metric(r, m->specificity[k], base + HP_EVAL_M_SPEC));
        cJSON_AddItemToObject(c, "ppv", metric(r, m->ppv[k], base + HP_EVAL_M_PPV));
        cJSON_AddItemToObject(c, "f1", metric(r, m->f1[k], base + HP_EVAL_M_F1));
        cJSON_AddItemToObject(c, "auc", metric(r, m->auc[k], base + HP_EVAL_M_AUC));
        cJSON_AddItemToArray(pc, c);
    }
    cJSON *cm = cJSON_AddObjectToObject(o, "confusion_matrix");
    cJSON_AddStringToObject(cm, "rows", "truth");
    cJSON_AddStringToObject(cm, "columns", "prediction");
    cJSON_AddItemToObject(cm, "order",
                          cJSON_CreateStringArray((const char *const *)r->card->classes, C));
    cJSON *counts = cJSON_AddArrayToObject(cm, "counts");
    for (int t = 0; t < C; t++) {
        cJSON *row = cJSON_CreateArray();
        for (int p = 0; p < C; p++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)m->confusion[t * C + p]));
        cJSON_AddItemToArray(counts, row);
    }
    cJSON *rel = cJSON_AddObjectToObject(o, "reliability");
    cJSON_AddNumberToObject(rel, "bins", HP_EVAL_ECE_BINS);
    cJSON *cnt = cJSON_AddArrayToObject(rel, "count");
    cJSON *conf = cJSON_AddArrayToObject(rel, "confidence");
    cJSON *acc = cJSON_AddArrayToObject(rel, "accuracy");
    for (int b = 0; b < HP_EVAL_ECE_BINS; b++) {
        cJSON_AddItemToArray(cnt, cJSON_CreateNumber((double)m->bin_count[b]));
        cJSON_AddItemToArray(conf, num_or_null(m->bin_confidence[b]));
        cJSON_AddItemToArray(acc, num_or_null(m->bin_accuracy[b]));
    }
    cJSON *def = cJSON_AddObjectToObject(o, "definitions");
    for (size_t i = 0; i < sizeof definitions / sizeof definitions[0]; i++)
        cJSON_AddStringToObject(def, definitions[i][0], definitions[i][1]);
    return o;
}

hp_status hp_eval_write_metrics_json(const hp_eval_result *r, const char *path, hp_error *err)
{
    const hp_eval_run_options *o = r->opt;
    const hp_card *card = r->card;
    cJSON *root = cJSON_CreateObject();
    char when[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), when);
    cJSON_AddStringToObject(root, "schema_version", HP_EVAL_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "histoplan_version", HP_VERSION);
    cJSON_AddStringToObject(root, "generated_at", when);
    cJSON_AddStringToObject(root, "notice", HP_EVAL_NOTICE);

    cJSON *mo = cJSON_AddObjectToObject(root, "model");
    if (o->model_path)
        cJSON_AddStringToObject(mo, "file", base_name(o->model_path));
    else
        cJSON_AddNullToObject(mo, "file");
    cJSON_AddStringToObject(mo, "name", card->name);
    if (card->version)
        cJSON_AddStringToObject(mo, "version", card->version);
    else
        cJSON_AddNullToObject(mo, "version");
    if (r->model_sha256[0])
        cJSON_AddStringToObject(mo, "sha256", r->model_sha256);
    else
        cJSON_AddNullToObject(mo, "sha256");
    cJSON_AddItemToObject(mo, "classes",
                          cJSON_CreateStringArray((const char *const *)card->classes, r->n_classes));
    cJSON_AddNumberToObject(mo, "mpp", card->mpp);
    cJSON_AddStringToObject(mo, "backend", o->backend_name ? o->backend_name : "cpu");

    cJSON *da = cJSON_AddObjectToObject(root, "data");
    cJSON_AddStringToObject(da, "kind", hp_eval_data_kind_name(r->data->kind));
    cJSON_AddStringToObject(da, "root", r->data->root);
    cJSON_AddNumberToObject(da, "images_total", r->data->n);
    cJSON_AddBoolToObject(da, "labelled", r->labelled);
    cJSON_AddItemToObject(da, "default_mpp", r->data->default_mpp > 0
                                                 ? cJSON_CreateNumber(r->data->default_mpp)
                                                 : cJSON_CreateNull());

    cJSON *sp = cJSON_AddObjectToObject(root, "split");
    cJSON_AddStringToObject(sp, "spec", r->split.spec);
    cJSON_AddStringToObject(sp, "definition", hp_eval_split_definition(&r->split));
    cJSON_AddNumberToObject(sp, "images", r->n);
    if (r->split.kind == HP_EVAL_SPLIT_KFOLD) {
        cJSON_AddNumberToObject(sp, "k", r->split.k);
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->split.seed);
        cJSON_AddStringToObject(sp, "seed", seed);
        if (r->split.fold >= 0)
            cJSON_AddNumberToObject(sp, "fold", r->split.fold);
        else
            cJSON_AddNullToObject(sp, "fold");
    }

    cJSON *la = cJSON_AddArrayToObject(root, "labels");
    for (int u = 0; u < r->n_labels; u++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "data_label", r->labels[u].data_label);
        cJSON_AddStringToObject(l, "card_class", card->classes[r->labels[u].card_class]);
        cJSON_AddStringToObject(l, "matched_by", r->labels[u].how);
        cJSON_AddNumberToObject(l, "images", r->labels[u].images);
        cJSON_AddItemToArray(la, l);
    }

    cJSON *ti = cJSON_AddObjectToObject(root, "tiling");
    cJSON_AddNumberToObject(ti, "target_mpp", card->mpp);
    cJSON_AddNumberToObject(ti, "tile_size", card->input_w > 0 ? card->input_w : 0);
    cJSON_AddNumberToObject(ti, "tiles", (double)r->tiles_total);
    cJSON *src = cJSON_AddObjectToObject(ti, "mpp_sources");
    for (int q = 0; q < r->n; q++) {
        const char *s = r->info[q].mpp_source ? r->info[q].mpp_source : "unknown";
        cJSON *c = cJSON_GetObjectItemCaseSensitive(src, s);
        if (c)
            cJSON_SetNumberValue(c, c->valuedouble + 1);
        else
            cJSON_AddNumberToObject(src, s, 1);
    }
    cJSON_AddStringToObject(ti, "rule",
                            "each image resampled from its own MPP to the card's, then cut into "
                            "floor(W/T) x floor(H/T) non-overlapping centred tiles (at least one "
                            "each way; white past the image's edge); every tile used");
    cJSON_AddStringToObject(root, "tta", hp_eval_tta_name(o->infer.tta));
    if (o->stain_method_name) {
        cJSON *st = cJSON_AddObjectToObject(root, "stain");
        cJSON_AddStringToObject(st, "method", o->stain_method_name);
        cJSON_AddStringToObject(st, "target", base_name(o->stain_target_path));
    } else {
        cJSON_AddNullToObject(root, "stain");
    }
    cJSON *ag = cJSON_AddObjectToObject(root, "aggregation");
    cJSON_AddStringToObject(ag, "rule",
                            "mean of the softmax probabilities over the image's tiles and their "
                            "test-time views, each weighted equally");
    cJSON_AddStringToObject(ag, "predicted", "argmax of the mean (first class on a tie)");
    if (r->ci) {
        cJSON *bo = cJSON_AddObjectToObject(root, "bootstrap");
        cJSON_AddNumberToObject(bo, "replicates", o->bootstrap);
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(bo, "seed", seed);
        cJSON_AddStringToObject(bo, "method",
                                "percentile bootstrap over images: each replicate draws n images "
                                "with replacement, index = SplitMix64(seed) next() mod n");
        cJSON_AddNumberToObject(bo, "interval", 0.95);
    } else {
        cJSON_AddNullToObject(root, "bootstrap");
    }
    if (r->metrics)
        cJSON_AddItemToObject(root, "metrics", metrics_object(r));
    else
        cJSON_AddNullToObject(root, "metrics");
    if (r->n_fold_metrics) {
        cJSON *fo = cJSON_AddArrayToObject(root, "folds");
        for (int f = 0; f < r->n_fold_metrics; f++) {
            const hp_eval_metrics *m = &r->fold_metrics[f];
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "fold", f);
            cJSON_AddNumberToObject(e, "images", m->n);
            cJSON_AddItemToObject(e, "accuracy", num_or_null(m->n ? m->accuracy : NAN));
            cJSON_AddItemToObject(e, "balanced_accuracy",
                                  num_or_null(m->n ? m->balanced_accuracy : NAN));
            cJSON_AddItemToObject(e, "macro_f1", num_or_null(m->n ? m->macro_f1 : NAN));
            cJSON_AddItemToArray(fo, e);
        }
    } else {
        cJSON_AddNullToObject(root, "folds");
    }
    cJSON *tm = cJSON_AddObjectToObject(root, "timing");
    cJSON_AddNumberToObject(tm, "inference_s", r->seconds_inference);
    cJSON_AddNumberToObject(tm, "total_s", r->seconds_total);
    cJSON_AddItemToObject(tm, "images_per_s",
                          num_or_null(r->seconds_inference > 0 ? r->n / r->seconds_inference : NAN));
    cJSON_AddItemToObject(tm, "tiles_per_s",
                          num_or_null(r->seconds_inference > 0
                                          ? r->tiles_total * hp_eval_tta_views(o->infer.tta) /
                                                r->seconds_inference
                                          : NAN));
    cJSON *wa = cJSON_AddArrayToObject(root, "warnings");
    for (int i = 0; i < r->n_warnings; i++)
        cJSON_AddItemToArray(wa, cJSON_CreateString(r->warnings[i]));

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_status st = hp_atomic_write_text(path, text, err);
    cJSON_free(text);
    return st;
}

/* ---- CSV ------------------------------------------------------------------------------- */

static int argmax(const float *p, int c)
{
    int b = 0;
    for (int k = 1; k < c; k++)
        if (p[k] > p[b])
            b = k;
    return b;
}

hp_status hp_eval_write_predictions(const hp_eval_result *r, const char *path, hp_error *err)
{
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st != HP_OK)
        return st;
    int C = r->n_classes, folds = r->split.kind == HP_EVAL_SPLIT_KFOLD;
    FILE *f = af.f;
    fputs("image,truth,predicted", f);
    for (int k = 0; k < C; k++) {
        char col[256];
        snprintf(col, sizeof col, "prob_%s", r->card->classes[k]);
        fputc(',', f);
        hp_csv_field(f, col);
    }
    fputs(folds ? ",tiles,fold\n" : ",tiles\n", f);
    for (int q = 0; q < r->n; q++) {
        const float *p = r->prob + (size_t)q * C;
        hp_csv_field(f, r->data->items[r->item[q]].name);
        fputc(',', f);
        if (r->truth[q] >= 0)
            hp_csv_field(f, r->card->classes[r->truth[q]]);
        fputc(',', f);
        hp_csv_field(f, r->card->classes[argmax(p, C)]);
        for (int k = 0; k < C; k++)
            fprintf(f, ",%.9g", p[k]);
        fprintf(f, ",%d", r->info[q].tiles);
        if (folds)
            fprintf(f, ",%d", r->fold[q]);
        fputc('\n', f);
    }
    return hp_atomic_finish(path, &af, !ferror(f), err);
}

hp_status hp_eval_write_submission(const hp_eval_result *r, const char *path, hp_error *err)
{
    int C = r->n_classes;
    int code[HP_EVAL_MAX_CLASSES];
    for (int k = 0; k < C; k++)
        code[k] = (int)hp_eval_card_class_canonical(r->card, k);
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st != HP_OK)
        return st;
    fputs("case,class\n", af.f);
    for (int q = 0; q < r->n; q++) {
        int k = argmax(r->prob + (size_t)q * C, C);
        if (code[k] < 0) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s: predicted class '%s' is none of BACH's four; the submission "
                              "format has no code for it",
                              r->data->items[r->item[q]].name, r->card->classes[k]);
            hp_atomic_finish(path, &af, 0, err);
            return st;
        }
        fprintf(af.f, "%d,%d\n", r->data->items[r->item[q]].case_number, code[k]);
    }
    return hp_atomic_finish(path, &af, !ferror(af.f), err);
}
