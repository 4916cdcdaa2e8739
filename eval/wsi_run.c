/* eval-wsi: pairing, rasters, scores and the output folder (eval/wsi_run.h). */
#include "eval/wsi_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/remove_tree.h"
#include "common/utc_time.h"
#include "eval/eval_outdir.h"
#include "eval/wsi_truth.h"
#include "io/atomic_file.h"
#include "io/image.h"
#include "io/slide.h"

static const char *const label_names[HP_WSI_LABELS] = {"normal", "benign", "in_situ", "invasive"};
static const uint8_t palette[HP_WSI_LABELS][3] = {
    {255, 255, 255}, {77, 175, 74}, {255, 127, 0}, {228, 26, 28}};

#define DEFINITION                                                                                 \
    "Aresta et al. 2019 (Medical Image Analysis 56:122-139), eq. 1: s = 1 - sum|pred - gt| / "    \
    "sum max(|gt - 0|, |gt - 3|), both sums over the pixels where pred or gt is not normal; "     \
    "labels 0 normal (and everything unannotated or not analysed), 1 benign, 2 in situ, 3 "       \
    "invasive; raster pixel (px, py) is the level-0 point ((px + 0.5) D, (py + 0.5) D)"

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static cJSON *score_json(const hp_wsi_score *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "score", num(s->score));
    cJSON_AddNumberToObject(o, "pixels", (double)s->pixels);
    cJSON_AddNumberToObject(o, "pixels_scored", (double)s->scored);
    cJSON_AddNumberToObject(o, "error_sum", s->error_sum);
    cJSON_AddNumberToObject(o, "max_error_sum", s->max_error_sum);
    cJSON *cl = cJSON_AddArrayToObject(o, "classes");
    for (int k = 0; k < HP_WSI_LABELS; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "class", label_names[k]);
        cJSON_AddNumberToObject(c, "label", k);
        cJSON_AddNumberToObject(c, "truth_pixels", (double)s->truth[k]);
        cJSON_AddNumberToObject(c, "predicted_pixels", (double)s->pred[k]);
        cJSON_AddNumberToObject(c, "both_pixels", (double)s->both[k]);
        cJSON_AddItemToObject(c, "dice", num(s->dice[k]));
        cJSON_AddItemToObject(c, "iou", num(s->iou[k]));
        cJSON_AddItemToArray(cl, c);
    }
    return o;
}

static hp_status write_map(const char *path, const uint8_t *lab, int w, int h, hp_error *err)
{
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < (size_t)w * h; i++)
        memcpy(rgb + 3 * i, palette[lab[i] < HP_WSI_LABELS ? lab[i] : 0], 3);
    hp_status st = hp_image_write_png(path, rgb, w, h, err);
    free(rgb);
    return st;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The file name without folder and extension ("A01" of ".../A01.xml"). */
static void stem(const char *p, char *out, size_t cap)
{
    snprintf(out, cap, "%s", base_name(p));
    char *dot = strrchr(out, '.');
    if (dot)
        *dot = 0;
}

static hp_status one_slide(const hp_wsi_run_options *o, int i, const char *partial, cJSON *slides,
                           hp_wsi_score *pooled, double *score_sum, int *scored, FILE *log,
                           hp_error *err)
{
    hp_wsi_findings f;
    hp_wsi_truth t = {0};
    uint8_t *gt = NULL, *pr = NULL;
    hp_slide *sl = NULL;
    hp_status st;
    if ((st = hp_wsi_findings_read(o->findings[i], &f, err)) != HP_OK)
        goto done;
    double D = o->downsample;
    if (o->level >= 0) {
        hp_error se = {0};
        if (!(sl = hp_slide_open(o->slides[i], NULL, &se))) {
            st = hp_error_set(err, se.code ? se.code : HP_ERR_IO, "%s", se.msg);
            goto done;
        }
        int64_t w0, h0;
        if (o->level >= hp_slide_level_count(sl) || hp_slide_level_dimensions(sl, 0, &w0, &h0) != HP_OK) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: has no level %d (levels 0..%d)", o->slides[i],
                              o->level, hp_slide_level_count(sl) - 1);
            goto done;
        }
        if (w0 != f.width || h0 != f.height) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s is %lld x %lld pixels but %s describes a %lld x %lld slide: not "
                              "the slide that was analysed",
                              o->slides[i], (long long)w0, (long long)h0, o->findings[i],
                              (long long)f.width, (long long)f.height);
            goto done;
        }
        D = hp_slide_level_downsample(sl, o->level);
    }
    int w = (int)ceil(f.width / D), h = (int)ceil(f.height / D);
    if ((int64_t)w * h > HP_WSI_RASTER_MAX_PIXELS) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: at downsample %g the raster would be %d x %d pixels; choose a "
                          "coarser level or a larger --downsample",
                          o->findings[i], D, w, h);
        goto done;
    }
    if ((st = hp_wsi_truth_read(o->truth[i], &t, err)) != HP_OK ||
        (st = hp_wsi_truth_check_bounds(&t, o->truth[i], (double)f.width, (double)f.height, err)) !=
            HP_OK)
        goto done;
    gt = malloc((size_t)w * h);
    pr = malloc((size_t)w * h);
    if (!gt || !pr) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    hp_wsi_truth_rasterize(&t, D, w, h, gt);
    if ((st = hp_wsi_predictions_rasterize(&f, D, w, h, pr, err)) != HP_OK)
        goto done;
    hp_wsi_score s = {0};
    if ((st = hp_wsi_score_add(&s, gt, pr, (int64_t)w * h, err)) != HP_OK ||
        (st = hp_wsi_score_add(pooled, gt, pr, (int64_t)w * h, err)) != HP_OK)
        goto done;
    char path[4400];
    snprintf(path, sizeof path, "%s/maps/%s.truth.png", partial, f.slide_id);
    if ((st = write_map(path, gt, w, h, err)) != HP_OK)
        goto done;
    snprintf(path, sizeof path, "%s/maps/%s.pred.png", partial, f.slide_id);
    if ((st = write_map(path, pr, w, h, err)) != HP_OK)
        goto done;
    cJSON *e = score_json(&s);
    cJSON_AddStringToObject(e, "truth", base_name(o->truth[i]));
    cJSON_AddStringToObject(e, "slide_id", f.slide_id);
    cJSON_AddStringToObject(e, "slide_sha256", f.sha256);
    cJSON_AddNumberToObject(e, "regions", t.n);
    cJSON_AddNumberToObject(e, "downsample", D);
    cJSON *r = cJSON_AddArrayToObject(e, "raster");
    cJSON_AddItemToArray(r, cJSON_CreateNumber(w));
    cJSON_AddItemToArray(r, cJSON_CreateNumber(h));
    cJSON_AddItemToArray(slides, e);
    if (isfinite(s.score)) {
        *score_sum += s.score;
        (*scored)++;
    }
    if (log)
        fprintf(log, "%s (%s): score %s%.4f, %lld pixels scored of %lld, %d regions\n",
                base_name(o->truth[i]), f.slide_id, isfinite(s.score) ? "" : "undefined ",
                isfinite(s.score) ? s.score : 0.0, (long long)s.scored, (long long)s.pixels, t.n);
