/* The one pseudo-random generator of evaluations (bootstrap resampling, k-fold shuffles):
 * SplitMix64 (Steele, Lea and Flood 2014), chosen because it is a few lines that anyone can
 * reproduce in any language, so a researcher can regenerate a split or a bootstrap sample
 * outside histoplan. An index below n is next() mod n (the bias, under n / 2^64, is
 * immaterial for data sets of any real size). */
#ifndef HP_EVAL_RNG_H
#define HP_EVAL_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t state;
} hp_eval_rng;

static inline void hp_eval_rng_seed(hp_eval_rng *r, uint64_t seed) { r->state = seed; }

static inline uint64_t hp_eval_rng_next(hp_eval_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* An index in [0, n); n > 0. */
static inline uint64_t hp_eval_rng_below(hp_eval_rng *r, uint64_t n)
{
    return hp_eval_rng_next(r) % n;
}

#endif
