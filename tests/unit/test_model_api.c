/* The single-model API (models/model.h) where it meets a caller's buffers and options:
 * - fp16 and bf16 on the CPU backends are refused at open with a message naming the precision
 *   and the CUDA backend (the CPU computes in float32; a result labelled fp16 would be false);
 * - hp_model_output_size is per batch item of the instance, also when the output's first
 *   dimension is not the batch (Flatten axis 3 on [N, 3, 4, 5] gives [N * 12, 5]), so a buffer of
 *   n * hp_model_output_size floats holds what hp_model_run writes (it was 5 floats per item, and
 *   the run wrote 60);
 * - hp_model_run refuses zero items with a message. */
#include <string.h>

#include "models/model.h"
#include "util/testutil.h"

static int passed;

static void precision_refused(const char *demo)
{
    static const hp_backend_kind be[] = {HP_BACKEND_CPU, HP_BACKEND_CPU_REFERENCE};
    static const hp_precision prec[] = {HP_PREC_FP16, HP_PREC_BF16};
    static const char *names[] = {"fp16", "bf16"};
    for (int b = 0; b < 2; b++)
        for (int p = 0; p < 2; p++) {
            hp_model_options o = hp_model_default_options();
            o.backend = be[b];
            o.precision = prec[p];
            hp_error err = {0};
            hp_model *m = hp_model_open(demo, &o, &err);
            CHECK_COUNT(passed, m == NULL && err.code == HP_ERR_INVALID && strstr(err.msg, names[p]) &&
                                    strstr(err.msg, "CUDA") && strstr(err.msg, "float32"));
            hp_model_destroy(m);
        }
    hp_model_options o = hp_model_default_options();
    hp_error err = {0};
    hp_model *m = hp_model_open(demo, &o, &err);
    CHECK_COUNT(passed, m != NULL);
    hp_model_destroy(m);
}

static void flatten_output_size(const char *path)
{
    hp_model_options o = hp_model_default_options();
    o.threads = 1;
    hp_error err = {0};
    hp_model *m = hp_model_open(path, &o, &err);
    CHECK_MSG(m != NULL, "%s", err.msg);
    if (!m)
        return;
    enum { N = 3, ITEM = 3 * 4 * 5 };
    float x[N * ITEM], y[N * ITEM + 1];
    hp_test_fill_random(x, N * ITEM, 7, -1, 1);
    CHECK_COUNT(passed, hp_model_instantiate(m, N) == HP_OK);
    const hp_graph *g = hp_model_instance(m);
    const hp_value *ov = g ? &g->values[g->outputs[0]] : NULL;
    CHECK_COUNT(passed, ov && ov->ndim == 2 && ov->dims[0] == N * 12 && ov->dims[1] == 5);
    CHECK_COUNT(passed, hp_model_output_size(m, 0) == ITEM);
    y[N * ITEM] = 12345.0f; /* a guard the run must not touch */
    CHECK_COUNT(passed, hp_model_run(m, x, N, y) == HP_OK);
    CHECK_COUNT(passed, memcmp(x, y, sizeof x) == 0 && y[N * ITEM] == 12345.0f);
    CHECK_COUNT(passed, hp_model_run(m, x, 0, y) != HP_OK && strstr(hp_model_error(m), "items"));
    hp_model_destroy(m);
}

int main(void)
{
    const char *src = hp_test_env("HP_SOURCE_DIR", ".");
    char demo[4096], flat[4096];
    snprintf(demo, sizeof demo, "%s/models/zoo/histoplan-demo-densenet.onnx", src);
    snprintf(flat, sizeof flat, "%s/tests/fuzz/regressions/flatten_axis3_first_dim_not_batch.onnx", src);
    precision_refused(demo);
    flatten_output_size(flat);
    return hp_test_finish("test_model_api", passed);
}
