#include "fuzz/model_exercise.h"

#include <stdint.h>
#include <stdlib.h>

#include "models/model.h"

/* A model that instantiates with inputs or outputs larger than this is valid but not worth
 * running here: the time would go to memset. */
#define MAX_ELEMS (16LL << 20)

static int run_zeros(hp_model *m)
{
    if (hp_model_instantiate(m, 1) != HP_OK)
        return hp_model_error(m)[0] ? 0 : -1;
    const hp_graph *g = hp_model_instance(m);
    float **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    float **out = calloc((size_t)g->n_outputs + 1, sizeof *out);
    int ok = in && out, rc = 0;
    for (int k = 0; ok && k < g->n_inputs; k++) {
        int64_t n = hp_value_numel(&g->values[g->inputs[k]]);
        ok = n >= 0 && n <= MAX_ELEMS && (in[k] = calloc((size_t)n + 1, sizeof(float))) != NULL;
    }
    for (int k = 0; ok && k < g->n_outputs; k++) {
        int64_t n = hp_value_numel(&g->values[g->outputs[k]]);
        ok = n >= 0 && n <= MAX_ELEMS && (out[k] = calloc((size_t)n + 1, sizeof(float))) != NULL;
    }
    if (ok && hp_model_run_all(m, (const float *const *)in, out) != HP_OK && !hp_model_error(m)[0])
        rc = -1;
    /* The single-input API with a buffer of exactly n * hp_model_output_size floats, as callers
     * size it: an output whose first dim is not the batch (Flatten with axis > 1) once made that
     * too small. Under ASan a write past it is the finding. */
    if (ok && g->n_inputs == 1) {
        int64_t per = hp_model_output_size(m, 0);
        float *o1 = per >= 0 && per <= MAX_ELEMS ? malloc(sizeof(float) * (size_t)(per > 0 ? per : 1)) : NULL;
        if (o1 && hp_model_run(m, in[0], 1, o1) != HP_OK && !hp_model_error(m)[0])
            rc = -1;
        free(o1);
    }
    for (int k = 0; in && k < g->n_inputs; k++)
        free(in[k]);
    for (int k = 0; out && k < g->n_outputs; k++)
        free(out[k]);
    free(in);
    free(out);
    return rc;
}

int hp_exercise_model_file(const char *path)
{
    hp_model_options opt = hp_model_default_options();
    opt.require_card = 0;
    opt.threads = 1;
    hp_error err = {0};
    hp_model *m = hp_model_open(path, &opt, &err);
    if (!m)
        return (err.msg[0] && err.code != HP_OK) ? 0 : -1;
    int rc = run_zeros(m);
    hp_model_destroy(m);
    return rc;
}
