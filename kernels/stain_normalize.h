/* Stain normalization's per-pixel transform, as the kernels run it: the method, the
 * precomputed normalizer (a plain value: copy it, share it between threads, pass it to the CUDA
 * kernel), the CPU transform and the colour conversions. How the normalizer is made from fitted
 * stain parameters, and what the methods are, is the pipeline's (pipeline/stain.h); the kernels
 * own only what they execute, so they include nothing above their layer.
 * Pixels are interleaved 8-bit RGB. Thread-safe. */
#ifndef HP_KERNELS_STAIN_NORMALIZE_H
#define HP_KERNELS_STAIN_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's headers carry no extern "C" guards of their own. */
#include "common/status.h"

typedef enum {
    HP_STAIN_MACENKO = 1,
    HP_STAIN_REINHARD = 2,
} hp_stain_method;

/* The per-pixel transform from one source to one target, precomputed by
 * hp_stain_normalizer_init. A plain value: copy it, share it between threads, pass it to the
 * CUDA kernel. */
typedef struct {
    hp_stain_method method;
    /* Macenko: OD' = m * OD, m = S_tgt diag(max_t / max_s) pinv(S_src) (row-major 3x3). */
    float m[3][3];
    /* Reinhard: lab' = lab * gain + offset */
    float gain[3];
    float offset[3];
} hp_stain_normalizer;

/* Transforms `npix` RGB8 pixels from `src` into `dst` (the same buffer is allowed). The CPU
 * reference of kernels/cuda/stain_normalize.cu. */
hp_status hp_stain_normalize_cpu(const hp_stain_normalizer *n, const uint8_t *src, uint8_t *dst,
                                 size_t npix, hp_error *err);

/* sRGB8 -> CIELAB (D65), and back (clipped to 0..255, rounded). */
void hp_stain_rgb_to_lab(const uint8_t rgb[3], float lab[3]);
void hp_stain_lab_to_rgb(const float lab[3], uint8_t rgb[3]);

#ifdef __cplusplus
}
#endif

#endif
