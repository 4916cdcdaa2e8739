/* The model API (model.h): a loaded graph, its card, and one instance per batch size
 * (shape-inferred, optimized, planned, prepared on a backend). */
#include "common/sha256.h"
#include "models/model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/infer.h"
#include "models/onnx_load.h"
#include "models/onnx_ops.h"
#include "models/tensor_convert.h"

struct hp_model {
    hp_error err;
    hp_model_options opt;
    char *path;
    hp_graph *base;     /* as loaded */
    hp_card card;
    int has_card;
    hp_backend *backend;
    hp_graph *inst;     /* instance for inst_batch */
    hp_plan plan;
    int inst_batch;
    float *norm_buf;    /* scratch for hp_model_run_rgb8 */
    size_t norm_cap;
    /* Sizes given for symbolic input dims after the first (hp_model_set_input_shape), by value
     * index in `base`; applied to each instance before shape inference. */
    struct input_shape {
        int value;
        int64_t dims[HP_MAX_DIMS];
    } *shapes;
    int n_shapes;
    /* Serializes instantiation and runs, so that threads may share one instance of a model
     * (the service's workers do: one model in memory per process, and the backend kept busy by
     * whichever worker has a batch ready while the others read tiles or write results). */
    pthread_mutex_t run_mu;
    int run_mu_ready;
};

