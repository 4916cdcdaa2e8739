/* Stain normalization on the CPU: the transform's precomputation (hp_stain_normalizer_init) and
 * the per-pixel loop over a batch of RGB8 pixels. This is the reference for
 * kernels/cuda/stain_normalize.cu; both run the arithmetic of kernels/stain_pixel.h. The 8-bit
 * inputs make the OD and the sRGB linearization table lookups (256 entries each). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kernels/stain_pixel.h"
#include "pipeline/stain.h"
#ifndef HP_HAVE_CUDA
#include "kernels/cuda/stain_normalize.h"
#endif

static float lut_od[256];
static float lut_lin[256];
static pthread_once_t lut_once = PTHREAD_ONCE_INIT;

static void lut_init(void)
{
    for (int v = 0; v < 256; v++) {
        lut_od[v] = hp_stain_od(v);
        lut_lin[v] = hp_stain_srgb_to_linear((float)v / 255.0f);
    }
}

void hp_stain_rgb_to_lab(const uint8_t rgb[3], float lab[3])
{
    pthread_once(&lut_once, lut_init);
    float lin[3] = {lut_lin[rgb[0]], lut_lin[rgb[1]], lut_lin[rgb[2]]};
    hp_stain_linear_to_lab(lin, lab);
}

void hp_stain_lab_to_rgb(const float lab[3], uint8_t rgb[3])
{
    float lin[3];
    hp_stain_lab_to_linear(lab, lin);
    for (int c = 0; c < 3; c++)
        rgb[c] = hp_stain_to_u8(255.0f * hp_stain_linear_to_srgb(lin[c]));
}

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

hp_status hp_stain_normalize_cpu(const hp_stain_normalizer *n, const uint8_t *src, uint8_t *dst,
                                 size_t npix, hp_error *err)
{
    if (!n || (npix && (!src || !dst)))
        return hp_error_set(err, HP_ERR_INVALID, "stain normalize: NULL argument");
    if (n->method != HP_STAIN_MACENKO && n->method != HP_STAIN_REINHARD)
        return hp_error_set(err, HP_ERR_INVALID,
                            "stain normalize: the normalizer was not initialized (method %d)",
                            (int)n->method);
    pthread_once(&lut_once, lut_init);
    if (n->method == HP_STAIN_MACENKO) {
        for (size_t i = 0; i < npix; i++) {
            float od[3] = {lut_od[src[3 * i]], lut_od[src[3 * i + 1]], lut_od[src[3 * i + 2]]};
            hp_stain_macenko_pixel(n->m, od, dst + 3 * i);
        }
    } else {
        for (size_t i = 0; i < npix; i++) {
            float lin[3] = {lut_lin[src[3 * i]], lut_lin[src[3 * i + 1]], lut_lin[src[3 * i + 2]]};
            hp_stain_reinhard_pixel(n->gain, n->offset, lin, dst + 3 * i);
        }
    }
    return HP_OK;
}

#ifndef HP_HAVE_CUDA
/* Builds without CUDA: the GPU entry points exist and say why they cannot run. */
static hp_status no_cuda(hp_error *err)
{
    return hp_error_set(err, HP_ERR_UNSUPPORTED,
                        "stain normalize: this histoplan was built without CUDA");
}

hp_status hp_stain_normalize_cuda(const hp_stain_normalizer *n, const uint8_t *d_src,
                                  uint8_t *d_dst, size_t npix, void *stream, hp_error *err)
{
    return no_cuda(err);
}

hp_status hp_stain_normalize_cuda_host(const hp_stain_normalizer *n, const uint8_t *src,
                                       uint8_t *dst, size_t npix, hp_error *err)
{
    return no_cuda(err);
}
#endif
