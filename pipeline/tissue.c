/* The tissue mask: thumbnail, saturation threshold, morphology, user mask and ROI.
 * QC measurements live in tissue_qc.c; the header explains the method. */
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

/* Otsu's threshold over a 256-bin histogram of saturation; returns the upper edge of the lower
 * class as a saturation in [0, 1]. */
static double otsu(const int64_t hist[256])
{
    double total = 0, sum = 0;
    for (int i = 0; i < 256; i++) {
        total += (double)hist[i];
        sum += (double)i * (double)hist[i];
    }
    if (total <= 0)
        return 1.0;
    double w0 = 0, sum0 = 0, best = -1;
    int best_i = 255;
    for (int i = 0; i < 255; i++) {
        w0 += (double)hist[i];
        sum0 += (double)i * (double)hist[i];
        double w1 = total - w0;
        if (w0 <= 0 || w1 <= 0)
            continue;
        double m0 = sum0 / w0, m1 = (sum - sum0) / w1;
        double between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if (between > best) {
            best = between;
            best_i = i;
        }
    }
    return (best_i + 1) / 255.0;
}

/* out = 1 where any pixel equal to `fg` lies in the (2r+1)^2 square around it (outside the image
 * counts as not fg). Separable: rows into tmp, then columns. */
static void square_any(const uint8_t *in, uint8_t *out, uint8_t *tmp, int w, int h, int r,
                       uint8_t fg)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = in + (size_t)y * w;
        uint8_t *t = tmp + (size_t)y * w;
        int count = 0;
        for (int x = 0; x < r && x < w; x++)
            count += row[x] == fg;
        for (int x = 0; x < w; x++) {
            if (x + r < w)
                count += row[x + r] == fg;
            if (x - r - 1 >= 0)
                count -= row[x - r - 1] == fg;
            t[x] = count > 0;
        }
    }
    for (int x = 0; x < w; x++) {
        int count = 0;
        for (int y = 0; y < r && y < h; y++)
            count += tmp[(size_t)y * w + x];
        for (int y = 0; y < h; y++) {
            if (y + r < h)
                count += tmp[(size_t)(y + r) * w + x];
            if (y - r - 1 >= 0)
                count -= tmp[(size_t)(y - r - 1) * w + x];
            out[(size_t)y * w + x] = count > 0;
        }
    }
}

/* Dilation and erosion of a 0/1 mask by a square. Erosion treats outside the image as tissue, so
 * tissue cut by the slide's edge is not eaten from that side. */
static void dilate(uint8_t *m, uint8_t *tmp, uint8_t *tmp2, int w, int h, int r)
{
    if (r <= 0)
        return;
    square_any(m, tmp2, tmp, w, h, r, 1);
    memcpy(m, tmp2, (size_t)w * h);
}

static void erode(uint8_t *m, uint8_t *tmp, uint8_t *tmp2, int w, int h, int r)
{
    if (r <= 0)
        return;
    square_any(m, tmp2, tmp, w, h, r, 0);
    for (size_t i = 0; i < (size_t)w * h; i++)
        m[i] = !tmp2[i];
}

/* Flood-fills every component of pixels equal to `value` (8-connected for tissue, 4 for holes so
 * that a diagonal gap in tissue does not open a hole to the outside) and flips those with fewer
 * than min_area pixels; components touching the border are kept when keep_border. queue holds
 * w*h int32, seen w*h bytes. */
static void drop_small(uint8_t *m, int w, int h, uint8_t value, int64_t min_area, int keep_border,
                       int32_t *queue, uint8_t *seen)
{
    if (min_area <= 1)
        return;
    int conn8 = value == 1;
    memset(seen, 0, (size_t)w * h);
    for (int32_t start = 0; start < (int32_t)((size_t)w * h); start++) {
        if (seen[start] || m[start] != value)
            continue;
        int64_t head = 0, tail = 0;
        int border = 0;
        queue[tail++] = start;
        seen[start] = 1;
        while (head < tail) {
            int32_t i = queue[head++];
            int x = i % w, y = i / w;
            if (x == 0 || y == 0 || x == w - 1 || y == h - 1)
                border = 1;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    if ((!dx && !dy) || (!conn8 && dx && dy))
                        continue;
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h)
                        continue;
                    int32_t j = ny * w + nx;
                    if (!seen[j] && m[j] == value) {
                        seen[j] = 1;
                        queue[tail++] = j;
                    }
                }
        }
        if (tail < min_area && !(keep_border && border))
            for (int64_t k = 0; k < tail; k++)
                m[queue[k]] = !value;
    }
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

/* A (2r+1)^2 box average of interleaved RGB8 (edges clamped), rows then columns. Ink is judged
 * on this: a stroke is hundreds of micrometres wide and keeps its colour, while a dark blue
 * nucleus (6-13 um) averages out with the stroma around it. */
