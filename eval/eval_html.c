/* summary.html of an evaluation: one self-contained page (figures embedded) with every number
 * of metrics.json that a reader needs, and how it was measured (eval/eval_run.h). */
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_run.h"
#include "io/atomic_file.h"

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.4f", v);
    else
        fputs("&ndash;", f);
}

static void cell_ci(FILE *f, const hp_eval_result *r, double v, int scalar)
{
    fputs("<td>", f);
    num(f, v);
    fputs("</td><td>", f);
    if (r->ci && isfinite(r->ci[scalar].lo)) {
        num(f, r->ci[scalar].lo);
        fputs(" &ndash; ", f);
        num(f, r->ci[scalar].hi);
    } else {
        fputs("&ndash;", f);
    }
    fputs("</td>", f);
}

/* Embeds dir/name as a data: URI image; nothing when the file is absent. */
static int embed_png(FILE *f, const char *dir, const char *name, const char *alt)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *in = fopen(path, "rb");
    if (!in)
        return 0;
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    unsigned char *b64 = n > 0 ? malloc((size_t)(n + 2) / 3 * 4 + 1) : NULL;
    int ok = buf && b64 && fread(buf, 1, (size_t)n, in) == (size_t)n;
    fclose(in);
    if (ok) {
        EVP_EncodeBlock(b64, buf, (int)n);
        fprintf(f, "<figure><img alt=\"%s\" src=\"data:image/png;base64,%s\"></figure>\n", alt,
                (char *)b64);
    }
    free(buf);
    free(b64);
    return ok ? 0 : -1;
}

static void row(FILE *f, const char *k, const char *v)
{
    fputs("<tr><th>", f);
    esc(f, k);
    fputs("</th><td>", f);
    esc(f, v);
    fputs("</td></tr>\n", f);
}