hp_model_options hp_model_default_options(void)
{
    hp_model_options o = {0};
    o.backend = HP_BACKEND_CPU;
    o.precision = HP_PREC_FP32;
    return o;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* "<dir>/<stem>.card.json" for "<dir>/<stem>.onnx". */
static char *card_path_for(const char *model)
{
    size_t n = strlen(model);
    const char *dot = strrchr(model, '.');
    const char *slash = strrchr(model, '/');
    if (dot && (!slash || dot > slash))
        n = (size_t)(dot - model);
    char *p = malloc(n + 11);
    if (p) {
        memcpy(p, model, n);
        memcpy(p + n, ".card.json", 11);
    }
    return p;
}

static void drop_instance(hp_model *m)
{
    hp_graph_destroy(m->inst);
    m->inst = NULL;
    hp_plan_free(&m->plan);
    m->inst_batch = 0;
}

void hp_model_destroy(hp_model *m)
{
    if (!m)
        return;
    hp_backend_destroy(m->backend);
    drop_instance(m);
    hp_graph_destroy(m->base);
    hp_card_free(&m->card);
    free(m->norm_buf);
    free(m->shapes);
    free(m->path);
    if (m->run_mu_ready)
        pthread_mutex_destroy(&m->run_mu);
    free(m);
}

hp_model *hp_model_open(const char *path, const hp_model_options *opt, hp_error *err)
{
    hp_model *m = calloc(1, sizeof *m);
    if (!m) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->opt = opt ? *opt : hp_model_default_options();
    if (pthread_mutex_init(&m->run_mu, NULL) != 0) {
        hp_error_set(err, HP_ERR_NOMEM, "cannot create a mutex");
        goto fail;
    }
    m->run_mu_ready = 1;
    m->path = strdup(path);
    if (!m->path) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (hp_onnx_load(path, &m->base, err))
        goto fail;

    char *cp = m->opt.card_path ? strdup(m->opt.card_path) : card_path_for(path);
    if (!cp) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (m->opt.card_path || file_exists(cp)) {
        if (hp_card_load(cp, &m->card, err)) {
            free(cp);
            goto fail;
        }
        m->has_card = 1;
        if (m->card.sha256) {
            char hex[65];
            if (hp_sha256_file(path, hex, err)) {
                free(cp);
                goto fail;
            }
            if (strcmp(hex, m->card.sha256) != 0) {
                hp_error_set(err, HP_ERR_INVALID,
                             "%s: SHA-256 %s does not match the card %s (%s): the model file is not the "
                             "one the card describes",
                             path, hex, cp, m->card.sha256);
                free(cp);
                goto fail;
            }
        }
    } else if (m->opt.require_card) {
        hp_error_set(err, HP_ERR_INVALID,
                     "%s: no model card (%s); give the card or the options --mean, --std and --classes",
                     path, cp);
        free(cp);
        goto fail;
    }
    free(cp);

    /* The CPU backends compute in float32 only: a result labelled fp16 or bf16 that was computed
     * in float32 would mislead anyone comparing precisions. */
    if (m->opt.backend != HP_BACKEND_CUDA && m->opt.precision != HP_PREC_FP32) {
        hp_error_set(err, HP_ERR_INVALID,
                     "%s: precision %s needs the CUDA backend; the CPU backends compute in float32 "
                     "only (use fp32)",
                     path, hp_precision_name(m->opt.precision));
        goto fail;
    }

    switch (m->opt.backend) {
    case HP_BACKEND_CPU: m->backend = hp_cpu_backend_create(m->opt.threads, 0); break;
    case HP_BACKEND_CPU_REFERENCE: m->backend = hp_cpu_backend_create(m->opt.threads, 1); break;
    case HP_BACKEND_CUDA: m->backend = hp_cuda_backend_create(m->opt.device, m->opt.precision, err); break;
    }
    if (!m->backend) {
        hp_error_set(err, HP_ERR_NOMEM, "cannot create the backend");
        goto fail;
    }
    return m;
fail:
    hp_model_destroy(m);
    return NULL;
}

const char *hp_model_error(const hp_model *m)
{
    return m ? m->err.msg : "no model";
}

const hp_graph *hp_model_graph(const hp_model *m)
{
    return m->base;
}

hp_precision hp_model_precision(const hp_model *m)
{
    return m->opt.precision;
}

const hp_card *hp_model_card(const hp_model *m)
{
    return m->has_card ? &m->card : NULL;
}

hp_status hp_model_set_normalization(hp_model *m, const float mean[3], const float std_[3])
{
    for (int i = 0; i < 3; i++)
        if (!(std_[i] > 0) || !isfinite(mean[i]))
            return hp_error_set(&m->err, HP_ERR_INVALID, "std must be positive and mean finite");
    memcpy(m->card.mean, mean, sizeof m->card.mean);
    memcpy(m->card.std, std_, sizeof m->card.std);
    m->card.has_norm = 1;
    m->has_card = 1;
    return HP_OK;
}

hp_status hp_model_set_classes(hp_model *m, int n, const char *const *names)
{
    if (n < 1 || n > HP_CARD_MAX_CLASSES)
        return hp_error_set(&m->err, HP_ERR_INVALID, "%d classes (1 to %d)", n, HP_CARD_MAX_CLASSES);
    for (int i = 0; i < m->card.n_classes; i++) {
        free(m->card.classes[i]);
        m->card.classes[i] = NULL;
    }
    for (int i = 0; i < n; i++) {
        m->card.classes[i] = strdup(names[i]);
        if (!m->card.classes[i])
            return hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
    }
    m->card.n_classes = n;
    m->has_card = 1;
    return HP_OK;
}

void hp_model_input_shape(const hp_model *m, int *c, int *h, int *w)
{
    const hp_value *v = &m->base->values[m->base->inputs[0]];
    int image = v->ndim == 4;
    *c = image ? (int)v->dims[1] : 0;
    *h = image ? (int)v->dims[2] : 0;
    *w = image ? (int)v->dims[3] : 0;
}

hp_status hp_model_bind_constant(hp_model *m, const char *name, hp_dtype dtype, int ndim,
                                 const int64_t *dims, const void *data)
{
    if (m->inst)
        return hp_error_set(&m->err, HP_ERR_INVALID, "bind '%s' before the first run", name);
    int v = hp_graph_find_value(m->base, name);
    if (v < 0 || m->base->values[v].kind != HP_VAL_INPUT)
        return hp_error_set(&m->err, HP_ERR_INVALID, "%s: no graph input named '%s'", m->path, name);
    if (dtype != HP_DT_FLOAT && dtype != HP_DT_INT64)
        return hp_error_set(&m->err, HP_ERR_UNSUPPORTED, "bind '%s': data type %s", name, hp_dtype_name(dtype));
    return hp_value_set_const(&m->base->values[v], dtype, ndim, dims, data, &m->err);
}

hp_status hp_model_set_input_shape(hp_model *m, const char *name, int ndim, const int64_t *dims)
{
    int v = hp_graph_find_value(m->base, name);
    if (v < 0 || m->base->values[v].kind != HP_VAL_INPUT)
        return hp_error_set(&m->err, HP_ERR_INVALID, "%s: no graph input named '%s'", m->path, name);
    const hp_value *val = &m->base->values[v];
    if (ndim != val->ndim)
        return hp_error_set(&m->err, HP_ERR_INVALID, "%s: input '%s' has rank %d, not %d", m->path,
                            name, val->ndim, ndim);
    for (int d = 1; d < ndim; d++) {
        if (val->dims[d] >= 0 ? dims[d] != val->dims[d] : dims[d] < 1 || dims[d] > (1 << 24))
            return hp_error_set(&m->err, HP_ERR_INVALID,
                                "%s: input '%s' dim %d: %lld where the model declares %s%lld", m->path,
                                name, d, (long long)dims[d], val->dims[d] >= 0 ? "" : "a symbolic size, 1 to ",
                                (long long)(val->dims[d] >= 0 ? val->dims[d] : (1 << 24)));
    }
    int k = 0;
    while (k < m->n_shapes && m->shapes[k].value != v)
        k++;
    if (k == m->n_shapes) {
        struct input_shape *ns = realloc(m->shapes, sizeof *ns * (size_t)(m->n_shapes + 1));
        if (!ns)
            return hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
        m->shapes = ns;
        m->shapes[k].value = v;
        memset(m->shapes[k].dims, 0, sizeof m->shapes[k].dims);
        m->n_shapes++;
    }
    if (memcmp(m->shapes[k].dims + 1, dims + 1, sizeof(int64_t) * (size_t)(ndim > 1 ? ndim - 1 : 0))) {
        memcpy(m->shapes[k].dims + 1, dims + 1, sizeof(int64_t) * (size_t)(ndim > 1 ? ndim - 1 : 0));
        drop_instance(m);
    }
    return HP_OK;
}

int hp_model_input_is_parameter(const hp_model *m, int i)
{
    const hp_graph *g = m->base;
    if (i < 0 || i >= g->n_inputs)
        return 0;
    int v = g->inputs[i], uses = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        for (int s = 0; s < n->n_in; s++) {
            if (n->in[s] != v)
                continue;
            uses++;
            if (!hp_onnx_slot_is_parameter((hp_onnx_op)n->load.kind, s))
                return 0;
        }
    }
    return uses > 0;
}

