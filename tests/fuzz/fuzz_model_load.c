/* libFuzzer harness for model loading: the input is written to a file (model.h opens paths
 * only) and goes through hp_model_open, hp_model_instantiate(1) and a run on zero inputs. Any
 * crash, sanitizer report, leak, hang or runaway allocation is a finding; an error return is
 * the expected outcome for almost every input, and its message must not be empty. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/model.h"

/* A model that instantiates with inputs or outputs larger than this is valid but not worth
 * running here: the harness would spend its time in memset. */
#define MAX_ELEMS (16LL << 20)

static char g_path[128];

static void run_zeros(hp_model *m)
{
    if (hp_model_instantiate(m, 1) != HP_OK) {
        if (!hp_model_error(m)[0])
            abort(); /* every failure must say why */
        return;
    }
    const hp_graph *g = hp_model_instance(m);
    float **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    float **out = calloc((size_t)g->n_outputs + 1, sizeof *out);
    int ok = in && out;
    for (int k = 0; ok && k < g->n_inputs; k++) {
        int64_t n = hp_value_numel(&g->values[g->inputs[k]]);
        ok = n >= 0 && n <= MAX_ELEMS && (in[k] = calloc((size_t)n + 1, sizeof(float))) != NULL;
    }
    for (int k = 0; ok && k < g->n_outputs; k++) {
        int64_t n = hp_value_numel(&g->values[g->outputs[k]]);
        ok = n >= 0 && n <= MAX_ELEMS && (out[k] = calloc((size_t)n + 1, sizeof(float))) != NULL;
    }
    if (ok && hp_model_run_all(m, (const float *const *)in, out) != HP_OK && !hp_model_error(m)[0])
        abort();
    for (int k = 0; in && k < g->n_inputs; k++)
        free(in[k]);
    for (int k = 0; out && k < g->n_outputs; k++)
        free(out[k]);
    free(in);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_path[0])
        snprintf(g_path, sizeof g_path, "/dev/shm/hp_fuzz_model_%d.onnx", (int)getpid());
    int fd = open(g_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    if (off != size)
        return 0;

    hp_model_options opt = hp_model_default_options();
    opt.require_card = 0;
    opt.threads = 1;
    hp_error err = {0};
    hp_model *m = hp_model_open(g_path, &opt, &err);
    if (!m) {
        if (!err.msg[0] || err.code == HP_OK)
            abort();
        return 0;
    }
    run_zeros(m);
    hp_model_destroy(m);
    return 0;
}
