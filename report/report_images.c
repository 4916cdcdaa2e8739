#include "report/report_images.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "pipeline/legend.h"
#include "io/slide.h"
#include "common/sha256.h"

#define THUMB_MAX 192

static hp_status record_of(const char *path, const char *rel, int w, int h, cJSON **record, hp_error *err);

/* Writes `rgb` as images/`name`, with legend `lg` under it when given, and its record. */
static hp_status write_record(const char *report_dir, const char *name, const uint8_t *rgb, int w, int h,
                              const hp_legend *lg, cJSON **record, hp_error *err)
{
    char rel[300], path[4096];
    snprintf(rel, sizeof rel, "images/%s", name);
    snprintf(path, sizeof path, "%s/%s", report_dir, rel);
    hp_status st = lg ? hp_legend_write_png(path, rgb, w, h, lg, err) : hp_image_write_png(path, rgb, w, h, err);
    if (st)
        return st;
    if (lg) {
        /* The record gives the size of the file written, legend included. */
        uint8_t *back = NULL;
        if ((st = hp_image_read_rgb8(path, &w, &h, &back, err)))
            return st;
        free(back);
    }
    return record_of(path, rel, w, h, record, err);
}

static hp_status record_of(const char *path, const char *rel, int w, int h, cJSON **record, hp_error *err)
{
    hp_status st;
    char hex[65];
    if ((st = hp_sha256_file(path, hex, err)))
        return st;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "file", rel);
    cJSON_AddStringToObject(r, "sha256", hex);
    cJSON_AddNumberToObject(r, "width_px", w);
    cJSON_AddNumberToObject(r, "height_px", h);
    *record = r;
    return HP_OK;
}

/* The picture's size and class key from the overlay's legend layout (pipeline/legend.h). */
static hp_status read_key(const char *text, hp_overlay *ov, hp_error *err)
{
    hp_status st = HP_OK;
    cJSON *j = cJSON_Parse(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "map");
    const cJSON *mw = cJSON_GetArrayItem(map, 0), *mh = cJSON_GetArrayItem(map, 1);
    if (cJSON_IsNumber(mw) && cJSON_IsNumber(mh) && mw->valuedouble >= 1 && mh->valuedouble >= 1 &&
        mw->valuedouble <= ov->w && mh->valuedouble <= ov->h) {
        ov->map_w = (int)mw->valuedouble;
        ov->map_h = (int)mh->valuedouble;
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(j, "classes");
    int n = cJSON_IsArray(cl) ? cJSON_GetArraySize(cl) : 0;
    if (n > 0 && n <= 255) {
        ov->class_names = calloc((size_t)n, sizeof *ov->class_names);
        ov->class_rgb = calloc((size_t)n, sizeof *ov->class_rgb);
        if (!ov->class_names || !ov->class_rgb)
            st = hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
        int k = 0;
        for (const cJSON *c = cl->child; c && !st; c = c->next, k++) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(c, "name");
            const cJSON *rgb = cJSON_GetObjectItemCaseSensitive(c, "rgb");
            ov->class_names[k] = strdup(cJSON_IsString(nm) ? nm->valuestring : "?");
            if (!ov->class_names[k])
                st = hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
            for (int q = 0; q < 3; q++) {
                const cJSON *v = cJSON_GetArrayItem(rgb, q);
                double d = cJSON_IsNumber(v) ? v->valuedouble : 0;
                ov->class_rgb[k][q] = (uint8_t)(d < 0 ? 0 : d > 255 ? 255 : d);
            }
        }
        ov->n_classes = k;
    }
    cJSON_Delete(j);
    return st;
}

hp_status hp_report_image_overlay(const char *src, const char *report_dir, const char *name,
                                  double level0_width, double mpp, const char *slide_id,
                                  hp_overlay *ov, cJSON **record, hp_error *err)
{
    memset(ov, 0, sizeof *ov);
    *record = NULL;
    hp_status st = hp_image_read_rgb8(src, &ov->w, &ov->h, &ov->rgb, err);
    if (st)
        return st;
    ov->map_w = ov->w;
    ov->map_h = ov->h;
    char *layout = NULL;
    if ((st = hp_legend_read_layout(src, &layout, err)) || (layout && (st = read_key(layout, ov, err))))
        goto fail;
    if (slide_id && !(ov->slide_id = strdup(slide_id))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
        goto fail;
    }
    ov->scale = level0_width > 0 ? ov->map_w / level0_width : 0;
    ov->um_per_px = mpp > 0 && ov->scale > 0 ? mpp / ov->scale : 0;
    /* Copied with its legend layout, so the report's copy reads like the original. */
    char rel[300], path[4096];
    snprintf(rel, sizeof rel, "images/%s", name);
    snprintf(path, sizeof path, "%s/%s", report_dir, rel);
    if (!(st = hp_legend_write_rgb_png(path, ov->rgb, ov->w, ov->h, layout, err)))
        st = record_of(path, rel, ov->w, ov->h, record, err);
fail:
    free(layout);
    if (st)
        hp_overlay_free(ov);
    return st;
}

