/* QC flags for the tissue mask: pen ink, stain (H&E or not) and focus.
 *
 * Colour ranges (HSV hue in degrees, saturation and value in 0..1), chosen against the stains:
 * - H&E: hematoxylin is blue-purple (Ruifrok's vector renders at hue ~245, saturation ~0.6),
 *   eosin pink (hue 300-360 and 0-15); their mixtures fill 240-360 and 0-15.
 * - Ink: green and teal markers and tissue-marking dye (hue 70-190, saturation >= 0.2: no H&E
 *   pixel is green), blue markers (hue 190-235 with saturation >= 0.4: bluer and purer than
 *   hematoxylin, which stays above ~240 even where it is dense), and black (value < 0.2: at the
 *   thumbnail's resolution even the darkest nuclei average out far brighter).
 * - DAB (immunohistochemistry): brown, hue 15-65 with saturation >= 0.15. Eosin never reaches
 *   hue 15; red blood cells sit at 0-10.
 * Focus: a sharp image has strong fine detail relative to its overall contrast; defocus removes
 *   the fine detail first. The score is var(Laplacian) / var(gray) on tissue at ~1 um/px, which
 *   does not depend on stain intensity or on how much tissue the region holds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/tissue_internal.h"

#define FOCUS_MPP 1.0   /* um/px of the focus reads: nuclei (6-13 um) show their edges */
#define FOCUS_SIDE 512  /* pixels per side of a focus region */
#define FOCUS_MAX_FACTOR 4 /* at most 2048 x 2048 pixels read per region (12 MB) */

static const struct {
    unsigned flag;
    const char *name, *text;
} flags[HP_QC_FLAG_COUNT] = {
    {HP_QC_LOW_TISSUE, "low-tissue", "almost no tissue was found on the slide"},
    {HP_QC_PEN_MARKS, "pen-marks", "marker ink (blue, green or black) covers part of the tissue; "
                                   "inked pixels are left out of the mask"},
    {HP_QC_BLUR, "blur", "the tissue looks out of focus in the sampled regions"},
    {HP_QC_NOT_HE, "not-he", "the stain does not look like H&E (brown DAB dominates, as in "
                             "immunohistochemistry)"},
    {HP_QC_NO_MPP, "no-mpp", "the slide has no microns per pixel: areas are unknown"},
    {HP_QC_USER_MASK, "user-mask", "the tissue mask was supplied by the user"},
    {HP_QC_OUT_OF_DOMAIN, "out-of-domain",
     "the model is not valid for this slide: it lies outside the domain of validity its card "
     "states"},
};

const char *hp_qc_flag_name(unsigned flag)
{
    for (int i = 0; i < HP_QC_FLAG_COUNT; i++)
        if (flags[i].flag == flag)
            return flags[i].name;
    return NULL;
}

const char *hp_qc_flag_description(unsigned flag)
{
    for (int i = 0; i < HP_QC_FLAG_COUNT; i++)
        if (flags[i].flag == flag)
            return flags[i].text;
    return NULL;
}

int hp_tissue_is_pen(const float *hsv)
{
    const double HS = HP_CV_HUE_SLACK, SS = HP_CV_SAT_SLACK;
    float hue = hsv[0], sat = hsv[1], val = hsv[2];
    if (hp_tissue_lt(val, 0.2, SS))
        return 1;
    if (hp_tissue_ge(hue, 70, HS) && hp_tissue_lt(hue, 190, HS) && hp_tissue_ge(sat, 0.2, SS))
        return 1;
    return hp_tissue_ge(hue, 190, HS) && hp_tissue_lt(hue, 235, HS) && hp_tissue_ge(sat, 0.4, SS);
}

