/* The per-pixel arithmetic of stain normalization, shared word for word by the CPU reference
 * (kernels/cpu/stain_normalize.c) and the CUDA kernel (kernels/cuda/stain_normalize.cu), so the
 * two differ only by the last bits of expf/logf/powf/cbrtf on each side.
 * Colour science: sRGB transfer function (IEC 61966-2-1), sRGB primaries to XYZ under D65, and
 * CIELAB with the D65 white (0.95047, 1, 1.08883); see pipeline/stain.h for the methods. */
#ifndef HP_STAIN_PIXEL_H
#define HP_STAIN_PIXEL_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define HP_STAIN_HD static __host__ __device__ __forceinline__
#else
#define HP_STAIN_HD static inline
#endif

/* 0..1 sRGB component -> linear light. */
HP_STAIN_HD float hp_stain_srgb_to_linear(float c)
{
    return c <= 0.04045f ? c / 12.92f : powf((c + 0.055f) / 1.055f, 2.4f);
}

/* Linear light -> 0..1 sRGB component, clipped to the gamut first (LAB shifts leave it). */
HP_STAIN_HD float hp_stain_linear_to_srgb(float l)
{
    if (!(l > 0.0f))
        return 0.0f; /* also NaN */
    if (l >= 1.0f)
        return 1.0f;
    return l <= 0.0031308f ? 12.92f * l : 1.055f * powf(l, 1.0f / 2.4f) - 0.055f;
}

/* Rounds a 0..255 float to a byte, clipping (NaN -> 0). */
HP_STAIN_HD uint8_t hp_stain_to_u8(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 255.0f)
        return 255;
    return (uint8_t)(v + 0.5f);
}

HP_STAIN_HD float hp_stain_lab_f(float t)
{
    /* (6/29)^3 and 1 / (3 (6/29)^2) */
    return t > 0.008856451679f ? cbrtf(t) : t * 7.787037037f + 0.137931034f;
}

HP_STAIN_HD float hp_stain_lab_finv(float t)
{
    return t > 0.206896552f ? t * t * t : (t - 0.137931034f) * 0.128418549f;
}

/* Linear sRGB -> CIELAB (D65). */
HP_STAIN_HD void hp_stain_linear_to_lab(const float lin[3], float lab[3])
{
    float x = 0.4124564f * lin[0] + 0.3575761f * lin[1] + 0.1804375f * lin[2];
    float y = 0.2126729f * lin[0] + 0.7151522f * lin[1] + 0.0721750f * lin[2];
    float z = 0.0193339f * lin[0] + 0.1191920f * lin[1] + 0.9503041f * lin[2];
    float fx = hp_stain_lab_f(x / 0.95047f);
    float fy = hp_stain_lab_f(y);
    float fz = hp_stain_lab_f(z / 1.08883f);
    lab[0] = 116.0f * fy - 16.0f;
    lab[1] = 500.0f * (fx - fy);
    lab[2] = 200.0f * (fy - fz);
}

/* CIELAB (D65) -> linear sRGB (not clipped). */
HP_STAIN_HD void hp_stain_lab_to_linear(const float lab[3], float lin[3])
{
    float fy = (lab[0] + 16.0f) / 116.0f;
    float fx = fy + lab[1] / 500.0f;
    float fz = fy - lab[2] / 200.0f;
    float x = 0.95047f * hp_stain_lab_finv(fx);
    float y = hp_stain_lab_finv(fy);
    float z = 1.08883f * hp_stain_lab_finv(fz);
    lin[0] = 3.2404542f * x - 1.5371385f * y - 0.4985314f * z;
    lin[1] = -0.9692660f * x + 1.8760108f * y + 0.0415560f * z;
    lin[2] = 0.0556434f * x - 0.2040259f * y + 1.0572252f * z;
}

/* Reinhard: one pixel given its linear-light components. */
HP_STAIN_HD void hp_stain_reinhard_pixel(const float gain[3], const float offset[3],
                                         const float lin[3], uint8_t out[3])
{
    float lab[3], l2[3];
    hp_stain_linear_to_lab(lin, lab);
    for (int c = 0; c < 3; c++)
        lab[c] = lab[c] * gain[c] + offset[c];
    hp_stain_lab_to_linear(lab, l2);
    for (int c = 0; c < 3; c++)
        out[c] = hp_stain_to_u8(255.0f * hp_stain_linear_to_srgb(l2[c]));
}

/* Macenko OD of one 8-bit component: -ln((v + 1) / I0), I0 = 240. */
HP_STAIN_HD float hp_stain_od(int v)
{
    return -logf(((float)v + 1.0f) / 240.0f);
}

/* Macenko: one pixel given its OD; m maps source OD to target OD (pipeline/stain.h). */
HP_STAIN_HD void hp_stain_macenko_pixel(const float m[3][3], const float od[3], uint8_t out[3])
{
    for (int c = 0; c < 3; c++) {
        float o = m[c][0] * od[0] + m[c][1] * od[1] + m[c][2] * od[2];
        out[c] = hp_stain_to_u8(240.0f * expf(-o) - 1.0f);
    }
}

#endif
