/* One hp_model shared by threads (models/model.h): the service keeps one model in memory per
 * process and its workers take turns on it. Several threads run batches of their own tiles on one
 * instance at the same time; each must get exactly the probabilities a lone run of the same
 * batch gives. Without the model's serialization the runs share the instance's activation
 * buffers and read each other's tiles. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/model.h"
#include "util/testutil.h"

enum { THREADS = 4, RUNS = 5, BATCH = 2 };

typedef struct {
    hp_model *m;
    const uint8_t *tiles;    /* RUNS batches of this thread */
    const float *expected;   /* their lone-run outputs */
    size_t tile_bytes;
    int64_t out_per_item;
    int mismatches, failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    float *out = malloc(sizeof(float) * (size_t)(BATCH * a->out_per_item));
    if (!out) {
        a->failures++;
        return NULL;
    }
    for (int r = 0; r < RUNS; r++) {
        const uint8_t *in = a->tiles + (size_t)r * BATCH * a->tile_bytes;
        if (hp_model_run_rgb8(a->m, in, BATCH, out) != HP_OK) {
            a->failures++;
            continue;
        }
        if (memcmp(out, a->expected + (size_t)r * BATCH * a->out_per_item,
                   sizeof(float) * (size_t)(BATCH * a->out_per_item)) != 0)
            a->mismatches++;
    }
    free(out);
    return NULL;
}

int main(void)
{
    int passed = 0;
    const char *src = hp_test_env("HP_SOURCE_DIR", ".");
    char demo[4096];
    snprintf(demo, sizeof demo, "%s/models/zoo/histoplan-demo-densenet.onnx", src);
    hp_model_options o = hp_model_default_options();
    o.threads = 1; /* one BLAS thread: the same batch gives the same bits every time */
    hp_error err = {0};
    hp_model *m = hp_model_open(demo, &o, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m)
        return 1;
    int c, h, w;
    hp_model_input_shape(m, &c, &h, &w);
    CHECK_COUNT(passed, c == 3 && h > 0 && w > 0);
    CHECK_COUNT(passed, hp_model_instantiate(m, BATCH) == HP_OK);
    size_t tile_bytes = (size_t)3 * (size_t)h * (size_t)w;
    int64_t per = hp_model_output_size(m, 0);
    size_t n_tiles = (size_t)THREADS * RUNS * BATCH;
    uint8_t *tiles = malloc(n_tiles * tile_bytes);
    float *expected = malloc(sizeof(float) * n_tiles * (size_t)per);
    CHECK(tiles && expected);
    /* Distinct tiles for every batch: a run that read another thread's input would differ. */
    uint32_t state = 12345;
    for (size_t i = 0; i < n_tiles * tile_bytes; i++) {
        state = state * 1664525u + 1013904223u;
        tiles[i] = (uint8_t)(state >> 24);
    }
    for (size_t b = 0; b < n_tiles / BATCH; b++)
        CHECK(hp_model_run_rgb8(m, tiles + b * BATCH * tile_bytes, BATCH,
                                expected + b * BATCH * (size_t)per) == HP_OK);
    /* The batches differ, so their outputs do: the comparison below can fail. */
    CHECK_COUNT(passed, memcmp(expected, expected + BATCH * (size_t)per, sizeof(float) * (size_t)per) != 0);

    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.m = m,
                               .tiles = tiles + (size_t)t * RUNS * BATCH * tile_bytes,
                               .expected = expected + (size_t)t * RUNS * BATCH * (size_t)per,
                               .tile_bytes = tile_bytes,
                               .out_per_item = per};
        CHECK(pthread_create(&th[t], NULL, worker, &args[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(args[t].failures == 0, "thread %d: %d runs failed: %s", t, args[t].failures,
                  hp_model_error(m));
        CHECK_MSG(args[t].mismatches == 0, "thread %d: %d of %d batches differ from a lone run", t,
                  args[t].mismatches, RUNS);
        passed += 2;
    }
    free(tiles);
    free(expected);
    hp_model_destroy(m);
    return hp_test_finish("test_model_shared", passed);
}
