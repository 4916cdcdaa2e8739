/* Shared between pipeline/tissue.c (the mask) and pipeline/tissue_qc.c (QC flags); not public. */
#ifndef HP_TISSUE_INTERNAL_H
#define HP_TISSUE_INTERNAL_H

#include <stdint.h>

#include "pipeline/tissue.h"

/* HSV of an RGB8 pixel: hue in degrees [0, 360), saturation and value in [0, 1]. */
static inline void hp_tissue_hsv(const uint8_t *p, double *hue, double *sat, double *val)
{
    int r = p[0], g = p[1], b = p[2];
    int mx = r > g ? (r > b ? r : b) : (g > b ? g : b);
    int mn = r < g ? (r < b ? r : b) : (g < b ? g : b);
    double d = mx - mn, h = 0;
    if (d > 0) {
        if (mx == r)
            h = 60.0 * (g - b) / d;
        else if (mx == g)
            h = 60.0 * (b - r) / d + 120.0;
        else
            h = 60.0 * (r - g) / d + 240.0;
        if (h < 0)
            h += 360.0;
    }
    *hue = h;
    *sat = mx > 0 ? d / mx : 0.0;
    *val = mx / 255.0;
}

/* 1 when the pixel looks like marker ink rather than H&E (see tissue_qc.c for the ranges). */
int hp_tissue_is_pen(const uint8_t *rgb);

/* Fills pen_fraction, brown_fraction and their flags from the thumbnail, the final mask (0/255)
 * and the ink mask (0/1). */
void hp_tissue_qc_colour(const uint8_t *rgb, const uint8_t *mask, const uint8_t *pen, int w, int h,
                         const hp_tissue_options *o, hp_tissue_mask *out);

/* Samples up to o->blur_regions tissue regions at ~1 um/px and fills blur_score, the BLUR flag
 * and blur_regions_read. A read failure is returned (the slide's message in err). */
hp_status hp_tissue_qc_focus(hp_slide *s, const hp_tissue_options *o, double mpp, double sat_thr,
                             hp_tissue_mask *out, hp_error *err);

#endif