done:
    hp_slide_close(sl);
    hp_wsi_truth_free(&t);
    free(gt);
    free(pr);
    return st;
}

hp_status hp_wsi_run(const hp_wsi_run_options *o, FILE *log, hp_error *err)
{
    if (o->n < 1)
        return hp_error_set(err, HP_ERR_INVALID, "no slides to score");
    if (o->level < 0 && !(o->downsample >= 1))
        return hp_error_set(err, HP_ERR_INVALID, "the downsample must be at least 1");
    if (o->level >= 0 && !o->slides)
        return hp_error_set(err, HP_ERR_INVALID, "--level needs the slide files (--slide)");
    /* A truth file named after another pair's slide id is most likely given out of order. */
    for (int i = 0; i < o->n; i++) {
        char si[256];
        stem(o->truth[i], si, sizeof si);
        for (int j = 0; j < o->n; j++) {
            hp_wsi_findings f;
            hp_error ignore = {0};
            if (j != i && hp_wsi_findings_read(o->findings[j], &f, &ignore) == HP_OK &&
                !strcmp(f.slide_id, si))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s is paired with %s but names the slide %s of %s: truth and "
                                    "findings files pair in the order given",
                                    o->truth[i], o->findings[i], f.slide_id, o->findings[j]);
        }
    }
    struct stat sb;
    if (!o->overwrite && lstat(o->out_dir, &sb) == 0)
        return hp_error_set(err, HP_ERR_INVALID, "%s exists; --overwrite replaces it", o->out_dir);
    char partial[4096], maps[4200];
    snprintf(partial, sizeof partial, "%s.partial", o->out_dir);
    snprintf(maps, sizeof maps, "%s/maps", partial);
    hp_remove_tree(partial);
    if (mkdir(partial, 0755) != 0 || mkdir(maps, 0755) != 0) {
        hp_status st = hp_error_set(err, HP_ERR_IO, "%s: cannot create: %s", partial, strerror(errno));
        hp_remove_tree(partial);
        return st;
    }
    hp_status st = HP_OK;
    cJSON *root = cJSON_CreateObject();
    char when[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), when);
    cJSON_AddStringToObject(root, "schema_version", HP_WSI_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "histoplan_version", HP_VERSION);
    cJSON_AddStringToObject(root, "generated_at", when);
    cJSON_AddStringToObject(root, "definition", DEFINITION);
    cJSON *slides = cJSON_AddArrayToObject(root, "slides");
    hp_wsi_score pooled = {0};
    double score_sum = 0;
    int scored = 0;
    for (int i = 0; i < o->n && st == HP_OK; i++)
        st = one_slide(o, i, partial, slides, &pooled, &score_sum, &scored, log, err);
    if (st == HP_OK) {
        cJSON_AddItemToObject(root, "mean_score", num(scored ? score_sum / scored : NAN));
        cJSON_AddNumberToObject(root, "slides_scored", scored);
        cJSON_AddItemToObject(root, "pooled", score_json(&pooled));
        char *text = cJSON_Print(root);
        char path[4200];
        snprintf(path, sizeof path, "%s/wsi-metrics.json", partial);
        st = text ? hp_atomic_write_text(path, text, err)
                  : hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        cJSON_free(text);
    }
    cJSON_Delete(root);
    if (st == HP_OK)
        st = hp_eval_outdir_publish(partial, o->out_dir, o->overwrite, err);
    if (st != HP_OK) {
        hp_remove_tree(partial);
        return st;
    }
    if (log)
        fprintf(log, "mean of the slides' scores %s%.4f over %d slide(s); pooled score %.4f\n",
                scored ? "" : "undefined ", scored ? score_sum / scored : 0.0, scored,
                isfinite(pooled.score) ? pooled.score : NAN);
    return HP_OK;
}