hp_status hp_tissue_qc_colour(const uint8_t *rgb, const uint8_t *mask, const uint8_t *pen, int w,
                              int h, const hp_tissue_options *o, hp_tissue_mask *out)
{
    int64_t tissue = 0, ink = 0, brown = 0;
    hp_tissue_hsv_iter it;
    hp_tissue_hsv_begin(&it, rgb, (size_t)w * h);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        ink += pen[i] != 0;
        if (!mask[i])
            continue;
        tissue++;
        const float *p = hp_tissue_hsv_at(&it, i);
        brown += hp_tissue_ge(p[0], 15, HP_CV_HUE_SLACK) && hp_tissue_lt(p[0], 65, HP_CV_HUE_SLACK) &&
                 hp_tissue_ge(p[1], 0.15, HP_CV_SAT_SLACK);
    }
    out->pen_fraction = tissue + ink > 0 ? (double)ink / (double)(tissue + ink) : 0.0;
    out->brown_fraction = tissue > 0 ? (double)brown / (double)tissue : 0.0;
    /* A few inked pixels on a slide with almost no tissue are not worth a flag. */
    if (ink >= 16 && out->pen_fraction >= o->pen_fraction)
        out->qc_flags |= HP_QC_PEN_MARKS;
    if (tissue > 0 && out->brown_fraction >= o->brown_fraction)
        out->qc_flags |= HP_QC_NOT_HE;
    return it.st;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The focus score of one region (side x side averaged pixels); NaN with too little tissue.
 * *st receives an out-of-memory failure of the colour conversions. */
static double focus_score(const uint8_t *rgb, int side, double sat_thr, float *gray,
                          uint8_t *tis, hp_status *st)
{
    hp_tissue_hsv_iter it;
    hp_tissue_hsv_begin(&it, rgb, (size_t)side * side);
    for (int i = 0; i < side * side; i++)
        tis[i] = hp_tissue_ge(hp_tissue_hsv_at(&it, (size_t)i)[1], sat_thr, HP_CV_SAT_SLACK);
    if ((*st = it.st) || (*st = hp_cv_rgb8_to_gray_f32(rgb, (size_t)side * side, gray)))
        return NAN;
    double sg = 0, sg2 = 0, sl = 0, sl2 = 0;
    int64_t cnt = 0;
    for (int y = 1; y < side - 1; y++)
        for (int x = 1; x < side - 1; x++) {
            int i = y * side + x;
            if (!tis[i])
                continue;
            double g = gray[i];
            double lap = gray[i - 1] + gray[i + 1] + gray[i - side] + gray[i + side] - 4.0 * g;
            sg += g;
            sg2 += g * g;
            sl += lap;
            sl2 += lap * lap;
            cnt++;
        }
    if (cnt < (int64_t)side * side / 10)
        return NAN;
    double vg = sg2 / cnt - (sg / cnt) * (sg / cnt), vl = sl2 / cnt - (sl / cnt) * (sl / cnt);
    return vg > 1.0 ? vl / vg : NAN; /* a flat region says nothing about focus */
}