hp_status hp_report_image_thumbnail(const hp_overlay *ov, const double bbox[4], const char *report_dir,
                                    const char *name, cJSON **record, hp_error *err)
{
    *record = NULL;
    if (!isfinite(bbox[0]) || !isfinite(bbox[1]) || !(bbox[2] > 0) || !(bbox[3] > 0) || !isfinite(bbox[2]) ||
        !isfinite(bbox[3]) || !(ov->scale > 0) || !isfinite(ov->scale) || ov->map_w < 1 || ov->map_h < 1)
        return hp_error_set(err, HP_ERR_INVALID, "report: a region box or the overlay's scale is not usable");
    /* The region's box in overlay pixels, with a quarter of its size as margin on each side
     * (the reviewer sees the surroundings), at least 8 px across. Worked in double and clamped
     * to the overlay before any conversion to int, whatever the box's numbers. */
    double mx = bbox[2] * 0.25, my = bbox[3] * 0.25;
    double fx0 = floor((bbox[0] - mx) * ov->scale), fy0 = floor((bbox[1] - my) * ov->scale);
    double fx1 = ceil((bbox[0] + bbox[2] + mx) * ov->scale), fy1 = ceil((bbox[1] + bbox[3] + my) * ov->scale);
    if (fx1 - fx0 < 8) {
        fx0 -= floor((8 - (fx1 - fx0)) / 2);
        fx1 = fx0 + 8;
    }
    if (fy1 - fy0 < 8) {
        fy0 -= floor((8 - (fy1 - fy0)) / 2);
        fy1 = fy0 + 8;
    }
    /* Inside the picture, never into the legend band under it. */
    fx0 = fx0 < 0 ? 0 : fx0 > ov->map_w ? ov->map_w : fx0;
    fy0 = fy0 < 0 ? 0 : fy0 > ov->map_h ? ov->map_h : fy0;
    fx1 = fx1 < 0 ? 0 : fx1 > ov->map_w ? ov->map_w : fx1;
    fy1 = fy1 < 0 ? 0 : fy1 > ov->map_h ? ov->map_h : fy1;
    int x0 = (int)fx0, y0 = (int)fy0, x1 = (int)fx1, y1 = (int)fy1;
    int cw = x1 - x0, ch = y1 - y0;
    if (cw < 1 || ch < 1)
        return hp_error_set(err, HP_ERR_INVALID, "report: region box lies outside the overlay image");
    uint8_t *crop = malloc((size_t)cw * ch * 3);
    if (!crop)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    for (int y = 0; y < ch; y++)
        memcpy(crop + (size_t)y * cw * 3, ov->rgb + ((size_t)(y0 + y) * ov->w + x0) * 3, (size_t)cw * 3);
    /* Scaled, keeping its shape, so that its longer side is THUMB_MAX. */
    double f = (double)THUMB_MAX / (cw > ch ? cw : ch);
    int tw = (int)lround(cw * f), th = (int)lround(ch * f);
    tw = tw < 1 ? 1 : tw;
    th = th < 1 ? 1 : th;
    uint8_t *thumb = malloc((size_t)tw * th * 3);
    hp_status st = thumb ? hp_image_resize_rgb8(crop, cw, ch, thumb, tw, th) : HP_ERR_NOMEM;
    if (st) {
        hp_error_set(err, st, "report: could not scale a region thumbnail");
    } else {
        hp_legend lg = {.title = "Region on the overlay",
                        .slide_id = ov->slide_id,
                        .um_per_px = ov->um_per_px / f,
                        .n_classes = ov->n_classes,
                        .class_names = (const char *const *)ov->class_names,
                        .class_rgb = (const uint8_t(*)[3])ov->class_rgb};
        st = write_record(report_dir, name, thumb, tw, th, ov->um_per_px > 0 ? &lg : NULL, record, err);
    }
    free(crop);
    free(thumb);
    return st;
}

void hp_overlay_free(hp_overlay *ov)
{
    if (!ov)
        return;
    free(ov->rgb);
    free(ov->slide_id);
    for (int k = 0; ov->class_names && k < ov->n_classes; k++)
        free(ov->class_names[k]);
    free(ov->class_names);
    free(ov->class_rgb);
    memset(ov, 0, sizeof *ov);
}

#define TISSUE_THUMB_MAX 256
#define DIRECT_READ_MAX (4096LL * 4096) /* larger reads are sampled row by row */