static hp_status instantiate_locked(hp_model *m, int n)
{
    if (m->inst && m->inst_batch == n)
        return HP_OK;
    drop_instance(m);
    hp_graph *g = hp_graph_clone(m->base);
    if (!g)
        return hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
    for (int k = 0; k < m->n_shapes; k++) {
        hp_value *v = &g->values[m->shapes[k].value];
        for (int d = 1; d < v->ndim; d++)
            if (v->dims[d] < 0)
                v->dims[d] = m->shapes[k].dims[d];
    }
    hp_status st = hp_graph_infer(g, n, &m->err);
    if (!st)
        st = hp_graph_optimize(g, &m->err);
    if (!st)
        st = hp_plan_build(g, &m->plan, &m->err);
    if (st) {
        hp_graph_destroy(g);
        hp_plan_free(&m->plan);
        return st;
    }
    m->inst = g;
    m->inst_batch = n;
    hp_error_clear(&m->backend->err);
    st = hp_backend_prepare(m->backend, g, &m->plan);
    if (st) {
        hp_error_set(&m->err, st, "%s: %s backend: %s", m->path, m->backend->vt->name, hp_backend_error(m->backend));
        drop_instance(m);
        return st;
    }
    return HP_OK;
}

hp_status hp_model_instantiate(hp_model *m, int n)
{
    pthread_mutex_lock(&m->run_mu);
    hp_status st = instantiate_locked(m, n);
    pthread_mutex_unlock(&m->run_mu);
    return st;
}

