/* Shared between pipeline/tissue.c (the mask) and pipeline/tissue_qc.c (QC flags); not public. */
#ifndef HP_TISSUE_INTERNAL_H
#define HP_TISSUE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "io/cv_image.h"
#include "pipeline/tissue.h"

/* HSV of an RGB8 image, converted by OpenCV (io/cv_image.h) a chunk at a time as the pixels are
 * visited in order, so memory stays small whatever the image's size. Hue in degrees [0, 360),
 * saturation and value in [0, 1], as floats: compare them with hp_tissue_ge / hp_tissue_lt,
 * which allow for OpenCV's float rounding (HP_CV_SAT_SLACK, HP_CV_HUE_SLACK) so that a pixel
 * exactly at a threshold falls on the same side as in exact arithmetic. */
#define HP_TISSUE_HSV_CHUNK 4096
typedef struct {
    const uint8_t *rgb;
    size_t n, base, len;
    hp_status st; /* the first conversion failure (out of memory); its pixels read as 0 */
    float hsv[3 * HP_TISSUE_HSV_CHUNK];
} hp_tissue_hsv_iter;

static inline void hp_tissue_hsv_begin(hp_tissue_hsv_iter *it, const uint8_t *rgb, size_t n)
{
    it->rgb = rgb;
    it->n = n;
    it->base = it->len = 0;
    it->st = HP_OK;
}

/* The H, S, V of pixel i; fastest when i increases. */
static inline const float *hp_tissue_hsv_at(hp_tissue_hsv_iter *it, size_t i)
{
    if (i < it->base || i >= it->base + it->len) {
        it->base = i;
        it->len = it->n - i < HP_TISSUE_HSV_CHUNK ? it->n - i : HP_TISSUE_HSV_CHUNK;
        hp_status st = hp_cv_rgb8_to_hsv(it->rgb + 3 * i, it->len, it->hsv);
        if (st) {
            memset(it->hsv, 0, sizeof it->hsv);
            if (!it->st)
                it->st = st;
        }
    }
    return it->hsv + 3 * (i - it->base);
}

/* x >= t and x < t for a hue (slack HP_CV_HUE_SLACK) or a saturation or value (HP_CV_SAT_SLACK). */
static inline int hp_tissue_ge(float x, double t, double slack) { return x >= t - slack; }
static inline int hp_tissue_lt(float x, double t, double slack) { return x < t - slack; }

/* 1 when a pixel of this HSV looks like marker ink rather than H&E (see tissue_qc.c for the
 * ranges). */
int hp_tissue_is_pen(const float *hsv);

/* Fills pen_fraction, brown_fraction and their flags from the thumbnail, the final mask (0/255)
 * and the ink mask (0/1). Fails only when OpenCV runs out of memory. */
hp_status hp_tissue_qc_colour(const uint8_t *rgb, const uint8_t *mask, const uint8_t *pen, int w, int h,
                         const hp_tissue_options *o, hp_tissue_mask *out);

/* Samples up to o->blur_regions tissue regions at ~1 um/px and fills blur_score, the BLUR flag
 * and blur_regions_read. A read failure is returned (the slide's message in err). */
hp_status hp_tissue_qc_focus(hp_slide *s, const hp_tissue_options *o, double mpp, double sat_thr,
                             hp_tissue_mask *out, hp_error *err);

#endif
