#include "report/report_images.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "models/card.h"

#define THUMB_MAX 192

static hp_status write_record(const char *report_dir, const char *name, const uint8_t *rgb, int w, int h,
                              cJSON **record, hp_error *err)
{
    char rel[300], path[4096];
    snprintf(rel, sizeof rel, "images/%s", name);
    snprintf(path, sizeof path, "%s/%s", report_dir, rel);
    hp_status st = hp_image_write_png(path, rgb, w, h, err);
    if (st)
        return st;
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

hp_status hp_report_image_overlay(const char *src, const char *report_dir, const char *name,
                                  double level0_width, hp_overlay *ov, cJSON **record, hp_error *err)
{
    memset(ov, 0, sizeof *ov);
    *record = NULL;
    hp_status st = hp_image_read_rgb8(src, &ov->w, &ov->h, &ov->rgb, err);
    if (st)
        return st;
    ov->scale = level0_width > 0 ? ov->w / level0_width : 0;
    st = write_record(report_dir, name, ov->rgb, ov->w, ov->h, record, err);
    if (st)
        hp_overlay_free(ov);
    return st;
}

hp_status hp_report_image_thumbnail(const hp_overlay *ov, const double bbox[4], const char *report_dir,
                                    const char *name, cJSON **record, hp_error *err)
{
    *record = NULL;
    /* The region's box in overlay pixels, with a quarter of its size as margin on each side
     * (the reviewer sees the surroundings), at least 8 px across. */
    double mx = bbox[2] * 0.25, my = bbox[3] * 0.25;
    int x0 = (int)floor((bbox[0] - mx) * ov->scale), y0 = (int)floor((bbox[1] - my) * ov->scale);
    int x1 = (int)ceil((bbox[0] + bbox[2] + mx) * ov->scale), y1 = (int)ceil((bbox[1] + bbox[3] + my) * ov->scale);
    if (x1 - x0 < 8) {
        x0 -= (8 - (x1 - x0)) / 2;
        x1 = x0 + 8;
    }
    if (y1 - y0 < 8) {
        y0 -= (8 - (y1 - y0)) / 2;
        y1 = y0 + 8;
    }
    if (x0 < 0)
        x0 = 0;
    if (y0 < 0)
        y0 = 0;
    if (x1 > ov->w)
        x1 = ov->w;
    if (y1 > ov->h)
        y1 = ov->h;
    int cw = x1 - x0, ch = y1 - y0;
    if (cw < 1 || ch < 1)
        return hp_error_set(err, HP_ERR_INVALID, "report: region box lies outside the overlay image");
    uint8_t *crop = malloc((size_t)cw * ch * 3);
    if (!crop)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    for (int y = 0; y < ch; y++)
        memcpy(crop + (size_t)y * cw * 3, ov->rgb + ((size_t)(y0 + y) * ov->w + x0) * 3, (size_t)cw * 3);
    double f = (double)THUMB_MAX / (cw > ch ? cw : ch);
    if (f < 1)
        f = 1;
    int tw = (int)lround(cw * f), th = (int)lround(ch * f);
    if (tw > THUMB_MAX)
        tw = THUMB_MAX;
    if (th > THUMB_MAX)
        th = THUMB_MAX;
    uint8_t *thumb = malloc((size_t)tw * th * 3);
    hp_status st = thumb ? hp_image_resize_rgb8(crop, cw, ch, thumb, tw, th) : HP_ERR_NOMEM;
    if (st)
        hp_error_set(err, st, "report: could not scale a region thumbnail");
    else
        st = write_record(report_dir, name, thumb, tw, th, record, err);
    free(crop);
    free(thumb);
    return st;
}

void hp_overlay_free(hp_overlay *ov)
{
    if (!ov)
        return;
    free(ov->rgb);
    memset(ov, 0, sizeof *ov);
}
