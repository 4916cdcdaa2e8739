/* Division of 32-bit unsigned integers by a divisor fixed at launch time: a multiply-high, a
 * subtract, an add and two shifts. GPUs have no integer divide unit: n / d compiles to about 20
 * instructions at 32 bits and 70 at 64, and an elementwise kernel that splits its index into
 * (n, c, h, w) pays that per element. Granlund and Montgomery, "Division by invariant integers
 * using multiplication" (PLDI 1994), figure 4.1: for d >= 1, l = ceil(log2 d),
 * m = floor(2^32 (2^l - d) / d) + 1, and q = (t + ((n - t) >> min(l, 1))) >> max(l - 1, 0) with
 * t = mulhi(m, n), exact for every 32-bit n.
 *
 * Plain C so that host code builds the divisor and tests check the arithmetic without a GPU;
 * under nvcc the quotient uses __umulhi on the device. */
#ifndef HP_FAST_DIVIDE_H
#define HP_FAST_DIVIDE_H

#include <stdint.h>

typedef struct {
    uint32_t d, m, s1, s2;
} hp_fast_div;

#ifdef __CUDACC__
#define HP_FAST_DIV_FN __host__ __device__ static inline
#else
#define HP_FAST_DIV_FN static inline
#endif

/* d >= 1 (0 is treated as 1). */
HP_FAST_DIV_FN hp_fast_div hp_fast_div_make(uint32_t d)
{
    hp_fast_div f;
    if (d == 0)
        d = 1;
    uint32_t l = 0;
    while (l < 32 && ((uint64_t)1 << l) < d)
        l++;
    f.d = d;
    f.m = (uint32_t)((((uint64_t)1 << 32) * (((uint64_t)1 << l) - d)) / d + 1);
    f.s1 = l < 1 ? l : 1;
    f.s2 = l > 0 ? l - 1 : 0;
    return f;
}

HP_FAST_DIV_FN uint32_t hp_fast_div_q(hp_fast_div f, uint32_t n)
{
#ifdef __CUDA_ARCH__
    uint32_t t = __umulhi(n, f.m);
#else
    uint32_t t = (uint32_t)(((uint64_t)n * f.m) >> 32);
#endif
    return (t + ((n - t) >> f.s1)) >> f.s2;
}

#endif
