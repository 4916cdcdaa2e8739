#include "util/testutil.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

int hp_test_failures = 0;
int hp_test_skipped = 0;

int hp_test_finish(const char *name, int passed)
{
    printf("%s: %d passed, %d failed%s\n", name, passed, hp_test_failures,
           hp_test_skipped ? ", parts skipped (shared data absent)" : "");
    return hp_test_failures ? 1 : hp_test_skipped ? 77 : 0;
}

const char *hp_test_shared_path(const char *rel, char *buf, size_t n)
{
    snprintf(buf, n, "%s/%s", hp_test_env("HP_SHARED_DIR", "../shared"), rel);
    if (access(buf, R_OK) == 0)
        return buf;
    const char *req = getenv("HP_REQUIRE_SHARED");
    if (req && !strcmp(req, "1")) {
        fprintf(stderr, "check failed: shared data %s is absent and HP_REQUIRE_SHARED=1\n", buf);
        hp_test_failures++;
    } else {
        printf("skipped: shared data %s is absent\n", buf);
        hp_test_skipped++;
    }
    return NULL;
}

const char *hp_test_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

void hp_test_fill_random(float *x, long n, unsigned seed, float lo, float hi)
{
    unsigned s = seed ? seed : 1u;
    for (long i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        x[i] = lo + (hi - lo) * (float)((s >> 8) * (1.0 / 16777216.0));
    }
}

double hp_test_max_rel_err(const float *a, const float *b, long n)
{
    double md = 0, mb = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > md || isnan(d))
            md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb)
            mb = fabs(b[i]);
    }
    return md / (mb > 1e-30 ? mb : 1e-30);
}

double hp_test_nmse(const float *a, const float *b, long n)
{
    double num = 0, den = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return num / (den > 1e-30 ? den : 1e-30);
}