hp_status hp_tissue_qc_focus(hp_slide *s, const hp_tissue_options *o, double mpp, double sat_thr,
                             hp_tissue_mask *out, hp_error *err)
{
    if (mpp <= 0)
        mpp = 0.5; /* as for the mask: the commonest scan resolution */
    int levels = hp_slide_level_count(s), L = 0;
    for (int l = 0; l < levels; l++)
        if (mpp * hp_slide_level_downsample(s, l) <= FOCUS_MPP * 1.2)
            L = l;
    double ds = hp_slide_level_downsample(s, L);
    int f = (int)lround(FOCUS_MPP / (mpp * ds));
    if (f < 1)
        f = 1;
    if (f > FOCUS_MAX_FACTOR)
        f = FOCUS_MAX_FACTOR;
    int R = FOCUS_SIDE * f; /* level-L pixels read per side */
    int w = out->w, h = out->h;
    /* The region's size in mask pixels; windows step by half of it. */
    int rw = (int)ceil(R * ds / out->downsample_x), rh = (int)ceil(R * ds / out->downsample_y);
    if (rw > w)
        rw = w;
    if (rh > h)
        rh = h;
    if (rw < 1 || rh < 1)
        return HP_OK;
    int sx = rw / 2 > 0 ? rw / 2 : 1, sy = rh / 2 > 0 ? rh / 2 : 1;
    int nx = (w - rw) / sx + 1, ny = (h - rh) / sy + 1;
    int K = o->blur_regions > 0 ? o->blur_regions : 0;
    int *pick = calloc((size_t)K + 1, sizeof *pick);
    double *frac = malloc((size_t)nx * ny * sizeof *frac), *scores = calloc((size_t)K + 1, 8);
    uint8_t *rgb = malloc((size_t)R * R * 3), *small = malloc(FOCUS_SIDE * FOCUS_SIDE * 3);
    float *gray = malloc(FOCUS_SIDE * FOCUS_SIDE * sizeof *gray);
    uint8_t *tis = malloc(FOCUS_SIDE * FOCUS_SIDE);
    hp_status st = HP_OK;
    if (!pick || !frac || !scores || !rgb || !small || !gray || !tis) {
        st = hp_error_set(err, HP_ERR_NOMEM, "tissue QC: out of memory for focus regions");
        goto done;
    }
    for (int j = 0; j < ny; j++)
        for (int i = 0; i < nx; i++) {
            int64_t c = 0;
            for (int y = j * sy; y < j * sy + rh; y++)
                for (int x = i * sx; x < i * sx + rw; x++)
                    c += out->mask[(size_t)y * w + x] != 0;
            frac[j * nx + i] = (double)c / ((double)rw * rh);
        }
    /* Greedy: the most tissue-filled windows first, none overlapping a chosen one. */
    int npick = 0;
    while (npick < K) {
        int best = -1;
        for (int k = 0; k < nx * ny; k++) {
            if (frac[k] < 0.25 || (best >= 0 && frac[k] <= frac[best]))
                continue;
            int ok = 1;
            for (int q = 0; q < npick && ok; q++)
                ok = abs(k % nx - pick[q] % nx) * sx >= rw || abs(k / nx - pick[q] / nx) * sy >= rh;
            if (ok)
                best = k;
        }
        if (best < 0)
            break;
        pick[npick++] = best;
    }
    int nscore = 0;
    for (int q = 0; q < npick; q++) {
        int64_t x0 = (int64_t)llround((pick[q] % nx) * sx * out->downsample_x);
        int64_t y0 = (int64_t)llround((pick[q] / nx) * sy * out->downsample_y);
        if ((st = hp_slide_read_region(s, L, x0, y0, R, R, rgb)) != HP_OK) {
            hp_error_set(err, st, "tissue QC: %s", hp_slide_error(s));
            goto done;
        }
        /* Area average f x f down to ~FOCUS_MPP. */
        double sc = NAN;
        if ((st = hp_cv_resize_rgb8(rgb, R, R, 0, small, FOCUS_SIDE, FOCUS_SIDE)) == HP_OK)
            sc = focus_score(small, FOCUS_SIDE, sat_thr, gray, tis, &st);
        if (st != HP_OK) {
            hp_error_set(err, st, "tissue QC: out of memory measuring focus");
            goto done;
        }
        if (!isnan(sc))
            scores[nscore++] = sc;
    }
    out->blur_regions_read = nscore;
    if (nscore > 0) {
        qsort(scores, (size_t)nscore, sizeof *scores, cmp_double);
        out->blur_score = nscore % 2 ? scores[nscore / 2]
                                     : 0.5 * (scores[nscore / 2 - 1] + scores[nscore / 2]);
        if (out->blur_score < o->blur_threshold)
            out->qc_flags |= HP_QC_BLUR;
    }
done:
    free(pick);
    free(frac);
    free(scores);
    free(rgb);
    free(small);
    free(gray);
    free(tis);
    return st;
}
