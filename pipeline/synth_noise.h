/* Hashing and value noise for the synthetic slide generator: everything it draws is a function
 * of (seed, x, y), so any tile can be rendered alone and neighbouring tiles agree at borders. */
#ifndef HP_SYNTH_NOISE_H
#define HP_SYNTH_NOISE_H

#include <math.h>
#include <stdint.h>

/* A well-mixed 32-bit hash of the seed, two coordinates and a salt (splitmix-style finalizer). */
static inline uint32_t hp_synth_hash(uint32_t seed, int64_t a, int64_t b, uint32_t salt)
{
    uint64_t h = (uint64_t)seed * 0x9E3779B97F4A7C15ull ^ (uint64_t)a * 0xC2B2AE3D27D4EB4Full ^
                 (uint64_t)b * 0x165667B19E3779F9ull ^ (uint64_t)salt * 0x27D4EB2F165667C5ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* A hash mapped to [0, 1). */
static inline double hp_synth_u01(uint32_t h)
{
    return (h >> 8) * (1.0 / 16777216.0);
}

/* Smooth value noise in [0, 1): hashed lattice values, smoothstep-interpolated. */
static inline double hp_synth_vnoise(uint32_t seed, uint32_t salt, double x, double y)
{
    double fx = floor(x), fy = floor(y);
    int64_t ix = (int64_t)fx, iy = (int64_t)fy;
    double tx = x - fx, ty = y - fy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    double a = hp_synth_u01(hp_synth_hash(seed, ix, iy, salt));
    double b = hp_synth_u01(hp_synth_hash(seed, ix + 1, iy, salt));
    double c = hp_synth_u01(hp_synth_hash(seed, ix, iy + 1, salt));
    double d = hp_synth_u01(hp_synth_hash(seed, ix + 1, iy + 1, salt));
    double top = a + (b - a) * tx, bot = c + (d - c) * tx;
    return top + (bot - top) * ty;
}

#endif
