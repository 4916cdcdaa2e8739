/* Stain normalization on the CPU: the per-pixel loop over a batch of RGB8 pixels. This is the
 * reference for kernels/cuda/stain_normalize.cu; both run the arithmetic of kernels/stain_pixel.h. The 8-bit
 * inputs make the OD and the sRGB linearization table lookups (256 entries each). */
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "kernels/stain_pixel.h"
#include "kernels/stain_normalize.h"
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
