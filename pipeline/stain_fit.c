/* Fitting stain parameters to pixels (pipeline/stain.h): Macenko's stain vectors and maximal
 * concentrations, Reinhard's CIELAB means and standard deviations.
 * Percentiles follow numpy's default (linear interpolation between the closest ranks), so an
 * independent numpy implementation of the method lands on the same numbers. The 3x3 OD
 * covariance is diagonalized with cyclic Jacobi rotations in double precision: at this size it
 * converges in a handful of sweeps and needs no LAPACK. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels/stain_pixel.h"
#include "pipeline/stain.h"

const char *hp_stain_method_name(hp_stain_method m)
{
    switch (m) {
    case HP_STAIN_MACENKO:
        return "macenko";
    case HP_STAIN_REINHARD:
        return "reinhard";
    }
    return "unknown";
}

hp_status hp_stain_method_parse(const char *s, hp_stain_method *m, hp_error *err)
{
    if (s && !strcasecmp(s, "macenko")) {
        *m = HP_STAIN_MACENKO;
        return HP_OK;
    }
    if (s && !strcasecmp(s, "reinhard")) {
        *m = HP_STAIN_REINHARD;
        return HP_OK;
    }
    return hp_error_set(err, HP_ERR_INVALID, "unknown stain normalization method '%s' (macenko, reinhard)",
                        s ? s : "(null)");
}

/* k-th smallest of a[0..n-1] (reorders a): Hoare-style quickselect, median of three pivots. */
static float select_kth(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2;
        float x = a[lo], y = a[mid], z = a[hi];
        float piv = (x < y) ? ((y < z) ? y : (x < z ? z : x)) : ((x < z) ? x : (y < z ? z : y));
        size_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv)
                i++;
            while (a[j] > piv)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                if (j == 0)
                    break;
                j--;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* numpy.percentile(a, p) with the default linear method (reorders a; n >= 1). */
static double percentile(float *a, size_t n, double p)
{
    double pos = (double)(n - 1) * p / 100.0;
    size_t k = (size_t)floor(pos);
    if (k >= n - 1)
        return select_kth(a, n, n - 1);
    double frac = pos - (double)k;
    double lo = select_kth(a, n, k);
    /* after selection everything past k is >= a[k]: the next rank is their minimum */
    float next = a[k + 1];
    for (size_t i = k + 2; i < n; i++)
        if (a[i] < next)
            next = a[i];
    return lo + frac * ((double)next - lo);
}

/* Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations: w ascending, v
 * columns the matching unit eigenvectors. */
