/* `histoplan analyze`: runs pipeline/analyze.h over one or more slides, one after another; a
 * failure in one slide is recorded (terminal and OUT/batch-summary.json) and the rest still run. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/sha256.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "io/atomic_file.h"
#include "io/slide.h"
#include "models/model.h"
#include "pipeline/analyze.h"
#include "pipeline/analyze_stain.h"
#include "pipeline/tissue.h"
#include "cli/default_model.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: histoplan analyze SLIDE... [options]\n"
            "\n"
            "Finds the tissue, runs the model over its tiles and writes, for each slide, the folder\n"
            "OUT/<slide-id>/: heatmap_<class>.png, overlay.png, mask.png, heatmap.tiff,\n"
            "regions.geojson (QuPath), regions.xml (ASAP), tiles.csv and findings.json (written\n"
            "last; the folder is built as <slide-id>.partial and renamed when complete).\n"
            "The slide id never repeats the file name. For research use, not diagnosis.\n"
            "\n"
            "options:\n"
            "  --model M.onnx      model with its card beside it (default: the zoo's\n"
            "                      " HP_DEFAULT_MODEL ", from $HP_MODEL_DIR,\n"
            "                      <bin>/../share/histoplan/zoo, the source tree's models/zoo\n"
            "                      or the installed zoo)\n"
            "  --backend cpu|cuda  default cpu\n"
            "  --mpp X             microns per pixel at level 0, overriding the slide's\n"
            "  --out DIR           output folder (default: out)\n"
            "  --slide-id ID       folder and findings id (one slide only; A-Z a-z 0-9 _ -)\n"
            "  --case ACCESSION    case accession recorded in findings.json\n"
            "  --overwrite         replace a completed folder (else refused, or skipped in a batch)\n"
            "  --threads N         tile reader threads (default: all CPUs; results do not change)\n"
            "  --batch N           tiles per model batch (default 16)\n"
            "  --mask MASK.png     tissue mask to use instead of the detection (PNG, JPEG or\n"
            "                      TIFF covering the whole slide at any downsample, e.g. from\n"
            "                      QuPath; luminance >= 128 is tissue)\n"
            "  --roi X,Y,W,H       analyse only this level-0 rectangle (pixels)\n"
            "  --stain macenko|reinhard\n"
            "                      normalize each slide's stain to --stain-target before the\n"
            "                      model (the slide's own stain is fitted on up to %d of its\n"
            "                      tissue tiles; a slide that cannot be fitted fails)\n"
            "  --stain-target REF  a reference image (PNG, JPEG, TIFF), or stored parameters\n"
            "                      (a .json file: {\"method\", \"stain_matrix\", \"max_conc\"} or\n"
            "                      {\"method\", \"mean\", \"std\"})\n"
            "  --help              this text\n"
            "\n"
            "exit status: 0 all analyzed (or skipped), 1 any slide failed (or the stain target\n"
            "is unusable), 2 bad usage\n",
            HP_ANALYZE_STAIN_FIT_TILES);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* X,Y,W,H: four integers, X and Y >= 0, W and H > 0. */
static int parse_roi(const char *s, int64_t v[4])
{
    const char *q = s;
    for (int k = 0; k < 4; k++) {
        char *end;
        if (*q < '0' || *q > '9')
            return -1; /* no sign, no space, no empty field */
        errno = 0;
        long long x = strtoll(q, &end, 10);
        if (errno || end == q || x > (1LL << 40) || (k >= 2 && x <= 0))
            return -1;
        v[k] = x;
        if (k < 3 && *end != ',')
            return -1;
        if (k == 3 && *end)
            return -1;
        q = end + 1;
    }
    return 0;
}

/* A byte that can be part of a path written into a message. */
static int path_byte(char c)
{
    return c != ' ' && c != '\'' && c != '"' && c != ':' && c != '(' && c != ')' && c != ',' && c != '\n';
}

/* Messages from the readers name the file; batch-summary.json must not: the file name, or a
 * folder above it, may hold a patient's name. Every occurrence of the path or of its last
 * component becomes "<slide>", and so does a message's tail that is the start of either: a
 * message cut short at HP_ERROR_MSG_MAX (a long path) ends inside the path, where a whole-path
 * match would miss it. The result never grows past `cap` bytes. */
