/* `histoplan eval`: a classifier measured on a labelled image set (eval/eval_run.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/progress.h"
#include "eval/eval_dataset.h"
#include "eval/eval_run.h"
#include "eval/eval_split.h"
#include "pipeline/analyze_stain.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan eval --model M.onnx DATA [options]\n"
            "       histoplan eval DATA --list [--split NAME]\n"
            "\n"
            "Measures a tile classifier on a labelled image set. DATA is:\n"
            "  a BACH Part A folder as distributed: Photos/{Normal,Benign,InSitu,Invasive}/*.tif\n"
            "    with Photos/microscopy_ground_truth.csv (0.42 um/px unless the images say else);\n"
            "  the unlabelled BACH test folder (test0.tif ...): predictions, and submission.csv\n"
            "    in the challenge's format (case,class; 0 Normal 1 Benign 2 InSitu 3 Invasive);\n"
            "  class folders DATA/<class>/<image>; or a CSV file of path,label rows.\n"
            "Each image is resampled to the card's microns per pixel, cut into tiles, classified,\n"
            "and its tile probabilities averaged. Labels are matched to the card's classes by\n"
            "name through one table of spellings; a label that matches none is refused.\n"
            "\n"
            "Writes to OUT: metrics.json (accuracy, balanced accuracy, 2-class accuracy, macro-F1,\n"
            "per-class sensitivity, specificity, PPV, F1, one-vs-rest AUC, Brier score, ECE, each\n"
            "with a seeded bootstrap 95%% interval; confusion matrix), predictions.csv,\n"
            "reliability.png, confusion.png and summary.html.\n"
            "\n"
            "options:\n"
            "  --model M.onnx        the model, with its card M.card.json beside it\n"
            "  --out DIR             output folder (default histoplan-eval); refused if it exists\n"
            "  --overwrite           replace OUT (only once the new results are complete)\n"
            "  --split NAME          all (default); eva (= eva:val) or eva:train: the eva\n"
            "                        benchmark's BACH split; kfold:K:SEED[:FOLD]: stratified folds\n"
            "  --mpp X               microns per pixel of every image (overrides metadata)\n"
            "  --tta none|flips|dihedral   test-time augmentation (default none)\n"
            "  --stain macenko|reinhard --stain-target REF   normalize each image's stain\n"
            "  --bootstrap N         bootstrap replicates for the intervals (default 1000; 0: none)\n"
            "  --seed S              bootstrap seed (default 1)\n"
            "  --label-map A=b,...   map data labels to card classes explicitly\n"
            "  --expect-classes a,b,...  refuse a card whose class order differs from this\n"
            "  --backend cpu|cuda    default cpu\n"
            "  --threads N           image reader threads (default: CPUs, at most 8)\n"
            "  --batch N             tiles per model batch (default 32)\n"
            "  --list                print the data set's images, labels, folds and whether the\n"
            "                        split selects them (CSV), and exit; needs no model\n"
            "  --help                this text\n"
            "\n"
            "exit status: 0 done, 1 failed (a bad image, a label mismatch, ...), 2 bad usage\n");
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static int list_split(const char *data, const char *split)
{
    hp_error err = {0};
    hp_eval_split s;
    hp_eval_dataset *d = NULL;
    int *fold = NULL;
    unsigned char *sel = NULL;
    int rc = HP_EXIT_FAILED;
    if (hp_eval_split_parse(split, &s, &err) != HP_OK) {
        fprintf(stderr, "histoplan eval: %s\n", err.msg);
        return HP_EXIT_USAGE;
    }
    if (hp_eval_dataset_open(data, &d, &err) != HP_OK)
        goto out;
    fold = malloc(sizeof *fold * (size_t)d->n);
    sel = malloc((size_t)d->n);
    if (!fold || !sel) {
        hp_error_set(&err, HP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (hp_eval_split_apply(&s, d, fold, sel, &err) != HP_OK)
        goto out;
    printf("image,path,label,fold,selected\n");
    for (int i = 0; i < d->n; i++) {
        csv_field(d->items[i].name);
        putchar(',');
        csv_field(d->items[i].path);
        putchar(',');
        if (d->items[i].label)
            csv_field(d->items[i].label);
        putchar(',');
        if (fold[i] >= 0)
            printf("%d", fold[i]);
        printf(",%d\n", sel[i]);
    }
    rc = HP_EXIT_OK;
out:
    if (rc != HP_EXIT_OK)
        fprintf(stderr, "histoplan eval: %s\n", err.msg);
    free(fold);
    free(sel);
    hp_eval_dataset_destroy(d);
    return rc;
}

static void on_progress(void *user, long done, long total)
{
    hp_progress *p = user;
    p->total = total;
    hp_progress_update(p, done);
}

int hp_cli_eval(int argc, char **argv)
{
    const char *model_path = NULL, *data = NULL, *backend = "cpu", *stain_target = NULL;
    int list = 0, stain_given = 0;
    hp_stain_method stain_method = HP_STAIN_MACENKO;
    hp_stain_params stain_params;
    hp_eval_run_options o;
    hp_eval_run_options_init(&o);
    o.out_dir = "histoplan-eval";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return HP_EXIT_OK;
        }
        if (!strcmp(a, "--overwrite")) {
            o.overwrite = 1;
            continue;
        }
        if (!strcmp(a, "--list")) {
            list = 1;
            continue;
        }
        if (a[0] != '-' || !a[1]) {
            if (data) {
                fprintf(stderr, "histoplan eval: one DATA only (%s and %s given)\n\n", data, a);
                usage(stderr);
                return HP_EXIT_USAGE;
            }
            data = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "histoplan eval: %s needs a value (or is unknown)\n\n", a);
            usage(stderr);
            return HP_EXIT_USAGE;
        }
        const char *v = argv[++i];
        long n;
        if (!strcmp(a, "--model"))
            model_path = v;
        else if (!strcmp(a, "--out"))
            o.out_dir = v;
        else if (!strcmp(a, "--split"))
            o.split_spec = v;
        else if (!strcmp(a, "--label-map"))
            o.label_map_spec = v;
        else if (!strcmp(a, "--expect-classes"))
            o.expect_classes = v;
        else if (!strcmp(a, "--mpp")) {
            char *end;
            double x = strtod(v, &end);
            if (end == v || *end || !(x >= 0.05 && x <= 20)) {
                fprintf(stderr, "histoplan eval: --mpp %s: expected a number in 0.05..20\n", v);
                return HP_EXIT_USAGE;
            }
            o.infer.mpp_override = x;
        } else if (!strcmp(a, "--tta")) {
            if (hp_eval_tta_parse(v, &o.infer.tta)) {
                fprintf(stderr, "histoplan eval: --tta is none, flips or dihedral\n");
                return HP_EXIT_USAGE;
            }
        } else if (!strcmp(a, "--stain")) {
            hp_error se = {0};
            if (hp_stain_method_parse(v, &stain_method, &se) != HP_OK) {
                fprintf(stderr, "histoplan eval: --stain is macenko or reinhard\n");
                return HP_EXIT_USAGE;
            }
            stain_given = 1;
        } else if (!strcmp(a, "--stain-target"))
            stain_target = v;
        else if (!strcmp(a, "--bootstrap")) {
            if (parse_int(v, 0, 1000000, &n)) {
                fprintf(stderr, "histoplan eval: --bootstrap %s: expected 0..1000000\n", v);
                return HP_EXIT_USAGE;
            }
            o.bootstrap = (int)n;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') {
                fprintf(stderr, "histoplan eval: --seed %s: expected a non-negative integer\n", v);
                return HP_EXIT_USAGE;
            }
            o.seed = s;
        } else if (!strcmp(a, "--backend")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
                fprintf(stderr, "histoplan eval: --backend is cpu or cuda\n");
                return HP_EXIT_USAGE;
            }
            backend = v;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 1, 256, &n)) {
                fprintf(stderr, "histoplan eval: --threads %s: expected 1..256\n", v);
                return HP_EXIT_USAGE;
            }
            o.infer.threads = (int)n;
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(v, 1, 4096, &n)) {
                fprintf(stderr, "histoplan eval: --batch %s: expected 1..4096\n", v);
                return HP_EXIT_USAGE;
            }
            o.infer.batch = (int)n;
        } else {
            fprintf(stderr, "histoplan eval: unknown option %s\n\n", a);
            usage(stderr);
            return HP_EXIT_USAGE;
        }
    }
    {
        hp_eval_split check;
        hp_error se = {0};
        if (hp_eval_split_parse(o.split_spec, &check, &se) != HP_OK) {
            fprintf(stderr, "histoplan eval: %s\n", se.msg);
            return HP_EXIT_USAGE;
        }
    }
    if (!data) {
        fprintf(stderr, "histoplan eval: no DATA given\n\n");
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    if (list)
        return list_split(data, o.split_spec);
    if (!model_path) {
        fprintf(stderr, "histoplan eval: --model is required\n\n");
        usage(stderr);
        return HP_EXIT_USAGE;
    }
    if (stain_given != (stain_target != NULL)) {
        fprintf(stderr, "histoplan eval: --stain and --stain-target go together\n");
        return HP_EXIT_USAGE;
    }
    hp_error err = {0};
    if (stain_given) {
        if (hp_analyze_stain_target_load(stain_method, stain_target, &stain_params, &err) != HP_OK) {
            fprintf(stderr, "histoplan eval: %s\n", err.msg);
            return HP_EXIT_FAILED;
        }
        o.infer.stain_target = &stain_params;
        o.stain_method_name = hp_stain_method_name(stain_method);
        o.stain_target_path = stain_target;
    }
    hp_model_options mo = hp_model_default_options();
    mo.backend = !strcmp(backend, "cuda") ? HP_BACKEND_CUDA : HP_BACKEND_CPU;
    mo.require_card = 1;
    hp_model *m = hp_model_open(model_path, &mo, &err);
    if (!m) {
        fprintf(stderr, "histoplan eval: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    o.model_path = model_path;
    o.backend_name = backend;
    hp_progress p;
    hp_progress_start(&p, "eval", 0);
    o.infer.progress = on_progress;
    o.infer.progress_user = &p;
    char summary[512] = "";
    hp_status st = hp_eval_run(m, data, &o, summary, sizeof summary, &err);
    hp_progress_finish(&p);
    hp_model_destroy(m);
    if (st != HP_OK) {
        fprintf(stderr, "histoplan eval: %s\n", err.msg);
        return HP_EXIT_FAILED;
    }
    printf("%s\nwritten: %s\n", summary, o.out_dir);
    return HP_EXIT_OK;
}
