/* The tissue mask: thumbnail, saturation threshold, morphology, user mask and ROI.
 * QC measurements live in tissue_qc.c; the header explains the method. The image processing
 * itself (HSV, box blur, Otsu, morphology, connected components) is OpenCV's, through
 * io/cv_image.h. */
#include "pipeline/tissue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "pipeline/tissue_internal.h"

/* Without MPP, sizes in micrometres are converted as if level 0 were 0.5 um/px, the commonest
 * scan resolution (20x); areas are then reported as NaN, never as a guess. */
#define ASSUMED_MPP 0.5

void hp_tissue_options_init(hp_tissue_options *o)
{
    memset(o, 0, sizeof *o);
    o->mask_mpp = HP_TISSUE_MASK_MPP;
    o->min_side = 1024;
    o->max_side = 3072;
    o->sat_floor = 0.07;
    o->sat_ceiling = 0.20;
    o->od_min = 0.03;
    o->close_um = 16.0;
    o->open_um = 8.0;
    o->min_component_mm2 = 0.01;
    o->max_hole_mm2 = 0.05;
    o->run_qc = 1;
    o->low_tissue_fraction = 0.01;
    o->low_tissue_mm2 = 0.1;
    o->pen_fraction = 0.01;
    o->blur_threshold = 0.25;
    o->brown_fraction = 0.20;
    o->blur_regions = 4;
}

void hp_tissue_mask_free(hp_tissue_mask *m)
{
    if (!m)
        return;
    free(m->mask);
    memset(m, 0, sizeof *m);
}

/* Reads the user's mask and samples it (nearest) onto the w x h grid. */
static hp_status load_user_mask(const char *path, int64_t W0, int64_t H0, int w, int h,
                                uint8_t *m, hp_error *err)
{
    int mw = 0, mh = 0;
    uint8_t *rgb = NULL;
    hp_status st = hp_image_read_rgb8(path, &mw, &mh, &rgb, err);
    if (st != HP_OK)
        return hp_error_set(err, st, "tissue mask %s: cannot read it", path);
    /* A mask exported at downsample d is round(W0/d) x round(H0/d): allow that rounding, refuse
     * a mask of some other image. */
    double aspect_slide = (double)W0 / (double)H0, aspect_mask = (double)mw / mh;
    double tol = 0.01 + 2.0 / (mw < mh ? mw : mh);
    if (fabs(aspect_mask / aspect_slide - 1.0) > tol) {
        free(rgb);
        return hp_error_set(err, HP_ERR_INVALID,
                            "tissue mask %s: %d x %d does not have the slide's aspect ratio "
                            "(%lld x %lld)",
                            path, mw, mh, (long long)W0, (long long)H0);
    }
    for (int y = 0; y < h; y++) {
        int sy = (int)((y + 0.5) * mh / h);
        for (int x = 0; x < w; x++) {
            int sx = (int)((x + 0.5) * mw / w);
            const uint8_t *p = rgb + ((size_t)sy * mw + sx) * 3;
            m[(size_t)y * w + x] = (299 * p[0] + 587 * p[1] + 114 * p[2]) >= 128 * 1000;
        }
    }
    free(rgb);
    return HP_OK;
}

/* The saturation mask before clean-up (0/1; pen pixels never set). Otsu's threshold (OpenCV's)
 * runs on the 8-bit saturations of the pixels that are not ink; a saturation s in the upper
 * class (s * 255 rounds above the threshold value k) gives the threshold (k + 1) / 255, which
 * is then clamped and compared with the unrounded saturation. Returns the threshold used, or a
 * negative value when out of memory. */
static double threshold_pixels(const uint8_t *rgb, int w, int h, const hp_tissue_options *o,
                               uint8_t *m, const uint8_t *pen)
{
    size_t n = (size_t)w * h, k = 0;
    double t = o->sat_threshold;
    hp_tissue_hsv_iter it;
    if (t <= 0) {
        uint8_t *sat8 = malloc(n ? n : 1);
        if (!sat8)
            return -1;
        hp_tissue_hsv_begin(&it, rgb, n);
        for (size_t i = 0; i < n; i++) {
            float sat = hp_tissue_hsv_at(&it, i)[1];
            if (!pen[i])
                sat8[k++] = (uint8_t)lround(sat * 255.0);
        }
        int thr = 255;
        hp_status st = it.st ? it.st : hp_cv_otsu_u8(sat8, k, &thr);
        free(sat8);
        if (st)
            return -1;
        t = (thr + 1) / 255.0;
        if (t < o->sat_floor)
            t = o->sat_floor;
        if (t > o->sat_ceiling)
            t = o->sat_ceiling;
    }
    /* Optical density per 8-bit value: -log10(max(v, 1) / 255). */
    double od_lut[256];
    for (int v = 0; v < 256; v++)
        od_lut[v] = -log10((v > 0 ? v : 1) / 255.0);
    hp_tissue_hsv_begin(&it, rgb, n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        float sat = hp_tissue_hsv_at(&it, i)[1];
        double od = od_lut[p[0]] + od_lut[p[1]] + od_lut[p[2]];
        m[i] = !pen[i] && hp_tissue_ge(sat, t, HP_CV_SAT_SLACK) && od / 3.0 >= o->od_min;
    }
    return it.st ? -1 : t;
}