/* Area average of row `src` (sw pixels) into `dst` (dw pixels), RGB8. */
static void shrink_row(const uint8_t *src, int sw, uint8_t *dst, int dw)
{
    for (int x = 0; x < dw; x++) {
        int a = (int)((int64_t)x * sw / dw), b = (int)((int64_t)(x + 1) * sw / dw);
        if (b <= a)
            b = a + 1;
        unsigned sum[3] = {0, 0, 0};
        for (int k = a; k < b; k++)
            for (int c = 0; c < 3; c++)
                sum[c] += src[(size_t)k * 3 + c];
        for (int c = 0; c < 3; c++)
            dst[(size_t)x * 3 + c] = (uint8_t)((sum[c] + (unsigned)(b - a) / 2) / (unsigned)(b - a));
    }
}

hp_status hp_report_image_from_slide(struct hp_slide *slide, const double bbox[4], double margin, double mpp,
                                     const char *slide_id, const char *report_dir, const char *name,
                                     cJSON **record, hp_error *err)
{
    *record = NULL;
    int64_t sw, sh;
    if (hp_slide_level_dimensions(slide, 0, &sw, &sh))
        return hp_error_set(err, HP_ERR_INVALID, "report: %s", hp_slide_error(slide));
    for (int k = 0; k < 4; k++)
        if (!isfinite(bbox[k]))
            return hp_error_set(err, HP_ERR_INVALID, "report: a region's box is not a set of finite numbers");
    /* The box with `margin` times its size around it, inside the slide. */
    margin = margin > 0 && margin < 4 ? margin : 0;
    double x0 = bbox[0] - bbox[2] * margin, y0 = bbox[1] - bbox[3] * margin;
    double x1 = bbox[0] + bbox[2] * (1 + margin), y1 = bbox[1] + bbox[3] * (1 + margin);
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > (double)sw)
        x1 = (double)sw;
    if (y1 > (double)sh)
        y1 = (double)sh;
    double w0 = x1 - x0, h0 = y1 - y0;
    if (w0 < 1 || h0 < 1)
        return hp_error_set(err, HP_ERR_INVALID, "report: a region's box lies outside its slide");
    double side = w0 > h0 ? w0 : h0;
    double f = side > TISSUE_THUMB_MAX ? TISSUE_THUMB_MAX / side : 1.0;
    int tw = (int)lround(w0 * f), th = (int)lround(h0 * f);
    tw = tw < 1 ? 1 : tw;
    th = th < 1 ? 1 : th;
    /* The coarsest level that still holds the thumbnail's resolution. */
    int level = 0;
    double want = side / TISSUE_THUMB_MAX, d = 1.0;
    for (int l = 1; l < hp_slide_level_count(slide); l++) {
        double dl = hp_slide_level_downsample(slide, l);
        if (dl > d && dl <= want) {
            d = dl;
            level = l;
        }
    }
    int lw = (int)ceil(w0 / d), lh = (int)ceil(h0 / d);
    uint8_t *thumb = malloc((size_t)tw * th * 3);
    uint8_t *buf = NULL;
    hp_status st = HP_OK;
    if (!thumb)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    if ((int64_t)lw * lh <= DIRECT_READ_MAX) {
        buf = malloc((size_t)lw * lh * 3);
        if (!buf)
            st = hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
        else if (hp_slide_read_region(slide, level, (int64_t)x0, (int64_t)y0, lw, lh, buf))
            st = hp_error_set(err, HP_ERR_IO, "report: reading a region thumbnail: %s", hp_slide_error(slide));
        else if ((st = hp_image_resize_rgb8(buf, lw, lh, thumb, tw, th)))
            hp_error_set(err, st, "report: could not scale a region thumbnail");
    } else {
        /* One row of the level per thumbnail row, averaged across: bounded memory. */
        buf = malloc((size_t)lw * 3);
        if (!buf)
            st = hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
        for (int y = 0; y < th && !st; y++) {
            int64_t sy = (int64_t)(y0 + (y + 0.5) * h0 / th);
            if (hp_slide_read_region(slide, level, (int64_t)x0, sy, lw, 1, buf))
                st = hp_error_set(err, HP_ERR_IO, "report: reading a region thumbnail: %s", hp_slide_error(slide));
            else
                shrink_row(buf, lw, thumb + (size_t)y * tw * 3, tw);
        }
    }
    if (!st) {
        hp_legend lg = {.title = margin > 0 ? "Tissue (H&E) under the region" : "Evidence tile (H&E)",
                        .slide_id = slide_id,
                        .um_per_px = mpp * w0 / tw};
        st = write_record(report_dir, name, thumb, tw, th, mpp > 0 ? &lg : NULL, record, err);
    }
    free(buf);
    free(thumb);
    return st;
}
