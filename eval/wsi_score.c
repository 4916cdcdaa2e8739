/* The BACH Part B score, Dice and IoU, and the prediction raster from an analysis
 * (eval/wsi_score.h). */
#include "eval/wsi_score.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval_csv.h"
#include "eval/eval_labels.h"

hp_status hp_wsi_score_add(hp_wsi_score *s, const uint8_t *truth, const uint8_t *pred, int64_t n,
                           hp_error *err)
{
    for (int64_t i = 0; i < n; i++) {
        int g = truth[i], p = pred[i];
        if (g >= HP_WSI_LABELS || p >= HP_WSI_LABELS)
            return hp_error_set(err, HP_ERR_INVALID, "label %d at pixel %lld is not 0..3",
                                g >= HP_WSI_LABELS ? g : p, (long long)i);
        s->truth[g]++;
        s->pred[p]++;
        if (g == p)
            s->both[g]++;
        if (g || p) {
            s->scored++;
            s->error_sum += abs(p - g);
            s->max_error_sum += g > 3 - g ? g : 3 - g;
        }
    }
    s->pixels += n;
    s->score = s->max_error_sum > 0 ? 1.0 - s->error_sum / s->max_error_sum : NAN;
    for (int k = 0; k < HP_WSI_LABELS; k++) {
        int64_t uni = s->truth[k] + s->pred[k] - s->both[k];
        s->dice[k] = s->truth[k] + s->pred[k] ? 2.0 * s->both[k] / (s->truth[k] + s->pred[k]) : NAN;
        s->iou[k] = uni ? (double)s->both[k] / uni : NAN;
    }
    return HP_OK;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

hp_status hp_wsi_findings_read(const char *path, hp_wsi_findings *f, hp_error *err)
{
    memset(f, 0, sizeof *f);
    char *text = hp_eval_read_text(path, err);
    if (!text)
        return err ? err->code : HP_ERR_IO;
    hp_status st = HP_OK;
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root)
        return hp_error_set(err, HP_ERR_INVALID, "%s: not JSON (findings.json of histoplan analyze)",
                            path);
    const cJSON *slide = get(root, "slide"), *classes = get(root, "classes"),
                *outputs = get(root, "outputs");
    const cJSON *id = get(slide, "slide_id"), *sha = get(slide, "sha256"),
                *w = get(slide, "level0_width_px"), *h = get(slide, "level0_height_px"),
                *tiles = get(outputs, "tiles_csv");
    if (!cJSON_IsString(id) || !cJSON_IsString(sha) || !cJSON_IsNumber(w) || !cJSON_IsNumber(h) ||
        !(w->valuedouble >= 1) || !(h->valuedouble >= 1)) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: slide.slide_id, slide.sha256, slide.level0_width_px and "
                          "slide.level0_height_px are required",
                          path);
        goto done;
    }
    if (!cJSON_IsString(tiles)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: outputs.tiles_csv is missing (no tile predictions)",
                          path);
        goto done;
    }
    snprintf(f->slide_id, sizeof f->slide_id, "%s", id->valuestring);
    snprintf(f->sha256, sizeof f->sha256, "%s", sha->valuestring);
    f->width = (int64_t)w->valuedouble;
    f->height = (int64_t)h->valuedouble;
    if (strstr(tiles->valuestring, "..") || tiles->valuestring[0] == '/') {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: outputs.tiles_csv must be a path inside its folder",
                          path);
        goto done;
    }
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(f->tiles_csv, sizeof f->tiles_csv, "%.*s/%s", (int)(slash - path), path,
                 tiles->valuestring);
    else
        snprintf(f->tiles_csv, sizeof f->tiles_csv, "%s", tiles->valuestring);
    int n = cJSON_GetArraySize(classes);
    if (!cJSON_IsArray(classes) || n < 1 || n > 64) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: classes must list the model's classes", path);
        goto done;
    }
    f->n_classes = n;
    int seen[HP_WSI_LABELS] = {0};
    for (int k = 0; k < n; k++) {
        const cJSON *name = get(cJSON_GetArrayItem(classes, k), "name");
        hp_eval_class c = cJSON_IsString(name) ? hp_eval_class_parse(name->valuestring)
                                               : HP_EVAL_CLASS_NONE;
        if (c == HP_EVAL_CLASS_NONE || seen[c]++) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s: class '%s' is not one of BACH's four (normal, benign, in situ, "
                              "invasive) or repeats one; the Part B score is defined on those",
                              path, cJSON_IsString(name) ? name->valuestring : "?");
            goto done;
        }
        f->ordinal[k] = (int)c;
    }
    if (n != HP_WSI_LABELS)
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: the model has %d classes; the Part B score needs BACH's four", path, n);
done:
    cJSON_Delete(root);
    return st;
}