const hp_graph *hp_model_instance(const hp_model *m)
{
    return m->inst;
}

static hp_status run_all_locked(hp_model *m, const float *const *inputs, float *const *outputs)
{
    if (!m->inst)
        return hp_error_set(&m->err, HP_ERR_INVALID, "instantiate the model before running it");
    hp_error_clear(&m->backend->err);
    hp_status st = hp_backend_run(m->backend, inputs, outputs);
    if (st)
        hp_error_set(&m->err, st, "%s: %s backend: %s", m->path, m->backend->vt->name, hp_backend_error(m->backend));
    return st;
}

hp_status hp_model_run_all(hp_model *m, const float *const *inputs, float *const *outputs)
{
    pthread_mutex_lock(&m->run_mu);
    hp_status st = run_all_locked(m, inputs, outputs);
    pthread_mutex_unlock(&m->run_mu);
    return st;
}

int64_t hp_model_output_size(const hp_model *m, int i)
{
    const hp_graph *g = m->inst ? m->inst : m->base;
    if (i < 0 || i >= g->n_outputs)
        return 0;
    const hp_value *v = &g->values[g->outputs[i]];
    if (!m->inst) {
        /* Not instantiated: numel of the declared dims after the batch (unknown dims count 0). */
        int64_t n = 1;
        for (int d = 1; d < v->ndim; d++)
            n *= v->dims[d] > 0 ? v->dims[d] : 0;
        return n;
    }
    /* Per batch item of the instance: the output's first dim need not be the batch (Flatten
     * with axis > 1 makes it batch x something), so divide by the batch, not by dims[0]. */
    return hp_value_numel(v) / (m->inst_batch > 0 ? m->inst_batch : 1);
}

/* Instantiates for n items and checks that the single-input API fits the instance: one runtime
 * input whose first dim is the batch n, and a first output of n equal items, so the caller's
 * buffers (n items in, n * hp_model_output_size out) hold exactly what the backend reads and
 * writes. */
static hp_status single_io(hp_model *m, int n)
{
    if (n < 1)
        return hp_error_set(&m->err, HP_ERR_INVALID, "%s: %d items (at least 1)", m->path, n);
    hp_status st = instantiate_locked(m, n);
    if (st)
        return st;
    const hp_graph *g = m->inst;
    if (g->n_inputs != 1)
        return hp_error_set(&m->err, HP_ERR_INVALID,
                            "%s: the model has %d inputs; use hp_model_run_all", m->path, g->n_inputs);
    const hp_value *in = &g->values[g->inputs[0]];
    if (in->ndim < 1 || in->dims[0] != n)
        return hp_error_set(&m->err, HP_ERR_INVALID,
                            "%s: input '%s' has a fixed first dimension of %lld, not a batch of %d "
                            "items; use hp_model_run_all",
                            m->path, in->name, (long long)(in->ndim ? in->dims[0] : 1), n);
    const hp_value *out = &g->values[g->outputs[0]];
    if (hp_value_numel(out) % n != 0)
        return hp_error_set(&m->err, HP_ERR_INVALID,
                            "%s: output '%s' (%lld values) does not split into %d items; use "
                            "hp_model_run_all",
                            m->path, out->name, (long long)hp_value_numel(out), n);
    return HP_OK;
}

/* The input of hp_model_run_rgb8: tiles of interleaved 8-bit RGB and the card's normalization. */
typedef struct {
    const uint8_t *rgb;
    float scale[3], bias[3];
} rgb8_input;

/* Runs the instance with output 0 into `output`, output i > 0 into extra[i - 1] when the caller
 * gave one and into scratch otherwise (callers of the single-output API read the first only):
 * from `rgb` through the backend's own normalization when given, else from the float `input`. */
