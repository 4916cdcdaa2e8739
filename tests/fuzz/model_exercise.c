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
