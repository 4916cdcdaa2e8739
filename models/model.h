/* histoplan's model API: open an ONNX model (with its card), inspect it, run batches on a
 * backend. This is the one C API over the CPU and CUDA backends.
 *
 * Thread-safety: threads may share one hp_model for hp_model_instantiate and the hp_model_run*
 * calls, which the model serializes (one run at a time per instance, as the backend's buffers are
 * the instance's); a service keeps one model in memory and its workers take turns on it. The
 * other calls that change the model (input shapes) and hp_model_error belong to one thread: a
 * message recorded by a failed run may be replaced by another thread's. Open one model per
 * thread to run truly concurrently. Every failure is recorded on the model and returned. */
#ifndef HP_MODEL_H
#define HP_MODEL_H

#include <stdint.h>

#include "common/status.h"
#include "kernels/backend.h"
#include "models/card.h"
#include "models/graph.h"

typedef struct hp_model hp_model;

typedef enum { HP_BACKEND_CPU = 0, HP_BACKEND_CPU_REFERENCE, HP_BACKEND_CUDA } hp_backend_kind;

typedef struct {
    hp_backend_kind backend;
    hp_precision precision; /* fp16 / bf16 need the CUDA backend: the CPU backends compute in
                               float32 only and hp_model_open refuses them (HP_ERR_INVALID) */
    int threads;            /* CPU threads; <= 0 for all cores */
    int device;             /* CUDA device index */
    const char *card_path;  /* NULL: "<model>.card.json" beside the model when it exists */
    int require_card;       /* refuse a model that has no card (the CLI does unless options given) */
} hp_model_options;

/* Default options: CPU, float32, all cores, card looked up beside the model. */
hp_model_options hp_model_default_options(void);

/* Opens `path`. On failure returns NULL and fills `err` (the message names the file, the node
 * and the reason). The caller destroys the model. */
hp_model *hp_model_open(const char *path, const hp_model_options *opt, hp_error *err);
void hp_model_destroy(hp_model *m);

/* The error recorded on the model by its last failed call ("" when none). */
const char *hp_model_error(const hp_model *m);

/* The loaded graph before instantiation (inputs, outputs, ops; symbolic input dims are -1). */
const hp_graph *hp_model_graph(const hp_model *m);
/* The precision it was opened with (hp_model_options.precision). */
hp_precision hp_model_precision(const hp_model *m);
/* The model card; NULL when the model has none. */
const hp_card *hp_model_card(const hp_model *m);
/* Overrides or completes the card's normalization and classes (CLI --mean/--std/--classes). */
hp_status hp_model_set_normalization(hp_model *m, const float mean[3], const float std_[3]);
hp_status hp_model_set_classes(hp_model *m, int n, const char *const *names);

/* Input geometry of the first input when it is 4-D (NCHW): channels, height, width after the
 * batch dim; all 0 for an input of another rank. */
void hp_model_input_shape(const hp_model *m, int *c, int *h, int *w);
/* Number of elements per batch item of output `i`: the instance's output size divided by the
 * batch it was instantiated for (the output's first dim need not be the batch: Flatten with
 * axis > 1 gives [N * k, m]). Before instantiation, the product of the declared dims after the
 * first (unknown dims count 0). */
int64_t hp_model_output_size(const hp_model *m, int i);

/* Runs a batch of `n` items. `input` is contiguous float32 NCHW for the first input; `output`
 * receives the first output, n * hp_model_output_size(m, 0) floats. The model is instantiated
 * (shapes, passes, memory plan, backend prepare) for `n` on first use and when n changes.
 * Refused (HP_ERR_INVALID, nothing written) unless the model has one runtime input whose first
 * dim is n (symbolic, or fixed at n) and a first output that splits into n equal items; other
 * models run through hp_model_run_all. */
hp_status hp_model_run(hp_model *m, const float *input, int n, float *output);

/* Runs `n` RGB tiles (interleaved uint8, h x w each, matching the model input) after the card's
 * mean/std normalization (on 0..1 values). */
hp_status hp_model_run_rgb8(hp_model *m, const uint8_t *rgb, int n, float *output);

/* Makes the graph value `name` (computed by a node, e.g. the penultimate features a classifier
 * reads) an extra output, returned by the runs below as output `*index` (an existing output
 * gives its own index). Drops the current instance. HP_ERR_INVALID when no node computes it. */
hp_status hp_model_add_output(hp_model *m, const char *name, int *index);

/* hp_model_run_rgb8 that also returns further outputs: extra[i] receives output i + 1 (n items
 * times hp_model_output_size(m, i + 1) floats) when given and not NULL. */
hp_status hp_model_run_rgb8_outputs(hp_model *m, const uint8_t *rgb, int n, float *output,
                                    float *const *extra, int n_extra);

/* Lower-level use (conformance tests, researchers' multi-input graphs) ------------------- */

/* Turns graph input `name` into a constant with the given data (float32 or int64, copied), as if
 * it were an initializer: shape inputs, pads, scales and Clip bounds that a test feeds as data.
 * Must be called before the first run. */
hp_status hp_model_bind_constant(hp_model *m, const char *name, hp_dtype dtype, int ndim,
                                 const int64_t *dims, const void *data);

/* Gives the size of the symbolic dims of graph input `name` other than the first (the height
 * and width of a fully convolutional export, for example) for the following instantiations.
 * `dims` is the whole shape: ndim must be the declared rank and fixed dims must agree; dims[0]
 * is ignored (the batch comes from hp_model_instantiate). A change drops the current instance.
 * A model whose input keeps a symbolic dim other than the first cannot be instantiated. */
hp_status hp_model_set_input_shape(hp_model *m, const char *name, int ndim, const int64_t *dims);

/* Whether graph input i only feeds parameter slots that must be constant (a Reshape shape, Pad
 * pads, Resize scales or sizes, Clip bounds, Unsqueeze axes, ...), so it should be bound. */
int hp_model_input_is_parameter(const hp_model *m, int i);

/* Instantiates the model for batch size n (shape inference, passes, plan, backend prepare).
 * The instance graph stays valid until the next instantiate with another n, or destroy. */
hp_status hp_model_instantiate(hp_model *m, int n);
const hp_graph *hp_model_instance(const hp_model *m);

/* Runs the instance with every runtime input given: inputs[i] for instance->inputs[i], outputs[i]
 * for instance->outputs[i], each contiguous float32 of the value's numel. */
hp_status hp_model_run_all(hp_model *m, const float *const *inputs, float *const *outputs);

/* Statistics of the graph instantiated for batch n: parameters, FLOPs per batch item
 * (multiply-add = 2), and planned peak activation memory in bytes (float32). */
typedef struct {
    int64_t params;
    int64_t flops_per_item;
    int64_t arena_bytes;
    int64_t naive_bytes;
    int n_nodes_loaded, n_nodes_planned;
} hp_model_stats;
hp_status hp_model_stats_for_batch(hp_model *m, int n, hp_model_stats *st);

#endif