static hp_status run_first_output(hp_model *m, const float *input, const rgb8_input *rgb,
                                  float *output, float *const *extra, int n_extra)
{
    int no = m->inst->n_outputs;
    float **outs = calloc((size_t)no, sizeof *outs);
    char *mine = calloc((size_t)no, 1);
    if (!outs || !mine) {
        free(outs);
        free(mine);
        return hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
    }
    hp_status st = HP_OK;
    outs[0] = output;
    for (int i = 1; i < no && !st; i++) {
        if (i - 1 < n_extra && extra[i - 1]) {
            outs[i] = extra[i - 1];
            continue;
        }
        mine[i] = 1;
        outs[i] = malloc(sizeof(float) * (size_t)hp_value_numel(&m->inst->values[m->inst->outputs[i]]));
        if (!outs[i])
            st = hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
    }
    if (!st && !rgb) {
        const float *in[1] = {input};
        st = run_all_locked(m, in, (float *const *)outs);
    } else if (!st) {
        hp_error_clear(&m->backend->err);
        st = m->backend->vt->run_rgb8(m->backend, rgb->rgb, rgb->scale, rgb->bias, outs);
        if (st)
            hp_error_set(&m->err, st, "%s: %s backend: %s", m->path, m->backend->vt->name,
                         hp_backend_error(m->backend));
    }
    for (int i = 1; i < no; i++)
        if (mine[i])
            free(outs[i]);
    free(outs);
    free(mine);
    return st;
}

/* Callers hold m->run_mu: one model instance serves every thread of a process (serve's
 * workers share it), and a run, a new output or an instance rebuild must not interleave. */
static hp_status run_float_locked(hp_model *m, const float *input, int n, float *output,
                                  float *const *extra, int n_extra)
{
    hp_status st = single_io(m, n);
    if (st)
        return st;
    return run_first_output(m, input, NULL, output, extra, n_extra);
}

hp_status hp_model_run(hp_model *m, const float *input, int n, float *output)
{
    pthread_mutex_lock(&m->run_mu);
    hp_status st = run_float_locked(m, input, n, output, NULL, 0);
    pthread_mutex_unlock(&m->run_mu);
    return st;
}

static hp_status add_output_locked(hp_model *m, const char *name, int *index)
{
    int v = name ? hp_graph_find_value(m->base, name) : -1;
    if (v < 0 || m->base->values[v].kind != HP_VAL_RUNTIME)
        return hp_error_set(&m->err, HP_ERR_INVALID,
                            "%s: no value named '%s' computed by the graph to add as an output",
                            m->path, name ? name : "(null)");
    for (int i = 0; i < m->base->n_outputs; i++)
        if (m->base->outputs[i] == v) {
            *index = i;
            return HP_OK;
        }
    int *no = realloc(m->base->outputs, sizeof *no * (size_t)(m->base->n_outputs + 1));
    if (!no)
        return hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
    m->base->outputs = no;
    m->base->outputs[m->base->n_outputs] = v;
    *index = m->base->n_outputs++;
    m->base->values[v].is_output = 1;
    hp_graph_recount(m->base);
    /* The instance was planned without it: an output must outlive the run, not share a buffer. */
    drop_instance(m);
    return HP_OK;
}

hp_status hp_model_add_output(hp_model *m, const char *name, int *index)
{
    pthread_mutex_lock(&m->run_mu);
    hp_status st = add_output_locked(m, name, index);
    pthread_mutex_unlock(&m->run_mu);
    return st;
}