hp_status hp_eval_write_html(const hp_eval_result *r, const char *dir, const char *path,
                             hp_error *err)
{
    const hp_eval_run_options *o = r->opt;
    const hp_eval_metrics *m = r->metrics;
    int C = r->n_classes;
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st != HP_OK)
        return st;
    FILE *f = af.f;
    int ok = 1;
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>histoplan eval: ", f);
    esc(f, r->card->name);
    fputs("</title>\n<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;"
          "text-align:left}td{font-variant-numeric:tabular-nums}.notice{background:#fff3cd;padding:"
          ".6em;border:1px solid #e0c060}img{max-width:100%}</style></head><body>\n", f);
    fputs("<h1>Evaluation of ", f);
    esc(f, r->card->name);
    fputs("</h1>\n<p class=\"notice\">", f);
    esc(f, HP_EVAL_NOTICE);
    fputs("</p>\n<h2>How it was measured</h2>\n<table>\n", f);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s %s (%s), classes in output order: ", r->card->name,
             r->card->version ? r->card->version : "", r->model_sha256[0] ? r->model_sha256 : "no hash");
    for (int k = 0; k < C; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof buf - l, "%s%s", k ? ", " : "", r->card->classes[k]);
    }
    row(f, "model", buf);
    snprintf(buf, sizeof buf, "%s, %s (%d images in total)", hp_eval_data_kind_name(r->data->kind),
             r->data->root, r->data->n);
    row(f, "data", buf);
    snprintf(buf, sizeof buf, "%s: %s; %d images evaluated", r->split.spec,
             hp_eval_split_definition(&r->split), r->n);
    row(f, "split", buf);
    snprintf(buf, sizeof buf,
             "%d x %d px tiles at %.3g um/px, each image resampled from its own MPP; %ld tiles",
             r->card->input_w, r->card->input_h, r->card->mpp, r->tiles_total);
    row(f, "tiling", buf);
    row(f, "test-time augmentation", hp_eval_tta_name(o->infer.tta));
    snprintf(buf, sizeof buf, "%s%s%s", o->stain_method_name ? o->stain_method_name : "none",
             o->stain_method_name ? " towards " : "",
             o->stain_method_name && o->stain_target_path ? o->stain_target_path : "");
    row(f, "stain normalization", buf);
    row(f, "per-image aggregation",
        "mean of the tile softmax probabilities (tiles and views weighted equally); predicted "
        "class = the most probable");
    if (r->ci) {
        snprintf(buf, sizeof buf,
                 "%d replicates, seed %llu; percentile intervals; images drawn with replacement",
                 o->bootstrap, (unsigned long long)o->seed);
        row(f, "95% intervals", buf);
    }
    snprintf(buf, sizeof buf, "%.2f s for %d images: %.2f images/s", r->seconds_inference, r->n,
             r->seconds_inference > 0 ? r->n / r->seconds_inference : 0.0);
    row(f, "inference", buf);
    fputs("</table>\n", f);
    if (r->n_labels) {
        fputs("<h2>Labels</h2>\n<table><tr><th>data label</th><th>card class</th><th>matched by</th>"
              "<th>images</th></tr>\n", f);
        for (int u = 0; u < r->n_labels; u++) {
            fputs("<tr><td>", f);
            esc(f, r->labels[u].data_label);
            fputs("</td><td>", f);
            esc(f, r->card->classes[r->labels[u].card_class]);
            fputs("</td><td>", f);
            esc(f, r->labels[u].how);
            fprintf(f, "</td><td>%d</td></tr>\n", r->labels[u].images);
        }
        fputs("</table>\n", f);
    }
    if (m) {
        static const struct {
            const char *name;
            int scalar;
        } overall[] = {{"accuracy", HP_EVAL_M_ACCURACY},
                       {"balanced accuracy", HP_EVAL_M_BALANCED_ACCURACY},
                       {"2-class accuracy (carcinoma vs not)", HP_EVAL_M_TWO_CLASS_ACCURACY},
                       {"macro-F1", HP_EVAL_M_MACRO_F1},
                       {"macro one-vs-rest AUC", HP_EVAL_M_MACRO_AUC},
                       {"Brier score", HP_EVAL_M_BRIER},
                       {"expected calibration error", HP_EVAL_M_ECE}};
        fputs("<h2>Metrics</h2>\n<table><tr><th>metric</th><th>value</th><th>95% interval</th></tr>\n", f);
        for (size_t i = 0; i < sizeof overall / sizeof overall[0]; i++) {
            fprintf(f, "<tr><th>%s</th>", overall[i].name);
            cell_ci(f, r, hp_eval_metrics_scalar(m, overall[i].scalar), overall[i].scalar);
            fputs("</tr>\n", f);
        }
        fputs("</table>\n<h2>Per class</h2>\n<table><tr><th>class</th><th>images</th>"
              "<th>sensitivity</th><th>95%</th><th>specificity</th><th>95%</th><th>PPV</th>"
              "<th>95%</th><th>F1</th><th>95%</th><th>AUC</th><th>95%</th></tr>\n", f);
        for (int k = 0; k < C; k++) {
            int base = HP_EVAL_M_OVERALL + HP_EVAL_M_PER_CLASS * k;
            fputs("<tr><th>", f);
            esc(f, r->card->classes[k]);
            fprintf(f, "</th><td>%lld</td>", (long long)m->support[k]);
            for (int w = 0; w < HP_EVAL_M_PER_CLASS; w++)
                cell_ci(f, r, hp_eval_metrics_scalar(m, base + w), base + w);
            fputs("</tr>\n", f);
        }
        fputs("</table>\n<h2>Confusion matrix</h2>\n<table><tr><th>truth \\ prediction</th>", f);
        for (int k = 0; k < C; k++) {
            fputs("<th>", f);
            esc(f, r->card->classes[k]);
            fputs("</th>", f);
        }
        fputs("</tr>\n", f);
        for (int t = 0; t < C; t++) {
            fputs("<tr><th>", f);
            esc(f, r->card->classes[t]);
            fputs("</th>", f);
            for (int p = 0; p < C; p++)
                fprintf(f, "<td>%lld</td>", (long long)m->confusion[t * C + p]);
            fputs("</tr>\n", f);
        }
        fputs("</table>\n", f);
        if (r->n_fold_metrics) {
            fputs("<h2>Per fold</h2>\n<table><tr><th>fold</th><th>images</th><th>accuracy</th>"
                  "<th>balanced accuracy</th><th>macro-F1</th></tr>\n", f);
            for (int k = 0; k < r->n_fold_metrics; k++) {
                const hp_eval_metrics *fm = &r->fold_metrics[k];
                fprintf(f, "<tr><th>%d</th><td>%d</td><td>", k, fm->n);
                num(f, fm->n ? fm->accuracy : NAN);
                fputs("</td><td>", f);
                num(f, fm->n ? fm->balanced_accuracy : NAN);
                fputs("</td><td>", f);
                num(f, fm->n ? fm->macro_f1 : NAN);
                fputs("</td></tr>\n", f);
            }
            fputs("</table>\n", f);
        }
        fputs("<h2>Figures</h2>\n", f);
        ok &= embed_png(f, dir, "confusion.png", "confusion matrix") == 0;
        ok &= embed_png(f, dir, "reliability.png", "reliability diagram") == 0;
    } else {
        fputs("<h2>Predictions</h2>\n<p>The data carries no labels: predictions only "
              "(predictions.csv", f);
        if (r->data->kind == HP_EVAL_DATA_BACH_TEST)
            fputs("; the challenge's format in submission.csv", f);
        fputs(").</p>\n<table><tr><th>predicted class</th><th>images</th></tr>\n", f);
        for (int k = 0; k < C; k++) {
            int n = 0;
            for (int q = 0; q < r->n; q++) {
                const float *p = r->prob + (size_t)q * C;
                int b = 0;
                for (int j = 1; j < C; j++)
                    if (p[j] > p[b])
                        b = j;
                n += b == k;
            }
            fputs("<tr><td>", f);
            esc(f, r->card->classes[k]);
            fprintf(f, "</td><td>%d</td></tr>\n", n);
        }
        fputs("</table>\n", f);
    }
    if (r->n_warnings) {
        fputs("<h2>Warnings</h2>\n<ul>\n", f);
        for (int i = 0; i < r->n_warnings; i++) {
            fputs("<li>", f);
            esc(f, r->warnings[i]);
            fputs("</li>\n", f);
        }
        fputs("</ul>\n", f);
    }
    fprintf(f, "<p>histoplan %s</p>\n</body></html>\n", HP_VERSION);
    if (!ok) {
        st = hp_error_set(err, HP_ERR_IO, "%s: a figure could not be embedded", path);
        hp_atomic_finish(path, &af, 0, err);
        return st;
    }
    return hp_atomic_finish(path, &af, !ferror(f), err);
}