static void eigen_sym3(const double a_in[3][3], double w[3], double v[3][3])
{
    double a[3][3];
    memcpy(a, a_in, sizeof a);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            v[i][j] = i == j;
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(a[0][1]) + fabs(a[0][2]) + fabs(a[1][2]);
        double diag = fabs(a[0][0]) + fabs(a[1][1]) + fabs(a[2][2]);
        if (off <= 1e-30 || off <= 1e-17 * diag)
            break;
        for (int p = 0; p < 2; p++)
            for (int q = p + 1; q < 3; q++) {
                if (a[p][q] == 0.0)
                    continue;
                double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < 3; k++) { /* A <- A J */
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++) { /* A <- J^T A */
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++) {
                    double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
    }
    int idx[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++) /* sort ascending */
        for (int j = i + 1; j < 3; j++)
            if (a[idx[j]][idx[j]] < a[idx[i]][idx[i]]) {
                int t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
    double vv[3][3];
    for (int j = 0; j < 3; j++) {
        w[j] = a[idx[j]][idx[j]];
        for (int k = 0; k < 3; k++)
            vv[k][j] = v[k][idx[j]];
    }
    memcpy(v, vv, sizeof vv);
}

static hp_status fit_macenko(const uint8_t *rgb, size_t npix, hp_stain_params *out, hp_error *err)
{
    hp_status st = HP_OK;
    float od_lut[256];
    for (int v = 0; v < 256; v++)
        od_lut[v] = hp_stain_od(v);
    const float beta = HP_STAIN_BETA;

    /* pass 1: covariance of the stained (non-transparent) pixels */
    double sum[3] = {0, 0, 0}, sxy[3][3] = {{0}};
    size_t nt = 0;
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = rgb + 3 * i;
        double o[3] = {od_lut[p[0]], od_lut[p[1]], od_lut[p[2]]};
        if (o[0] < beta || o[1] < beta || o[2] < beta)
            continue;
        nt++;
        for (int r = 0; r < 3; r++) {
            sum[r] += o[r];
            for (int c = r; c < 3; c++)
                sxy[r][c] += o[r] * o[c];
        }
    }
    if (nt < HP_STAIN_MIN_PIXELS)
        return hp_error_set(err, HP_ERR_INVALID,
                            "Macenko fit: only %zu of %zu pixels are stained (optical density >= %.2f "
                            "in every channel), at least %d are needed: the image is empty or "
                            "background (all white)",
                            nt, npix, (double)beta, HP_STAIN_MIN_PIXELS);
    double cov[3][3];
    for (int r = 0; r < 3; r++)
        for (int c = r; c < 3; c++)
            cov[r][c] = cov[c][r] = (sxy[r][c] - sum[r] * sum[c] / (double)nt) / (double)(nt - 1);
    double w[3], v[3][3];
    eigen_sym3(cov, w, v);
    double e1[3], e2[3]; /* largest, second largest */
    for (int k = 0; k < 3; k++) {
        e1[k] = v[k][2];
        e2[k] = v[k][1];
    }
    /* the principal direction points into positive OD, so the stained pixels project to
     * angles in (-pi/2, pi/2), away from atan2's cut at +-pi */
    if (e1[0] + e1[1] + e1[2] < 0)
        for (int k = 0; k < 3; k++)
            e1[k] = -e1[k];
    if (!(w[2] > 0) || !isfinite(w[2]))
        return hp_error_set(err, HP_ERR_INVALID,
                            "Macenko fit: the stained pixels have a single colour (OD covariance is "
                            "zero): the two stain vectors cannot be separated");

    /* pass 2: angles in the plane of e1, e2 */
    float *buf = malloc((nt > npix ? nt : npix) * sizeof(float));
    if (!buf)
        return hp_error_set(err, HP_ERR_NOMEM, "Macenko fit: out of memory (%zu pixels)", npix);
    size_t j = 0;
    for (size_t i = 0; i < npix; i++) {
        const uint8_t *p = rgb + 3 * i;
        double o[3] = {od_lut[p[0]], od_lut[p[1]], od_lut[p[2]]};
        if (o[0] < beta || o[1] < beta || o[2] < beta)
            continue;
        double t0 = o[0] * e1[0] + o[1] * e1[1] + o[2] * e1[2];
        double t1 = o[0] * e2[0] + o[1] * e2[1] + o[2] * e2[2];
        buf[j++] = (float)atan2(t1, t0);
    }
    double phi_min = percentile(buf, nt, HP_STAIN_ALPHA);
    double phi_max = percentile(buf, nt, 100.0 - HP_STAIN_ALPHA);
    double vmin[3], vmax[3];
    for (int k = 0; k < 3; k++) {
        vmin[k] = e1[k] * cos(phi_min) + e2[k] * sin(phi_min);
        vmax[k] = e1[k] * cos(phi_max) + e2[k] * sin(phi_max);
    }
    double cosang = vmin[0] * vmax[0] + vmin[1] * vmax[1] + vmin[2] * vmax[2];
    /* 1 degree: below that the stains are one colour and the unmixing is ill-conditioned */
    if (!(cosang < cos(M_PI / 180.0))) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "Macenko fit: the stained pixels have a single colour (the extreme stain "
                          "directions are %.2f degrees apart): the two stain vectors cannot be "
                          "separated",
                          acos(fmin(1.0, fmax(-1.0, cosang))) * 180.0 / M_PI);
        goto fail;
    }
    /* haematoxylin absorbs more red than eosin: it has the larger first OD component */
    const double *h = vmin[0] > vmax[0] ? vmin : vmax;
    const double *e = vmin[0] > vmax[0] ? vmax : vmin;
    double s[2][3];
    for (int k = 0; k < 3; k++) {
        s[0][k] = h[k];
        s[1][k] = e[k];
    }

    /* pass 3: concentrations of every pixel (least squares) -> 99th percentiles */
    double g00 = 0, g01 = 0, g11 = 0;
    for (int k = 0; k < 3; k++) {
        g00 += s[0][k] * s[0][k];
        g01 += s[0][k] * s[1][k];
        g11 += s[1][k] * s[1][k];
    }
    double det = g00 * g11 - g01 * g01, pinv[2][3];
    for (int k = 0; k < 3; k++) {
        pinv[0][k] = (g11 * s[0][k] - g01 * s[1][k]) / det;
        pinv[1][k] = (g00 * s[1][k] - g01 * s[0][k]) / det;
    }
    double maxc[2];
    for (int st_i = 0; st_i < 2; st_i++) {
        for (size_t i = 0; i < npix; i++) {
            const uint8_t *p = rgb + 3 * i;
            buf[i] = (float)(pinv[st_i][0] * od_lut[p[0]] + pinv[st_i][1] * od_lut[p[1]] +
                             pinv[st_i][2] * od_lut[p[2]]);
        }
        maxc[st_i] = percentile(buf, npix, HP_STAIN_MAXC_PCT);
        if (!(maxc[st_i] > 1e-3) || !isfinite(maxc[st_i])) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "Macenko fit: the %s concentration at the %.0fth percentile is %g "
                              "(not positive): too little %s-stained tissue",
                              st_i ? "eosin" : "haematoxylin", HP_STAIN_MAXC_PCT, maxc[st_i],
                              st_i ? "eosin" : "haematoxylin");
            goto fail;
        }
    }
    memset(out, 0, sizeof *out);
    out->method = HP_STAIN_MACENKO;
    for (int k = 0; k < 3; k++) {
        out->stain[0][k] = (float)s[0][k];
        out->stain[1][k] = (float)s[1][k];
    }
    out->max_conc[0] = (float)maxc[0];
    out->max_conc[1] = (float)maxc[1];