static hp_status run_rgb8_locked(hp_model *m, const uint8_t *rgb, int n, float *output,
                                 float *const *extra, int n_extra)
{
    if (!m->has_card || !m->card.has_norm)
        return hp_error_set(&m->err, HP_ERR_INVALID,
                            "%s: no normalization known (give a model card or --mean and --std)", m->path);
    int c, h, w;
    hp_model_input_shape(m, &c, &h, &w);
    if (c != 3 || h <= 0 || w <= 0)
        return hp_error_set(&m->err, HP_ERR_UNSUPPORTED, "%s: input is not a 3-channel image (C=%d)", m->path, c);
    rgb8_input in = {.rgb = rgb};
    for (int k = 0; k < 3; k++) {
        in.scale[k] = 1.0f / (255.0f * m->card.std[k]);
        in.bias[k] = -m->card.mean[k] / m->card.std[k];
    }
    if (m->backend->vt->run_rgb8) {
        hp_status st = single_io(m, n);
        return st ? st : run_first_output(m, NULL, &in, output, extra, n_extra);
    }
    size_t plane = (size_t)h * (size_t)w, need = (size_t)n * 3 * plane;
    if (need > m->norm_cap) {
        float *nb = realloc(m->norm_buf, need * sizeof(float));
        if (!nb)
            return hp_error_set(&m->err, HP_ERR_NOMEM, "out of memory");
        m->norm_buf = nb;
        m->norm_cap = need;
    }
    for (int b = 0; b < n; b++) {
        const uint8_t *src = rgb + (size_t)b * 3 * plane;
        float *dst = m->norm_buf + (size_t)b * 3 * plane;
        for (size_t p = 0; p < plane; p++)
            for (int k = 0; k < 3; k++)
                dst[k * plane + p] = src[3 * p + (size_t)k] * in.scale[k] + in.bias[k];
    }
    return run_float_locked(m, m->norm_buf, n, output, extra, n_extra);
}

hp_status hp_model_run_rgb8(hp_model *m, const uint8_t *rgb, int n, float *output)
{
    return hp_model_run_rgb8_outputs(m, rgb, n, output, NULL, 0);
}

hp_status hp_model_run_rgb8_outputs(hp_model *m, const uint8_t *rgb, int n, float *output,
                                    float *const *extra, int n_extra)
{
    pthread_mutex_lock(&m->run_mu);
    hp_status st = run_rgb8_locked(m, rgb, n, output, extra, n_extra);
    pthread_mutex_unlock(&m->run_mu);
    return st;
}

/* Multiply-adds of one node, times two. */
static int64_t node_flops(const hp_graph *g, const hp_node *n)
{
    const hp_value *o = &g->values[n->out[0]];
    int64_t out = hp_value_numel(o);
    switch (n->op) {
    case HP_OP_CONV: {
        const hp_value *w = &g->values[n->in[1]];
        return 2 * out * (w->dims[1] * w->dims[2] * w->dims[3]);
    }
    case HP_OP_GEMM: {
        const hp_value *a = &g->values[n->in[0]];
        int64_t k = n->attr.gemm.trans_a ? a->dims[0] : a->dims[1];
        return 2 * out * k;
    }
    case HP_OP_MATMUL: {
        const hp_value *a = &g->values[n->in[0]];
        return 2 * out * a->dims[a->ndim - 1];
    }
    case HP_OP_ALIAS: return 0;
    default: return out;
    }
}

hp_status hp_model_stats_for_batch(hp_model *m, int n, hp_model_stats *st)
{
    memset(st, 0, sizeof *st);
    for (int v = 0; v < m->base->n_values; v++) {
        const hp_value *val = &m->base->values[v];
        if (val->kind == HP_VAL_CONST && val->dtype == HP_DT_FLOAT && val->n_consumers > 0)
            st->params += hp_value_numel(val);
    }
    for (int k = 0; k < m->base->n_nodes; k++)
        st->n_nodes_loaded += !m->base->nodes[k].dead;
    hp_status s = hp_model_instantiate(m, n);
    if (s)
        return s;
    int64_t flops = 0;
    for (int k = 0; k < m->inst->n_nodes; k++) {
        if (m->inst->nodes[k].dead)
            continue;
        st->n_nodes_planned++;
        flops += node_flops(m->inst, &m->inst->nodes[k]);
    }
    st->flops_per_item = flops / n;
    st->arena_bytes = m->plan.arena_elems * (int64_t)sizeof(float);
    st->naive_bytes = m->plan.naive_elems * (int64_t)sizeof(float);
    return HP_OK;
}
