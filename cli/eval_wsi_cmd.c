/* `histoplan eval-wsi`: tile predictions scored against BACH Part B annotations
 * (eval/wsi_run.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "eval/wsi_run.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan eval-wsi --truth A01.xml... --findings OUT/<id>/findings.json...\n"
            "                          [--downsample D | --level L --slide SLIDE...] [--out DIR]\n"
            "\n"
            "Scores the tile predictions of `histoplan analyze` against BACH Part B ground truth:\n"
            "Aperio ImageScope annotation XML (Annotations/Annotation/Regions/Region[@Text]/\n"
            "Vertices/Vertex[@X,@Y], level-0 pixels; labels such as Benign, Carcinoma in situ,\n"
            "Carcinoma invasive). Both are rasterized at the same scale; everything unannotated\n"
            "or not analysed counts as normal. Writes DIR/wsi-metrics.json with, per slide and\n"
            "pooled, the challenge score of Aresta et al. 2019 (eq. 1: 1 - sum|pred - gt| /\n"
            "sum max(gt, 3 - gt) over pixels where either is not normal; labels 0 normal,\n"
            "1 benign, 2 in situ, 3 invasive) and Dice and IoU per class, and DIR/maps/ with both\n"
            "rasters as PNG. Truth and findings files pair in the order given.\n"
            "\n"
            "options:\n"
            "  --truth X...          annotation XML files, one per slide\n"
            "  --findings F...       findings.json of each slide's analysis (tiles.csv beside it)\n"
            "  --downsample D        level-0 pixels per raster pixel (default 16)\n"
            "  --level L             rasterize at pyramid level L of each slide (needs --slide)\n"
            "  --slide SLIDE...      the slide files, in the same order\n"
            "  --out DIR             output folder (default histoplan-eval-wsi)\n"
            "  --overwrite           replace DIR (only once the new results are complete)\n"
            "  --help                this text\n"
            "\n"
            "exit status: 0 scored, 1 failed (malformed XML, a polygon outside its slide, ...),\n"
            "2 bad usage\n");
}

int hp_cli_eval_wsi(int argc, char **argv)
{
    const char **truth = calloc((size_t)argc, sizeof *truth);
    const char **findings = calloc((size_t)argc, sizeof *findings);
    const char **slides = calloc((size_t)argc, sizeof *slides);
    int nt = 0, nf = 0, ns = 0, rc = HP_EXIT_USAGE;
    hp_wsi_run_options o = {.level = -1, .downsample = 16, .out_dir = "histoplan-eval-wsi"};
    if (!truth || !findings || !slides) {
        rc = HP_EXIT_FAILED;
        goto out;
    }
    enum { O_TRUTH = 1, O_FINDINGS, O_SLIDE, O_DOWNSAMPLE, O_LEVEL, O_OUT, O_OVERWRITE };
    static const hp_cli_option opts[] = {
        {"truth", 0, 1, O_TRUTH},       {"findings", 0, 1, O_FINDINGS}, {"slide", 0, 1, O_SLIDE},
        {"downsample", 0, 1, O_DOWNSAMPLE}, {"level", 0, 1, O_LEVEL},   {"out", 'o', 1, O_OUT},
        {"overwrite", 0, 0, O_OVERWRITE}, {0},
    };
    hp_cli_parser ps;
    hp_cli_parser_init(&ps, "eval-wsi", "eval-wsi", opts, argc, argv);
    /* --truth, --findings and --slide take one file each and the files that follow it, so
     * `--truth A01.xml A02.xml` and `--truth A01.xml --truth A02.xml` mean the same. */
    const char **list = NULL;
    int *count = NULL;
    int c;
    long long n;
    while ((c = hp_cli_next(&ps)) != HP_CLI_END) {
        switch (c) {
        case O_TRUTH: list = truth, count = &nt; list[(*count)++] = ps.value; break;
        case O_FINDINGS: list = findings, count = &nf; list[(*count)++] = ps.value; break;
        case O_SLIDE: list = slides, count = &ns; list[(*count)++] = ps.value; break;
        case O_OUT: o.out_dir = ps.value; list = NULL; break;
        case O_OVERWRITE: o.overwrite = 1; list = NULL; break;
        case O_DOWNSAMPLE:
            list = NULL;
            if (hp_cli_double_value(&ps, 1, 65536, &o.downsample))
                goto out;
            break;
        case O_LEVEL:
            list = NULL;
            if (hp_cli_int_value(&ps, 0, 31, &n))
                goto out;
            o.level = (int)n;
            break;
        case HP_CLI_ARG:
            if (!list) {
                rc = hp_cli_usage_error(&ps, "unexpected argument '%s' (files follow --truth, "
                                             "--findings or --slide)", ps.value);
                goto out;
            }
            list[(*count)++] = ps.value;
            break;
        case HP_CLI_HELP: usage(stdout); rc = HP_EXIT_OK; goto out;
        default: goto out;
        }
    }
    if (nt == 0 || nt != nf) {
        rc = hp_cli_usage_error(&ps, "give one --truth file per --findings file (%d and %d given)",
                                nt, nf);
        goto out;
    }
    if (o.level >= 0 && ns != nt) {
        rc = hp_cli_usage_error(&ps, "--level needs one --slide per truth file (%d and %d)", ns, nt);
        goto out;
    }
    if (o.level < 0 && ns) {
        rc = hp_cli_usage_error(&ps, "--slide is used with --level only");
        goto out;
    }
    o.n = nt;
    o.truth = truth;
    o.findings = findings;
    o.slides = ns ? slides : NULL;
    hp_error err = {0};
    if (hp_wsi_run(&o, stdout, &err) != HP_OK) {
        fprintf(stderr, "histoplan eval-wsi: %s\n", err.msg);
        rc = HP_EXIT_FAILED;
        goto out;
    }
    printf("written: %s\n", o.out_dir);
    rc = HP_EXIT_OK;
out:
    free(truth);
    free(findings);
    free(slides);
    return rc;
}