static int um_to_px(double um, double px_um)
{
    return um > 0 ? (int)lround(um / px_um) : 0;
}

hp_status hp_tissue_detect(hp_slide *s, const hp_tissue_options *opt, hp_tissue_mask *out,
                           hp_error *err)
{
    hp_tissue_options defaults;
    if (!opt) {
        hp_tissue_options_init(&defaults);
        opt = &defaults;
    }
    memset(out, 0, sizeof *out);
    out->mpp_x = out->mpp_y = out->tissue_mm2 = out->blur_score = NAN;
    if (!s)
        return hp_error_set(err, HP_ERR_INVALID, "tissue: no slide");
    if (!(opt->mask_mpp > 0) || opt->min_side < 16 || opt->max_side < opt->min_side)
        return hp_error_set(err, HP_ERR_INVALID, "tissue: bad mask resolution options");

    uint8_t *rgb = NULL, *m = NULL, *pen = NULL, *tmp = NULL;
    hp_status st = HP_OK;
    int64_t W0 = 0, H0 = 0;
    if ((st = hp_slide_level_dimensions(s, 0, &W0, &H0)) != HP_OK) {
        hp_error_set(err, st, "%s", hp_slide_error(s));
        goto fail;
    }

    int64_t rx0 = 0, ry0 = 0, rx1 = W0, ry1 = H0;
    if (opt->roi_w > 0 || opt->roi_h > 0) {
        const int64_t big = (int64_t)1 << 42; /* keeps the sums below from overflowing */
        if (llabs(opt->roi_x) > big || llabs(opt->roi_y) > big || opt->roi_w > big ||
            opt->roi_h > big) {
            st = hp_error_set(err, HP_ERR_INVALID, "tissue: region of interest out of range");
            goto fail;
        }
        rx0 = opt->roi_x > 0 ? opt->roi_x : 0;
        ry0 = opt->roi_y > 0 ? opt->roi_y : 0;
        rx1 = opt->roi_x + opt->roi_w < W0 ? opt->roi_x + opt->roi_w : W0;
        ry1 = opt->roi_y + opt->roi_h < H0 ? opt->roi_y + opt->roi_h : H0;
        if (opt->roi_w <= 0 || opt->roi_h <= 0 || rx1 <= rx0 || ry1 <= ry0) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "tissue: region of interest %lld,%lld %lldx%lld is empty or outside "
                              "the slide (%lld x %lld)",
                              (long long)opt->roi_x, (long long)opt->roi_y,
                              (long long)opt->roi_w, (long long)opt->roi_h, (long long)W0,
                              (long long)H0);
            goto fail;
        }
    }

    double mppx = opt->mpp, mppy = opt->mpp;
    int have_mpp = opt->mpp > 0;
    if (!have_mpp) {
        hp_mpp_source src;
        have_mpp = hp_slide_mpp(s, &mppx, &mppy, &src) == HP_OK;
    }
    if (have_mpp) {
        out->mpp_x = mppx;
        out->mpp_y = mppy;
    } else {
        mppx = mppy = ASSUMED_MPP;
        out->qc_flags |= HP_QC_NO_MPP;
    }

    int64_t long0 = W0 > H0 ? W0 : H0;
    double want = (double)long0 * (mppx > mppy ? mppx : mppy) / opt->mask_mpp;
    int side = want > opt->max_side ? opt->max_side : (int)ceil(want);
    if (side < opt->min_side)
        side = opt->min_side;
    if (side > long0)
        side = (int)long0;
    int w = 0, h = 0;
    if ((st = hp_slide_read_thumbnail(s, side, &rgb, &w, &h)) != HP_OK) {
        hp_error_set(err, st, "%s", hp_slide_error(s));
        goto fail;
    }
    size_t n = (size_t)w * h;
    out->w = w;
    out->h = h;
    out->downsample_x = (double)W0 / w;
    out->downsample_y = (double)H0 / h;
    double px_um = sqrt(out->downsample_x * mppx * out->downsample_y * mppy);
    double px_mm2 = px_um * px_um * 1e-6;

    /* Ink first, so its scratch is freed before the mask's buffers exist (peak ~13 bytes per
     * mask pixel). Ink is judged on a 32 um box average: a stroke is hundreds of micrometres wide
     * and keeps its colour, while a dark blue nucleus (6-13 um) averages out with the stroma
     * around it. */
    uint8_t *smooth = malloc(n * 3);
    pen = malloc(n);
    if (!smooth || !pen ||
        hp_cv_box_blur_rgb8(rgb, w, h, um_to_px(16.0, px_um), smooth) != HP_OK) {
        free(smooth);
        st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for a %d x %d mask", w, h);
        goto fail;
    }
    hp_tissue_hsv_iter *it = malloc(sizeof *it);
    if (it) {
        hp_tissue_hsv_begin(it, smooth, n);
        for (size_t i = 0; i < n; i++)
            pen[i] = (uint8_t)hp_tissue_is_pen(hp_tissue_hsv_at(it, i));
    }
    hp_status ink_st = it ? it->st : HP_ERR_NOMEM;
    free(it);
    free(smooth);
    if (ink_st) {
        st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for a %d x %d mask", w, h);
        goto fail;
    }

    m = calloc(n, 1);
    tmp = malloc(n);
    if (!m || !tmp) {
        st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for a %d x %d mask", w, h);
        goto fail;
    }

    if (opt->mask_path) {
        if ((st = load_user_mask(opt->mask_path, W0, H0, w, h, m, err)) != HP_OK)
            goto fail;
        out->qc_flags |= HP_QC_USER_MASK;
    } else {
        out->sat_threshold = threshold_pixels(rgb, w, h, opt, m, pen);
        int rc = um_to_px(opt->close_um, px_um), ro = um_to_px(opt->open_um, px_um);
        int64_t min_comp = (int64_t)ceil(opt->min_component_mm2 / px_mm2);
        int64_t max_hole = (int64_t)ceil(opt->max_hole_mm2 / px_mm2);
        /* Ink last: closing and hole filling would otherwise put a stroke over tissue back. A
         * margin of ~8 um takes the stroke's blurred rim too. */
        int rp = um_to_px(8.0, px_um);
        memcpy(tmp, pen, n);
        if (out->sat_threshold < 0 || hp_cv_dilate_square(m, w, h, rc) ||
            hp_cv_erode_square(m, w, h, rc) || hp_cv_erode_square(m, w, h, ro) ||
            hp_cv_dilate_square(m, w, h, ro) || hp_cv_drop_small(m, w, h, 1, min_comp, 0) ||
            hp_cv_drop_small(m, w, h, 0, max_hole, 1) ||
            hp_cv_dilate_square(tmp, w, h, rp > 1 ? rp : 1)) {
            st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for a %d x %d mask", w, h);
            goto fail;
        }
        for (size_t i = 0; i < n; i++)
            if (tmp[i])
                m[i] = 0;
        if (hp_cv_drop_small(m, w, h, 1, min_comp, 0)) {
            st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for a %d x %d mask", w, h);
            goto fail;
        }
    }

    int64_t roi_px = 0, tissue_px = 0;
    for (int y = 0; y < h; y++) {
        double cy = (y + 0.5) * out->downsample_y;
        for (int x = 0; x < w; x++) {
            double cx = (x + 0.5) * out->downsample_x;
            uint8_t *v = m + (size_t)y * w + x;
            if (cx < rx0 || cx >= rx1 || cy < ry0 || cy >= ry1) {
                *v = 0;
                continue;
            }
            roi_px++;
            *v = *v ? 255 : 0;
            tissue_px += *v != 0;
        }
    }
    out->mask = m;
    m = NULL;
    out->tissue_fraction = roi_px > 0 ? (double)tissue_px / (double)roi_px : 0.0;
    if (have_mpp)
        out->tissue_mm2 = (double)tissue_px * out->downsample_x * mppx * out->downsample_y *
                          mppy * 1e-6;
    if (out->tissue_fraction < opt->low_tissue_fraction ||
        (have_mpp && out->tissue_mm2 < opt->low_tissue_mm2) || tissue_px == 0)
        out->qc_flags |= HP_QC_LOW_TISSUE;

    if (hp_tissue_qc_colour(rgb, out->mask, pen, w, h, opt, out)) {
        st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for the colour checks");
        goto fail;
    }
    if (opt->run_qc && tissue_px > 0)
        st = hp_tissue_qc_focus(s, opt, have_mpp ? sqrt(mppx * mppy) : 0.0,
                                opt->mask_path ? opt->sat_floor : out->sat_threshold, out, err);

fail:
    free(rgb);
    free(m);
    free(pen);
    free(tmp);
    return st;
}
