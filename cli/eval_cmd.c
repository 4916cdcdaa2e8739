/* `histoplan eval`: a classifier measured on a labelled image set (eval/eval_run.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "cli/progress.h"
#include "eval/eval_dataset.h"
#include "eval/eval_run.h"
#include "eval/eval_split.h"
#include "io/csv_write.h"
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
        hp_csv_field(stdout, d->items[i].name);
        putchar(',');
        hp_csv_field(stdout, d->items[i].path);
        putchar(',');
        if (d->items[i].label)
            hp_csv_field(stdout, d->items[i].label);
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
    enum {
        O_MODEL = 1, O_OUT, O_OVERWRITE, O_SPLIT, O_MPP, O_TTA, O_STAIN, O_STAIN_TARGET,
        O_BOOTSTRAP, O_SEED, O_LABEL_MAP, O_EXPECT, O_BACKEND, O_THREADS, O_BATCH, O_LIST
    };
    static const hp_cli_option opts[] = {
        {"model", 'm', 1, O_MODEL},         {"out", 'o', 1, O_OUT},
        {"overwrite", 0, 0, O_OVERWRITE},   {"split", 0, 1, O_SPLIT},
        {"mpp", 0, 1, O_MPP},               {"tta", 0, 1, O_TTA},
        {"stain", 0, 1, O_STAIN},           {"stain-target", 0, 1, O_STAIN_TARGET},
        {"bootstrap", 0, 1, O_BOOTSTRAP},   {"seed", 0, 1, O_SEED},
        {"label-map", 0, 1, O_LABEL_MAP},   {"expect-classes", 0, 1, O_EXPECT},
        {"backend", 0, 1, O_BACKEND},       {"threads", 'j', 1, O_THREADS},
        {"batch", 'b', 1, O_BATCH},         {"list", 0, 0, O_LIST},
        {0},
    };
    static const char *const backends[] = {"cpu", "cuda", NULL};
    static const char *const ttas[] = {"none", "flips", "dihedral", NULL};
    static const char *const stains[] = {"macenko", "reinhard", NULL};
    hp_cli_parser ps;
    hp_cli_parser_init(&ps, "eval", "eval", opts, argc, argv);
    int c;
    long long n;
    while ((c = hp_cli_next(&ps)) != HP_CLI_END) {
        switch (c) {
        case O_MODEL: model_path = ps.value; break;
        case O_OUT: o.out_dir = ps.value; break;
        case O_OVERWRITE: o.overwrite = 1; break;
        case O_LIST: list = 1; break;
        case O_SPLIT: o.split_spec = ps.value; break;
        case O_LABEL_MAP: o.label_map_spec = ps.value; break;
        case O_EXPECT: o.expect_classes = ps.value; break;
        case O_STAIN_TARGET: stain_target = ps.value; break;
        case O_MPP:
            if (hp_cli_double_value(&ps, 0.05, 20, &o.infer.mpp_override))
                return HP_EXIT_USAGE;
            break;
        case O_TTA:
            if (hp_cli_choice_value(&ps, ttas) < 0 || hp_eval_tta_parse(ps.value, &o.infer.tta))
                return HP_EXIT_USAGE;
            break;
        case O_STAIN: {
            hp_error se = {0};
            if (hp_cli_choice_value(&ps, stains) < 0 ||
                hp_stain_method_parse(ps.value, &stain_method, &se) != HP_OK)
                return HP_EXIT_USAGE;
            stain_given = 1;
            break;
        }
        case O_BOOTSTRAP:
            if (hp_cli_int_value(&ps, 0, 1000000, &n))
                return HP_EXIT_USAGE;
            o.bootstrap = (int)n;
            break;
        case O_SEED:
            if (hp_cli_int_value(&ps, 0, 9007199254740991LL, &n))
                return HP_EXIT_USAGE;
            o.seed = (unsigned long long)n;
            break;
        case O_BACKEND:
            if (hp_cli_choice_value(&ps, backends) < 0)
                return HP_EXIT_USAGE;
            backend = ps.value;
            break;
        case O_THREADS:
            if (hp_cli_int_value(&ps, 1, 256, &n))
                return HP_EXIT_USAGE;
            o.infer.threads = (int)n;
            break;
        case O_BATCH:
            if (hp_cli_int_value(&ps, 1, 4096, &n))
                return HP_EXIT_USAGE;
            o.infer.batch = (int)n;
            break;
        case HP_CLI_ARG:
            if (data)
                return hp_cli_usage_error(&ps, "one DATA only ('%s' and '%s' given)", data, ps.value);
            data = ps.value;
            break;
        case HP_CLI_HELP: usage(stdout); return HP_EXIT_OK;
        default: return HP_EXIT_USAGE;
        }
    }
    {
        hp_eval_split check;
        hp_error se = {0};
        if (hp_eval_split_parse(o.split_spec, &check, &se) != HP_OK) {
            return hp_cli_usage_error(&ps, "%s", se.msg);
        }
    }
    if (!data)
        return hp_cli_usage_error(&ps, "no DATA given");
    if (list)
        return list_split(data, o.split_spec);
    if (!model_path)
        return hp_cli_usage_error(&ps, "--model is required");
    if (stain_given != (stain_target != NULL))
        return hp_cli_usage_error(&ps, "--stain and --stain-target go together");
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