static hp_status smooth_rgb(const uint8_t *rgb, int w, int h, int r, uint8_t *out)
{
    if (r <= 0) {
        memcpy(out, rgb, (size_t)w * h * 3);
        return HP_OK;
    }
    uint16_t *rows = malloc((size_t)w * h * 3 * sizeof *rows);
    if (!rows)
        return HP_ERR_NOMEM;
    int n = 2 * r + 1;
    for (int y = 0; y < h; y++)
        for (int c = 0; c < 3; c++) {
            const uint8_t *in = rgb + (size_t)y * w * 3 + c;
            int sum = 0;
            for (int k = -r; k <= r; k++)
                sum += in[3 * (k < 0 ? 0 : k >= w ? w - 1 : k)];
            for (int x = 0; x < w; x++) {
                rows[((size_t)y * w + x) * 3 + c] = (uint16_t)((sum + n / 2) / n);
                int add = x + r + 1 >= w ? w - 1 : x + r + 1, sub = x - r < 0 ? 0 : x - r;
                sum += in[3 * add] - in[3 * sub];
            }
        }
    for (int x = 0; x < w; x++)
        for (int c = 0; c < 3; c++) {
            const uint16_t *in = rows + (size_t)x * 3 + c;
            size_t stride = (size_t)w * 3;
            int sum = 0;
            for (int k = -r; k <= r; k++)
                sum += in[stride * (k < 0 ? 0 : k >= h ? h - 1 : k)];
            for (int y = 0; y < h; y++) {
                out[((size_t)y * w + x) * 3 + c] = (uint8_t)((sum + n / 2) / n);
                int add = y + r + 1 >= h ? h - 1 : y + r + 1, sub = y - r < 0 ? 0 : y - r;
                sum += in[stride * add] - in[stride * sub];
            }
        }
    free(rows);
    return HP_OK;
}

/* The saturation mask before clean-up; pen receives the ink pixels. Returns the threshold. */
static double threshold_pixels(const uint8_t *rgb, int w, int h, const hp_tissue_options *o,
                               uint8_t *m, const uint8_t *pen)
{
    size_t n = (size_t)w * h;
    int64_t hist[256] = {0};
    for (size_t i = 0; i < n; i++) {
        double hue, sat, val;
        hp_tissue_hsv(rgb + 3 * i, &hue, &sat, &val);
        if (!pen[i])
            hist[(int)lround(sat * 255.0)]++;
    }
    double t = o->sat_threshold;
    if (t <= 0) {
        t = otsu(hist);
        if (t < o->sat_floor)
            t = o->sat_floor;
        if (t > o->sat_ceiling)
            t = o->sat_ceiling;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = rgb + 3 * i;
        double hue, sat, val;
        hp_tissue_hsv(p, &hue, &sat, &val);
        double od = 0;
        for (int c = 0; c < 3; c++)
            od += -log10((p[c] > 0 ? p[c] : 1) / 255.0);
        m[i] = !pen[i] && sat >= t && od / 3.0 >= o->od_min;
    }
    return t;
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

    uint8_t *rgb = NULL, *m = NULL, *pen = NULL, *tmp = NULL, *tmp2 = NULL;
    int32_t *queue = NULL;
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
     * mask pixel). Ink is judged on a 32 um box average. */
    uint8_t *smooth = malloc(n * 3);
    pen = malloc(n);
    if (!smooth || !pen || smooth_rgb(rgb, w, h, um_to_px(16.0, px_um), smooth) != HP_OK) {
        free(smooth);
        st = hp_error_set(err, HP_ERR_NOMEM, "tissue: out of memory for a %d x %d mask", w, h);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        pen[i] = (uint8_t)hp_tissue_is_pen(smooth + 3 * i);
    free(smooth);

    m = calloc(n, 1);
    tmp = malloc(n);
    tmp2 = malloc(n);
    queue = malloc(n * sizeof *queue);
    if (!m || !tmp || !tmp2 || !queue) {
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
        dilate(m, tmp, tmp2, w, h, rc);
        erode(m, tmp, tmp2, w, h, rc);
        erode(m, tmp, tmp2, w, h, ro);
        dilate(m, tmp, tmp2, w, h, ro);
        int64_t min_comp = (int64_t)ceil(opt->min_component_mm2 / px_mm2);
        int64_t max_hole = (int64_t)ceil(opt->max_hole_mm2 / px_mm2);
        drop_small(m, w, h, 1, min_comp, 0, queue, tmp);
        drop_small(m, w, h, 0, max_hole, 1, queue, tmp);
        /* Ink last: closing and hole filling would otherwise put a stroke over tissue back. A
         * margin of ~8 um takes the stroke's blurred rim too. */
        int rp = um_to_px(8.0, px_um);
        square_any(pen, tmp2, tmp, w, h, rp > 1 ? rp : 1, 1);
        for (size_t i = 0; i < n; i++)
            if (tmp2[i])
                m[i] = 0;
        drop_small(m, w, h, 1, min_comp, 0, queue, tmp);
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

    hp_tissue_qc_colour(rgb, out->mask, pen, w, h, opt, out);
    if (opt->run_qc && tissue_px > 0)
        st = hp_tissue_qc_focus(s, opt, have_mpp ? sqrt(mppx * mppy) : 0.0,
                                opt->mask_path ? opt->sat_floor : out->sat_threshold, out, err);

fail:
    free(rgb);
    free(m);
    free(pen);
    free(tmp);
    free(tmp2);
    free(queue);
    return st;
}
