/* Stain normalization of H&E tiles: Macenko (stain vectors in optical density) and Reinhard
 * (mean and standard deviation per channel in CIELAB).
 *
 * Use per slide: fit the target parameters once (from a reference image, or read stored ones
 * from JSON), fit the source parameters once per slide from a few tissue tiles, build a
 * normalizer from the pair, then transform every tile of the slide with it, on the CPU
 * (hp_stain_normalize_cpu, kernels/stain_normalize.h) or on a GPU (kernels/cuda/stain_normalize.h).
 *
 * Macenko, following Macenko et al. 2009 and its reference implementation (HEnorm_python):
 *   optical density  OD = -ln((I + 1) / I0) per channel, I0 = 240;
 *   fit: pixels with OD < beta = 0.15 in any channel are transparent and dropped; the two
 *   largest eigenvectors of the covariance of the remaining OD span the stain plane; the angles
 *   of the OD points in that plane at the 1st and 99th percentiles give the two stain vectors,
 *   haematoxylin first (the one with the larger red OD component, as the reference does);
 *   concentrations of every pixel (least squares on the two vectors) give the maximal
 *   concentrations at the 99th percentile;
 *   transform: c = pinv(S_src) OD, c *= max_t / max_s, OD' = S_tgt c,
 *   I' = I0 exp(-OD') - 1 (the exact inverse of the OD above; the reference omits the -1),
 *   clipped to 0..255 and rounded.
 * Reinhard (Reinhard et al. 2001, in CIELAB rather than l-alpha-beta): sRGB (IEC 61966-2-1)
 * -> linear -> XYZ (D65) -> CIELAB with white (0.95047, 1, 1.08883); lab' = (lab - mean_s) /
 * std_s * std_t + mean_t (population std over all pixels); back to sRGB, clipped and rounded.
 *
 * Pixels are interleaved 8-bit RGB. A batch of n tiles of w x h is n*w*h contiguous pixels.
 * Everything here is thread-safe: no globals are written, parameters and normalizers are plain
 * values owned by the caller. */
#ifndef HP_STAIN_H
#define HP_STAIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's headers carry no extern "C" guards of their own. */
#include "common/status.h"
#include "kernels/stain_normalize.h" /* the method, the normalizer and its CPU transform */

#define HP_STAIN_I0 240.0f   /* background intensity of the OD model (Macenko's reference) */
#define HP_STAIN_BETA 0.15f  /* OD below this in any channel: transparent, not fitted */
#define HP_STAIN_ALPHA 1.0   /* percentile of the extreme angles (1st and 99th) */
#define HP_STAIN_MAXC_PCT 99.0 /* percentile of the maximal concentrations */
#define HP_STAIN_MIN_PIXELS 100 /* fewer stained pixels than this: refuse to fit Macenko */


/* Fitted (or stored) stain parameters of one image or slide. */
typedef struct {
    hp_stain_method method;
    /* Macenko: unit OD vectors, stain[0] haematoxylin, stain[1] eosin (RGB order). */
    float stain[2][3];
    float max_conc[2]; /* 99th percentile concentration of H and of E */
    /* Reinhard: CIELAB L*, a*, b* */
    float mean[3];
    float std[3];
} hp_stain_params;


/* A name for a method ("macenko", "reinhard"); "unknown" otherwise. */
const char *hp_stain_method_name(hp_stain_method m);

/* Parses "macenko" / "reinhard" (case-insensitive). Returns HP_ERR_INVALID for anything else. */
hp_status hp_stain_method_parse(const char *s, hp_stain_method *m, hp_error *err);

/* Fits the parameters of `method` to `npix` RGB8 pixels (for example a few tissue tiles of one
 * slide, back to back). Fails with HP_ERR_INVALID and a message saying why when the pixels
 * cannot define the parameters: too few stained pixels (an empty or all-white tile), a single
 * colour (the two stain vectors coincide, or a LAB channel does not vary), or non-positive
 * maximal concentrations. Never returns NaN parameters. HP_ERR_NOMEM when scratch memory
 * (about 12 bytes per pixel for Macenko) cannot be allocated. */
hp_status hp_stain_fit(hp_stain_method method, const uint8_t *rgb, size_t npix,
                       hp_stain_params *out, hp_error *err);

/* Checks parameters from anywhere (a fit, a file, a caller): known method, finite values,
 * non-parallel non-zero stain vectors and positive maximal concentrations (Macenko), positive
 * standard deviations (Reinhard). The message names the offending field. */
hp_status hp_stain_params_check(const hp_stain_params *p, hp_error *err);

/* Precomputes the transform that maps images with parameters `source` onto `target`. Both must
 * use the same method and pass hp_stain_params_check. */
hp_status hp_stain_normalizer_init(hp_stain_normalizer *n, const hp_stain_params *target,
                                   const hp_stain_params *source, hp_error *err);


/* ---- stored parameters (JSON) ----------------------------------------------------------
 * {"method": "macenko", "stain_matrix": [[H_r, H_g, H_b], [E_r, E_g, E_b]], "max_conc": [H, E]}
 * {"method": "reinhard", "mean": [L, a, b], "std": [L, a, b]}
 * Other members are ignored. Numbers are written with enough digits to read back exactly. */

/* Parses JSON text. A missing or malformed member gives HP_ERR_INVALID naming the member. */
hp_status hp_stain_params_from_json(const char *text, hp_stain_params *out, hp_error *err);

/* Formats parameters as JSON; *text is malloc'd (the caller frees it). */
hp_status hp_stain_params_to_json(const hp_stain_params *p, char **text, hp_error *err);

/* Reads / writes a JSON file (written under a temporary name and renamed when complete).
 * Errors name the file. */
hp_status hp_stain_params_read(const char *path, hp_stain_params *out, hp_error *err);
hp_status hp_stain_params_write(const char *path, const hp_stain_params *p, hp_error *err);


#ifdef __cplusplus
}
#endif

#endif
