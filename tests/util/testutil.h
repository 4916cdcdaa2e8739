/* Small helpers shared by the C tests: checks that report file and line, and environment. */
#ifndef HP_TESTUTIL_H
#define HP_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

extern int hp_test_failures;
/* Parts of the test skipped because shared data is absent (see hp_test_shared_path). */
extern int hp_test_skipped;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);         \
            hp_test_failures++;                                                              \
        }                                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                 \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            hp_test_failures++;                                                              \
        }                                                                                    \
    } while (0)

/* CHECK that also counts the passes in `counter`, evaluating `cond` once (checks may call
 * functions with side effects). */
#define CHECK_COUNT(counter, cond)                                                           \
    do {                                                                                     \
        int ok_ = !!(cond);                                                                  \
        if (!ok_) {                                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);        \
            hp_test_failures++;                                                              \
        }                                                                                    \
        (counter) += ok_;                                                                    \
    } while (0)

/* Prints "N passed, M failed" style summary for the program and returns its exit status: 1 when
 * a check failed, else 77 (skipped, as ctest counts it) when a part needing shared data was
 * skipped, else 0. */
int hp_test_finish(const char *name, int passed);

/* The path of shared test data, $HP_SHARED_DIR/<rel> (default ../shared), in buf. When it is
 * not readable: with HP_REQUIRE_SHARED=1 (CI, where the data is present) that is a failure;
 * otherwise the part is skipped (hp_test_finish then exits 77). Returns buf, or NULL when absent. */
const char *hp_test_shared_path(const char *rel, char *buf, size_t n);

/* An environment variable or a default. */
const char *hp_test_env(const char *name, const char *fallback);

/* Deterministic pseudo-random floats in [lo, hi) (xorshift), for test inputs. */
void hp_test_fill_random(float *x, long n, unsigned seed, float lo, float hi);

/* max |a - b| / max(max |b|, tiny) and normalized mean squared error sum (a-b)^2 / sum b^2. */
double hp_test_max_rel_err(const float *a, const float *b, long n);
double hp_test_nmse(const float *a, const float *b, long n);

#endif
