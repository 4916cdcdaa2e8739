/* hp_stain_normalizer_init (pipeline/stain.h): the per-pixel transform that maps one slide's
 * fitted stain onto a target's, precomputed once per slide for the kernels
 * (kernels/stain_normalize.h) to apply to every tile. */
#include <math.h>
#include <string.h>

#include "pipeline/stain.h"

/* Inverts a 2x2 matrix given as its Gram form; returns 0 when singular. */
static int pinv_2x3(const double s[2][3], double p[2][3])
{
    double g00 = 0, g01 = 0, g11 = 0;
    for (int c = 0; c < 3; c++) {
        g00 += s[0][c] * s[0][c];
        g01 += s[0][c] * s[1][c];
        g11 += s[1][c] * s[1][c];
    }
    double det = g00 * g11 - g01 * g01;
    /* det / (|h|^2 |e|^2) = sin^2 of the angle between the vectors */
    if (!(det > 1e-8 * g00 * g11))
        return 0;
    for (int c = 0; c < 3; c++) {
        p[0][c] = (g11 * s[0][c] - g01 * s[1][c]) / det;
        p[1][c] = (g00 * s[1][c] - g01 * s[0][c]) / det;
    }
    return 1;
}

hp_status hp_stain_normalizer_init(hp_stain_normalizer *n, const hp_stain_params *target,
                                   const hp_stain_params *source, hp_error *err)
{
    if (!n || !target || !source)
        return hp_error_set(err, HP_ERR_INVALID, "stain normalizer: NULL argument");
    memset(n, 0, sizeof *n);
    hp_status st = hp_stain_params_check(target, err);
    if (st != HP_OK)
        return st;
    if ((st = hp_stain_params_check(source, err)) != HP_OK)
        return st;
    if (target->method != source->method)
        return hp_error_set(err, HP_ERR_INVALID,
                            "stain normalizer: target parameters are %s but source parameters are %s",
                            hp_stain_method_name(target->method), hp_stain_method_name(source->method));
    n->method = target->method;
    if (n->method == HP_STAIN_REINHARD) {
        for (int c = 0; c < 3; c++) {
            double g = (double)target->std[c] / source->std[c];
            n->gain[c] = (float)g;
            n->offset[c] = (float)(target->mean[c] - g * source->mean[c]);
        }
        return HP_OK;
    }
    double s[2][3], p[2][3];
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < 3; c++)
            s[k][c] = source->stain[k][c];
    if (!pinv_2x3(s, p))
        return hp_error_set(err, HP_ERR_INVALID,
                            "stain normalizer: the source stain vectors are (nearly) parallel");
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++) {
            double v = 0;
            for (int k = 0; k < 2; k++)
                v += (double)target->stain[k][r] * ((double)target->max_conc[k] / source->max_conc[k]) *
                     p[k][c];
            n->m[r][c] = (float)v;
            if (!isfinite(n->m[r][c]))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "stain normalizer: the transform overflows (max_conc ratio too large)");
        }
    return HP_OK;
}