fail:
    free(buf);
    return st;
}

static hp_status fit_reinhard(const uint8_t *rgb, size_t npix, hp_stain_params *out, hp_error *err)
{
    if (npix < 2)
        return hp_error_set(err, HP_ERR_INVALID, "Reinhard fit: %zu pixels, at least 2 are needed", npix);
    /* shifted sums (around the first pixel) keep the variance accurate in one pass */
    float ref[3];
    hp_stain_rgb_to_lab(rgb, ref);
    double s1[3] = {0, 0, 0}, s2[3] = {0, 0, 0};
    for (size_t i = 0; i < npix; i++) {
        float lab[3];
        hp_stain_rgb_to_lab(rgb + 3 * i, lab);
        for (int c = 0; c < 3; c++) {
            double d = (double)lab[c] - ref[c];
            s1[c] += d;
            s2[c] += d * d;
        }
    }
    static const char *chan[3] = {"L*", "a*", "b*"};
    memset(out, 0, sizeof *out);
    out->method = HP_STAIN_REINHARD;
    for (int c = 0; c < 3; c++) {
        double m = s1[c] / (double)npix;
        double var = s2[c] / (double)npix - m * m;
        double sd = var > 0 ? sqrt(var) : 0.0;
        /* a channel that hardly varies would amplify noise without bound */
        if (!(sd >= 0.1))
            return hp_error_set(err, HP_ERR_INVALID,
                                "Reinhard fit: %s does not vary (standard deviation %.3g < 0.1): the "
                                "image has a single colour",
                                chan[c], sd);
        out->mean[c] = (float)(ref[c] + m);
        out->std[c] = (float)sd;
    }
    return HP_OK;
}

hp_status hp_stain_fit(hp_stain_method method, const uint8_t *rgb, size_t npix,
                       hp_stain_params *out, hp_error *err)
{
    if (!out || (npix && !rgb))
        return hp_error_set(err, HP_ERR_INVALID, "stain fit: NULL argument");
    if (npix > ((size_t)-1) / 3 / sizeof(float))
        return hp_error_set(err, HP_ERR_INVALID, "stain fit: %zu pixels is too many", npix);
    if (method == HP_STAIN_MACENKO)
        return fit_macenko(rgb, npix, out, err);
    if (method == HP_STAIN_REINHARD)
        return fit_reinhard(rgb, npix, out, err);
    return hp_error_set(err, HP_ERR_INVALID, "stain fit: unknown method %d", (int)method);
}