static void scrub(char *msg, size_t cap, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    const char *needles[2] = {path, base};
    size_t nl[2] = {strlen(path), strlen(base)};
    static const char rep[] = "<slide>";
    char *out = malloc(cap);
    if (!out || cap == 0) {
        free(out);
        if (cap)
            snprintf(msg, cap, "(message withheld: it may name the slide file)");
        return;
    }
    size_t o = 0, n = strlen(msg);
    for (size_t i = 0; i < n;) {
        size_t skip = 0;
        for (int w = 0; w < 2 && !skip; w++) {
            if (!nl[w])
                continue;
            size_t rest = n - i;
            if (rest >= nl[w] ? !memcmp(msg + i, needles[w], nl[w])
                              : (!memcmp(msg + i, needles[w], rest) && (i == 0 || !path_byte(msg[i - 1]))))
                skip = rest >= nl[w] ? nl[w] : rest;
        }
        if (skip) {
            for (size_t k = 0; rep[k] && o + 1 < cap; k++)
                out[o++] = rep[k];
            i += skip;
        } else {
            if (o + 1 < cap)
                out[o++] = msg[i];
            i++;
        }
    }
    out[o] = '\0';
    memcpy(msg, out, o + 1);
    free(out);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

typedef struct {
    char id[HP_FINDINGS_SLIDE_ID_MAX + 1];
    const char *status; /* "done", "skipped", "failed" */
    char msg[HP_ERROR_MSG_MAX];
} slide_result;

static int write_summary(const char *out_dir, const slide_result *r, int n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/batch-summary.json", out_dir);
    hp_atomic_file af;
    hp_error err = {0};
    if (hp_atomic_open(path, &af, &err) != HP_OK) {
        fprintf(stderr, "histoplan analyze: %s\n", err.msg);
        return -1;
    }
    int failed = 0;
    for (int i = 0; i < n; i++)
        failed += !strcmp(r[i].status, "failed");
    fprintf(af.f, "{\n  \"slides\": %d,\n  \"failed\": %d,\n  \"results\": [", n, failed);
    for (int i = 0; i < n; i++) {
        fprintf(af.f, "%s\n    {\"index\": %d, \"slide_id\": ", i ? "," : "", i);
        if (r[i].id[0])
            json_str(af.f, r[i].id);
        else
            fputs("null", af.f);
        fprintf(af.f, ", \"status\": \"%s\", \"message\": ", r[i].status);
        json_str(af.f, r[i].msg);
        fputc('}', af.f);
    }
    fprintf(af.f, "\n  ]\n}\n");
    if (hp_atomic_finish(path, &af, 1, &err) != HP_OK) {
        fprintf(stderr, "histoplan analyze: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void print_summary(const hp_findings *f, const char *out_dir)
{
    printf("slide %s  %" PRId64 " x %" PRId64 " px  %.4g um/px (%s)\n", f->slide_id, f->width_px,
           f->height_px, f->mpp_x, f->mpp_source);
    /* First after the slide's name: nothing below means anything when the model is not valid. */
    if (f->out_of_domain)
        printf("  MODEL NOT VALID FOR THIS SLIDE: %s. No category and no care plan will be "
               "suggested.\n",
               f->domain_reason);
    else if (f->domain_checked)
        printf("  domain: in the model's domain (%.1f%% of tiles beyond the out-of-domain threshold)\n",
               100 * f->ood_fraction_beyond);
    else
        printf("  domain: not checked (the model card ships no out-of-domain detector)\n");
    printf("  tissue %.3f mm2 (%.1f%% of the slide); %" PRId64 " tiles analysed of %" PRId64 "\n",
           f->tissue_area_mm2, 100 * f->tissue_fraction, f->tiles_analysed, f->tiles_total);
    for (int k = 0; k < f->n_classes; k++) {
        const hp_findings_class *c = &f->classes[k];
        printf("  %-12s %9.3f mm2  %5.1f%%  %" PRId64 " regions", c->name, c->area_mm2,
               isnan(c->fraction_of_tissue) ? 0.0 : 100 * c->fraction_of_tissue, c->region_count);
        if (c->largest_region_id)
            printf("  largest %.2f mm across", c->largest_diameter_mm);
        printf("\n");
    }
    if (f->invasive.cls) {
        if (f->invasive.largest_region_id)
            printf("  largest invasive focus: region %d, %.2f mm (greatest dimension)\n",
                   f->invasive.largest_region_id, f->invasive.largest_diameter_mm);
        else
            printf("  largest invasive focus: none\n");
    }
    printf("  QC:");
    if (!f->qc_flags)
        printf(" none");
    for (int b = 0; b < HP_QC_FLAG_COUNT; b++)
        if (f->qc_flags & (1u << b))
            printf(" %s", hp_qc_flag_name(1u << b));
    printf("\n");
    printf("  time %.1f s: open %.2f, tissue %.2f, tiling %.2f, inference %.2f, heatmap %.2f, "
           "regions %.2f, writing %.2f\n",
           f->t_total, f->t_open, f->t_tissue, f->t_tiling, f->t_inference, f->t_heatmap,
           f->t_regions, f->t_writing);
    printf("  output %s/%s/\n", out_dir, f->slide_id);
    printf("  research use only, not a diagnosis\n");
}

static void on_progress(void *user, long done, long total)
{
    hp_progress *p = user;
    p->total = total;
    hp_progress_update(p, done);
}

int hp_cli_analyze(int argc, char **argv)
{
    const char *model_path = NULL, *backend = "cpu", *stain_target = NULL;
    int stain_given = 0;
    hp_stain_method stain_method = HP_STAIN_MACENKO;
    hp_stain_params stain_params;
    hp_analyze_options o;
    hp_analyze_options_init(&o);
    o.out_dir = "out";
    const char **slides = calloc((size_t)argc, sizeof *slides);
    int n_slides = 0, rc = HP_EXIT_OK;
    slide_result *res = NULL;
    hp_model *m = NULL;
    if (!slides)
        return HP_EXIT_FAILED;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            goto out;
        }
        if (!strcmp(a, "--overwrite")) {
            o.overwrite = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            slides[n_slides++] = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "histoplan analyze: %s needs a value (or is unknown)\n\n", a);
            goto usage_err;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model"))
            model_path = v;
        else if (!strcmp(a, "--backend")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
                fprintf(stderr, "histoplan analyze: --backend is cpu or cuda\n\n");
                goto usage_err;
            }
            backend = v;
        } else if (!strcmp(a, "--mpp")) {
            char *end;
            o.mpp = strtod(v, &end);
            if (end == v || *end || !(o.mpp >= HP_SLIDE_MPP_MIN && o.mpp <= HP_SLIDE_MPP_MAX)) {
                fprintf(stderr, "histoplan analyze: --mpp takes %g..%g\n\n", HP_SLIDE_MPP_MIN,
                        HP_SLIDE_MPP_MAX);
                goto usage_err;
            }
        } else if (!strcmp(a, "--mask"))
            o.mask_path = v;
        else if (!strcmp(a, "--roi")) {
            int64_t r[4];
            if (parse_roi(v, r)) {
                fprintf(stderr, "histoplan analyze: --roi takes X,Y,W,H: level-0 pixels, "
                                "X,Y >= 0, W,H > 0 (got '%s')\n\n", v);
                goto usage_err;
            }
            o.roi_x = r[0], o.roi_y = r[1], o.roi_w = r[2], o.roi_h = r[3];
        } else if (!strcmp(a, "--stain")) {
            hp_error se = {0};
            if (hp_stain_method_parse(v, &stain_method, &se) != HP_OK) {
                fprintf(stderr, "histoplan analyze: --stain is macenko or reinhard\n\n");
                goto usage_err;
            }
            stain_given = 1;
        } else if (!strcmp(a, "--stain-target"))
            stain_target = v;
        else if (!strcmp(a, "--out"))
            o.out_dir = v;
        else if (!strcmp(a, "--slide-id"))
            o.slide_id = v;
        else if (!strcmp(a, "--case"))
            o.accession = v;
        else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 1, 256, &o.threads)) {
                fprintf(stderr, "histoplan analyze: --threads takes 1..256\n\n");
                goto usage_err;
            }
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(v, 1, 1024, &o.batch)) {
                fprintf(stderr, "histoplan analyze: --batch takes 1..1024\n\n");
                goto usage_err;
            }
        } else {
            fprintf(stderr, "histoplan analyze: unknown option %s\n\n", a);
            goto usage_err;
        }
    }
    if (n_slides == 0) {
        fprintf(stderr, "histoplan analyze: no slide given\n\n");
        goto usage_err;
    }
    if (o.slide_id && n_slides > 1) {
        fprintf(stderr, "histoplan analyze: --slide-id names one slide; %d given\n\n", n_slides);
        goto usage_err;
    }

    if (stain_given != (stain_target != NULL)) {
        fprintf(stderr, "histoplan analyze: --stain and --stain-target go together\n\n");
        goto usage_err;
    }
    if (stain_given) {
        hp_error se = {0};
        if (hp_analyze_stain_target_load(stain_method, stain_target, &stain_params, &se) != HP_OK) {
            fprintf(stderr, "histoplan analyze: %s\n", se.msg);
            rc = HP_EXIT_FAILED;
            goto out;
        }
        o.stain_target = &stain_params;
    }

    char defpath[PATH_MAX];
    if (!model_path) {
        char tried[4 * PATH_MAX];
        if (hp_cli_default_model(defpath, sizeof defpath, tried, sizeof tried)) {
            fprintf(stderr, "histoplan analyze: default model %s not found (looked in %s); set "
                            "HP_MODEL_DIR or give --model\n", HP_DEFAULT_MODEL, tried);
            rc = HP_EXIT_FAILED;
            goto out;
        }
        model_path = defpath;
    }
    hp_model_options mo = hp_model_default_options();
    mo.backend = !strcmp(backend, "cuda") ? HP_BACKEND_CUDA : HP_BACKEND_CPU;
    mo.require_card = 1;
    hp_error err = {0};
    m = hp_model_open(model_path, &mo, &err);
    if (!m) {
        fprintf(stderr, "histoplan analyze: %s\n", err.msg);
        rc = HP_EXIT_FAILED;
        goto out;
    }
    char model_hash[65];
    if (hp_sha256_file(model_path, model_hash, &err) != HP_OK) {
        fprintf(stderr, "histoplan analyze: %s\n", err.msg);
        rc = HP_EXIT_FAILED;
        goto out;
    }
    o.model_sha256 = model_hash;
    o.backend_name = backend;
    o.skip_completed = n_slides > 1 && !o.overwrite;

    res = calloc((size_t)n_slides, sizeof *res);
    if (!res) {
        rc = HP_EXIT_FAILED;
        goto out;
    }
    int failed = 0, skipped = 0;
    for (int i = 0; i < n_slides; i++) {
        hp_findings f;
        hp_findings_init(&f);
        hp_error e = {0};
        hp_analyze_outcome oc;
        hp_progress prog;
        char label[64];
        snprintf(label, sizeof label, "slide %d/%d", i + 1, n_slides);
        hp_progress_start(&prog, label, 1);
        o.progress = on_progress;
        o.progress_user = &prog;
        /* Hashing comes first in the run, and hashing a FIFO would wait for a writer forever. */
        hp_status st = hp_slide_check_file(slides[i], &e);
        if (st == HP_OK)
            st = hp_analyze_slide(m, slides[i], &o, &f, &oc, res[i].id, &e);
        hp_progress_finish(&prog);
        if (st != HP_OK) {
            failed++;
            res[i].status = "failed";
            fprintf(stderr, "histoplan analyze: %s: %s\n", slides[i], e.msg);
            snprintf(res[i].msg, sizeof res[i].msg, "%s", e.msg);
            scrub(res[i].msg, sizeof res[i].msg, slides[i]);
        } else if (oc == HP_ANALYZE_SKIPPED) {
            res[i].status = "skipped";
            skipped++;
            snprintf(res[i].msg, sizeof res[i].msg,
                     "already completed in %s/%s (--overwrite reruns it)", o.out_dir, res[i].id);
            printf("slide %d/%d %s: skipped, %s\n", i + 1, n_slides, res[i].id, res[i].msg);
        } else {
            res[i].status = "done";
            snprintf(res[i].msg, sizeof res[i].msg, "completed");
            print_summary(&f, o.out_dir);
        }
        fflush(stdout);
        hp_findings_free(&f);
    }
    if (n_slides > 1) {
        struct stat sb;
        if (stat(o.out_dir, &sb) == 0 && write_summary(o.out_dir, res, n_slides) == 0)
            fprintf(stderr, "histoplan analyze: %d of %d slides failed, %d skipped; see "
                            "%s/batch-summary.json\n", failed, n_slides, skipped, o.out_dir);
    }
    rc = failed ? HP_EXIT_FAILED : HP_EXIT_OK;
    goto out;

usage_err:
    usage(stderr);
    rc = HP_EXIT_USAGE;
out:
    hp_model_destroy(m);
    free(res);
    free(slides);
    return rc;
}