hp_status hp_wsi_predictions_rasterize(const hp_wsi_findings *f, double D, int w, int h,
                                       uint8_t *out, hp_error *err)
{
    memset(out, 0, (size_t)w * h);
    char *text = hp_eval_read_text(f->tiles_csv, err);
    if (!text)
        return err ? err->code : HP_ERR_IO;
    hp_status st = HP_OK;
    const char *p = text;
    /* The columns this score reads come first; later ones (region_id, ood_score, any added since)
     * are carried along, and every row has as many fields as the header. */
    int C = f->n_classes, want = 7 + C + 2;
    char *fl[80] = {0};
    int nf = hp_eval_csv_record(&p, fl, 80);
    if (nf >= want)
        want = nf;
    if (nf != want || strcmp(fl[0] ? fl[0] : "", "tile_index") || strcmp(fl[3] ? fl[3] : "", "x") ||
        strcmp(fl[5] ? fl[5] : "", "size") || strncmp(fl[7] ? fl[7] : "", "prob_", 5)) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: the header is not tiles.csv's (tile_index,i,j,x,y,size,"
                          "tissue_fraction, %d prob_ columns, entropy,top_class, ...)",
                          f->tiles_csv, C);
    }
    for (int i = 0; i < 80; i++) {
        free(fl[i]);
        fl[i] = NULL;
    }
    for (int row = 2; st == HP_OK && *p; row++) {
        nf = hp_eval_csv_record(&p, fl, 80);
        if (nf == 1 && fl[0] && !*fl[0]) {
            free(fl[0]);
            fl[0] = NULL;
            continue;
        }
        double v[64 + 7] = {0};
        int ok = nf == want;
        for (int i = 0; ok && i < 7 + C; i++) {
            char *end;
            if (i == 6)
                continue; /* tissue fraction, may be empty */
            v[i] = fl[i] ? strtod(fl[i], &end) : NAN;
            ok = fl[i] && end != fl[i] && !*end && isfinite(v[i]);
        }
        ok = ok && v[5] > 0;
        if (!ok) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d is not a tiles.csv row", f->tiles_csv,
                              row);
        } else {
            int best = 0;
            for (int k = 1; k < C; k++)
                if (v[7 + k] > v[7 + best])
                    best = k;
            uint8_t lab = (uint8_t)f->ordinal[best];
            double x0 = v[3], y0 = v[4], x1 = v[3] + v[5], y1 = v[4] + v[5];
            /* Pixels whose centre lies in [x0, x1) x [y0, y1). */
            int px0 = (int)fmax(0, ceil(x0 / D - 0.5)), px1 = (int)fmin(w, ceil(x1 / D - 0.5));
            int py0 = (int)fmax(0, ceil(y0 / D - 0.5)), py1 = (int)fmin(h, ceil(y1 / D - 0.5));
            for (int py = py0; py < py1; py++)
                memset(out + (size_t)py * w + (px0 < px1 ? px0 : 0), lab,
                       px0 < px1 ? (size_t)(px1 - px0) : 0);
        }
        for (int i = 0; i < 80; i++) {
            free(fl[i]);
            fl[i] = NULL;
        }
    }
    free(text);
    return st;
}
