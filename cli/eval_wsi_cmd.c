/* `histoplan eval-wsi`: tile predictions scored against BACH Part B annotations
 * (eval/wsi_run.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
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
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = HP_EXIT_OK;
            goto out;
        }
        if (!strcmp(a, "--overwrite")) {
            o.overwrite = 1;
            continue;
        }
        const char **list = !strcmp(a, "--truth") ? truth : !strcmp(a, "--findings") ? findings
                            : !strcmp(a, "--slide")                      ? slides : NULL;
        if (list) {
            int *n = list == truth ? &nt : list == findings ? &nf : &ns;
            int before = *n;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
                list[(*n)++] = argv[++i];
            if (*n == before) {
                fprintf(stderr, "histoplan eval-wsi: %s needs at least one file\n\n", a);
                usage(stderr);
                goto out;
            }
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "histoplan eval-wsi: %s needs a value (or is unknown)\n\n", a);
            usage(stderr);
            goto out;
        }
        const char *v = argv[++i];
        char *end;
        errno = 0;
        if (!strcmp(a, "--out"))
            o.out_dir = v;
        else if (!strcmp(a, "--downsample")) {
            o.downsample = strtod(v, &end);
            if (end == v || *end || !(o.downsample >= 1 && o.downsample <= 65536)) {
                fprintf(stderr, "histoplan eval-wsi: --downsample %s: expected 1..65536\n", v);
                goto out;
            }
        } else if (!strcmp(a, "--level")) {
            long l = strtol(v, &end, 10);
            if (errno || end == v || *end || l < 0 || l > 31) {
                fprintf(stderr, "histoplan eval-wsi: --level %s: expected 0..31\n", v);
                goto out;
            }
            o.level = (int)l;
        } else {
            fprintf(stderr, "histoplan eval-wsi: unknown option %s\n\n", a);
            usage(stderr);
            goto out;
        }
    }
    if (nt == 0 || nt != nf) {
        fprintf(stderr,
                "histoplan eval-wsi: give one --truth file per --findings file (%d and %d given)\n\n",
                nt, nf);
        usage(stderr);
        goto out;
    }
    if (o.level >= 0 && ns != nt) {
        fprintf(stderr, "histoplan eval-wsi: --level needs one --slide per truth file (%d and %d)\n",
                ns, nt);
        goto out;
    }
    if (o.level < 0 && ns) {
        fprintf(stderr, "histoplan eval-wsi: --slide is used with --level only\n");
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
