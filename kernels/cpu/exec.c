/* The CPU backend: prepare (validate the plan, allocate the arena and per-thread scratch, choose
 * fusions), run (inputs in, nodes in order, outputs out) and the dispatch from op to kernel.
 *
 * prepare checks everything a kernel relies on that the graph and plan could get wrong (constant
 * types, storage inside the arena, strided views only where an op accepts them), so a bad model
 * fails with a message instead of reading out of bounds. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

typedef struct {
    hp_backend base; /* first: the vtable casts hp_backend* to this */
    int nthreads;
    int reference;
    hp_pool *pool;
    const hp_graph *g;
    const hp_plan *plan;
    float *arena;
    hp_cpu_tensor *t; /* one view per graph value */
    float *scratch_mem;
    float **scratch;
    int64_t scratch_elems;
    const hp_cpu_tensor **inptr; /* kernel input pointers, sized for the widest node */
    unsigned char *skip;         /* concat: inputs already in their slice */
    int *pre;                    /* per node: a ScaleShift folded into this Conv, or -1 */
    unsigned char *folded;       /* per node: this ScaleShift runs inside its consumer */
    void **node_data;            /* per node: what the op's fast-path prepare made (repacked weights) */
    int n_node_data;             /* its length (the old graph may be gone when we free it) */
    int prepared;
} cpu_backend;

hp_status hp_cpu_fail(hp_cpu_ctx *c, const hp_node *n, hp_status code, const char *fmt, ...)
{
    char buf[HP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n)
        return hp_error_set(c->err, code, "%s '%s': %s", n->op_type ? n->op_type : hp_op_name(n->op),
                            n->name ? n->name : "?", buf);
    return hp_error_set(c->err, code, "%s", buf);
}

static void release(cpu_backend *b)
{
    free(b->arena);
    free(b->t);
    free(b->scratch_mem);
    free(b->scratch);
    free(b->inptr);
    free(b->skip);
    free(b->pre);
    free(b->folded);
    for (int k = 0; b->node_data && k < b->n_node_data; k++)
        free(b->node_data[k]);
    free(b->node_data);
    b->node_data = NULL;
    b->n_node_data = 0;
    b->arena = NULL;
    b->t = NULL;
    b->scratch_mem = NULL;
    b->scratch = NULL;
    b->inptr = NULL;
    b->skip = NULL;
    b->pre = NULL;
    b->folded = NULL;
    b->scratch_elems = 0;
    b->prepared = 0;
}

static void *alloc_aligned(size_t bytes)
{
    void *p = NULL;
    size_t sz = (bytes + 63) & ~(size_t)63;
    if (sz == 0)
        sz = 64;
    if (posix_memalign(&p, 64, sz) != 0)
        return NULL;
    return p;
}

/* Elements a view spans from its first element (0 when empty). */
static int64_t extent(const hp_cpu_tensor *t)
{
    int64_t n = hp_cpu_numel(t);
    if (n == 0)
        return 0;
    if (t->ndim == 0)
        return 1;
    return (t->dims[0] - 1) * t->bstride + hp_cpu_item(t);
}

static int is_contiguous(const hp_cpu_tensor *t)
{
    return t->ndim == 0 || t->dims[0] <= 1 || t->bstride == hp_cpu_item(t);
}

/* Whether the arena ranges of two runtime values may overlap. */
static int overlaps(const cpu_backend *b, int v1, int v2)
{
    const hp_cpu_tensor *a = &b->t[v1], *c = &b->t[v2];
    if (b->g->values[v1].kind == HP_VAL_CONST || b->g->values[v2].kind == HP_VAL_CONST)
        return 0;
    int64_t a0 = a->p - b->arena, a1 = a0 + extent(a);
    int64_t c0 = c->p - b->arena, c1 = c0 + extent(c);
    return a0 < c1 && c0 < a1;
}

static hp_status check_value(cpu_backend *b, int v)
{
    const hp_graph *g = b->g;
    const hp_value *val = &g->values[v];
    hp_cpu_tensor *t = &b->t[v];
    if (val->ndim < 0 || val->ndim > HP_MAX_DIMS)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "value '%s' has %d dims", val->name, val->ndim);
    int64_t numel = 1;
    for (int i = 0; i < val->ndim; i++) {
        if (val->dims[i] < 0)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "value '%s' has an unresolved or negative dim %d", val->name, i);
        /* Bound the element count so no index computation below can overflow int64. */
        if (val->dims[i] > 0 && numel > ((int64_t)1 << 48) / val->dims[i])
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "value '%s' has too many elements", val->name);
        numel *= val->dims[i];
    }
    if (val->kind == HP_VAL_CONST) {
        if (val->dtype != HP_DT_FLOAT)
            return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                                "constant '%s' has element type %d; the CPU backend computes with "
                                "float32 constants only (a pass should have folded it)",
                                val->name, (int)val->dtype);
        if (!val->data && hp_value_numel(val) > 0)
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "constant '%s' has no data", val->name);
        return HP_OK;
    }
    if (val->dtype != HP_DT_FLOAT)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "value '%s' has element type %d; runtime tensors must be float32",
                            val->name, (int)val->dtype);
    const hp_place *pl = &b->plan->place[v];
    if (pl->offset < 0 || t->bstride < hp_cpu_item(t) ||
        pl->offset + extent(t) > b->plan->arena_elems)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "memory plan places value '%s' outside the arena (offset %lld, batch "
                            "stride %lld, arena %lld elements)",
                            val->name, (long long)pl->offset, (long long)pl->batch_stride,
                            (long long)b->plan->arena_elems);
    return HP_OK;
}

/* Per-node fast-path decisions: a ScaleShift feeding only a 1x1 stride-1 Conv right after it is
 * folded into that Conv's input packing, saving one write and one read of the whole tensor (the
 * pre-activation BN+ReLU of every DenseNet layer). */
static void choose_fusions(cpu_backend *b, const int *consumers)
{
    const hp_graph *g = b->g;
    for (int k = 0; k < g->n_nodes; k++) {
        b->pre[k] = -1;
        b->folded[k] = 0;
    }
    if (b->reference)
        return;
    for (int s = 0; s < g->n_nodes; s++) {
        const hp_node *ns = &g->nodes[s];
        if (ns->dead || ns->op != HP_OP_SCALE_SHIFT || ns->n_in < 3 || ns->n_out < 1)
            continue;
        int k = s + 1;
        while (k < g->n_nodes && g->nodes[k].dead)
            k++;
        if (k >= g->n_nodes)
            continue;
        const hp_node *nc = &g->nodes[k];
        int v = ns->out[0];
        if (nc->op != HP_OP_CONV || nc->n_in < 2 || nc->in[0] != v || nc->in[1] < 0 || nc->n_out < 1 ||
            v < 0 || !hp_cpu_act_valid(&ns->attr.act))
            continue;
        const hp_value *val = &g->values[v];
        if (val->kind != HP_VAL_RUNTIME || val->is_output || consumers[v] != 1)
            continue;
        const hp_conv_attr *a = &nc->attr.conv;
        int x = ns->in[0], y = nc->out[0];
        if (x < 0 || ns->in[1] < 0 || ns->in[2] < 0 || y < 0)
            continue;
        if (g->values[x].ndim != 4 || val->ndim != 4 || !hp_cpu_same_dims(&b->t[x], &b->t[v]))
            continue;
        const hp_value *w = &g->values[nc->in[1]];
        if (w->ndim != 4 || w->dims[2] != 1 || w->dims[3] != 1 || a->stride[0] != 1 ||
            a->stride[1] != 1 || a->pad[0] || a->pad[1] || a->pad[2] || a->pad[3] ||
            g->values[y].ndim != 4 || g->values[y].dims[2] != val->dims[2] ||
            g->values[y].dims[3] != val->dims[3])
            continue;
        /* The Conv reads x, scale and shift while writing y: they must not share memory. */
        if (overlaps(b, x, y) || overlaps(b, ns->in[1], y) || overlaps(b, ns->in[2], y))
            continue;
        int64_t C = val->dims[1];
        if (hp_value_numel(&g->values[ns->in[1]]) != C || hp_value_numel(&g->values[ns->in[2]]) != C)
            continue;
        b->pre[k] = s;
        b->folded[s] = 1;
    }
}

static hp_status cpu_prepare(hp_backend *base, const hp_graph *g, const hp_plan *plan)
{
    cpu_backend *b = (cpu_backend *)base;
    hp_status st = HP_OK;
    int *consumers = NULL;
    release(b);
    b->g = g;
    b->plan = plan;
    if (!g || !plan || !plan->place || plan->n_values != g->n_values || plan->arena_elems < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cpu backend: the memory plan does not match the graph");
    size_t nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    size_t nn = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1);
    int max_in = 1;
    for (int k = 0; k < g->n_nodes; k++)
        if (g->nodes[k].n_in > max_in)
            max_in = g->nodes[k].n_in;
    b->arena = alloc_aligned((size_t)plan->arena_elems * sizeof(float));
    b->t = calloc(nv, sizeof *b->t);
    b->inptr = calloc((size_t)max_in, sizeof *b->inptr);
    b->skip = calloc((size_t)max_in, 1);
    b->pre = calloc(nn, sizeof *b->pre);
    b->folded = calloc(nn, 1);
    b->node_data = calloc(nn, sizeof *b->node_data);
    b->n_node_data = b->node_data ? g->n_nodes : 0;
    consumers = calloc(nv, sizeof *consumers);
    if (!b->arena || !b->t || !b->inptr || !b->skip || !b->pre || !b->folded || !b->node_data ||
        !consumers) {
        st = hp_error_set(&b->base.err, HP_ERR_NOMEM,
                          "cpu backend: out of memory allocating a %lld-element arena",
                          (long long)plan->arena_elems);
        goto fail;
    }
    /* Zeroed once so that a value nothing writes (an empty graph input) reads as zeros. */
    memset(b->arena, 0, (size_t)plan->arena_elems * sizeof(float));

    for (int v = 0; v < g->n_values; v++) {
        const hp_value *val = &g->values[v];
        hp_cpu_tensor *t = &b->t[v];
        t->name = val->name;
        t->ndim = val->ndim < 0 ? 0 : (val->ndim > HP_MAX_DIMS ? HP_MAX_DIMS : val->ndim);
        for (int i = 0; i < t->ndim; i++)
            t->dims[i] = val->dims[i];
        int64_t item = hp_cpu_item(t);
        if (val->kind == HP_VAL_CONST) {
            t->p = val->data;
            t->bstride = item;
        } else {
            t->p = b->arena + (plan->place[v].offset > 0 ? plan->place[v].offset : 0);
            t->bstride = (t->ndim >= 1 && plan->place[v].batch_stride > 0) ? plan->place[v].batch_stride
                                                                            : item;
        }
    }

    for (int i = 0; i < g->n_inputs; i++)
        if ((st = check_value(b, g->inputs[i])) != HP_OK)
            goto fail;
    for (int i = 0; i < g->n_outputs; i++) {
        if ((st = check_value(b, g->outputs[i])) != HP_OK)
            goto fail;
        consumers[g->outputs[i]]++;
    }
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        if ((int)n->op < 0 || n->op >= HP_OP_COUNT) {
            st = hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED, "node '%s' (%s): unknown op %d",
                              n->name, n->op_type, (int)n->op);
            goto fail;
        }
        if (n->n_out < 1 || n->out[0] < 0) {
            st = hp_error_set(&b->base.err, HP_ERR_INVALID, "node '%s' (%s) has no output",
                              n->name, n->op_type);
            goto fail;
        }
        int strided_ok = hp_op_accepts_strided(n->op);
        for (int i = 0; i < n->n_in + n->n_out; i++) {
            int v = i < n->n_in ? n->in[i] : n->out[i - n->n_in];
            if (v < -1 || v >= g->n_values) {
                st = hp_error_set(&b->base.err, HP_ERR_INVALID, "node '%s' (%s) names value %d",
                                  n->name, n->op_type, v);
                goto fail;
            }
            if (v < 0)
                continue;
            if (i >= n->n_in + 1) {
                /* Extra outputs (MaxPool indices, BatchNorm running stats) are not computed. */
                continue;
            }
            if (i < n->n_in)
                consumers[v]++;
            if ((st = check_value(b, v)) != HP_OK)
                goto fail;
            if (!strided_ok && g->values[v].kind != HP_VAL_CONST && !is_contiguous(&b->t[v])) {
                st = hp_error_set(&b->base.err, HP_ERR_INVALID,
                                  "memory plan gives value '%s' a strided view, but its %s node "
                                  "'%s' needs it contiguous",
                                  g->values[v].name, hp_op_name(n->op), n->name);
                goto fail;
            }
        }
    }
    /* Extra outputs must not be read by anyone, since they are never computed. */
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        for (int i = 1; i < n->n_out; i++) {
            int v = n->out[i];
            if (v >= 0 && v < g->n_values && consumers[v] > 0) {
                st = hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                                  "node '%s' (%s): output %d ('%s') is used, but the CPU backend "
                                  "computes only the first output",
                                  n->name, n->op_type, i, g->values[v].name);
                goto fail;
            }
        }
    }

    choose_fusions(b, consumers);

    int64_t need = 0;
    if (!b->reference) {
        for (int k = 0; k < g->n_nodes; k++) {
            const hp_node *n = &g->nodes[k];
            if (n->dead || n->op != HP_OP_CONV)
                continue;
            int64_t s = 0;
            if (hp_cpu_conv2d_prepare(g, n, b->pre[k] >= 0, &b->node_data[k], &s) != HP_OK) {
                st = hp_error_set(&b->base.err, HP_ERR_NOMEM, "cpu backend: out of memory repacking the "
                                  "weights of Conv '%s'", n->name);
                goto fail;
            }
            if (s > need)
                need = s;
        }
    }
    if (need > 0) {
        int nt = hp_pool_size(b->pool);
        int64_t per = (need + 15) & ~(int64_t)15; /* 64-byte aligned per thread */
        b->scratch_mem = alloc_aligned((size_t)per * (size_t)nt * sizeof(float));
        b->scratch = calloc((size_t)nt, sizeof *b->scratch);
        if (!b->scratch_mem || !b->scratch) {
            st = hp_error_set(&b->base.err, HP_ERR_NOMEM,
                              "cpu backend: out of memory allocating %d x %lld scratch elements",
                              nt, (long long)per);
            goto fail;
        }
        for (int i = 0; i < nt; i++)
            b->scratch[i] = b->scratch_mem + (size_t)i * (size_t)per;
        b->scratch_elems = per;
    }
    free(consumers);
    b->prepared = 1;
    return HP_OK;
fail:
    free(consumers);
    release(b);
    return st;
}

/* Copies between a contiguous host array and a (possibly strided) view. */
static void copy_in(const hp_cpu_tensor *t, const float *src)
{
    int64_t item = hp_cpu_item(t), nb = hp_cpu_batch(t);
    if (hp_cpu_numel(t) == 0)
        return;
    for (int64_t i = 0; i < nb; i++)
        memmove(t->p + i * t->bstride, src + i * item, (size_t)item * sizeof(float));
}

static void copy_out(const hp_cpu_tensor *t, float *dst)
{
    int64_t item = hp_cpu_item(t), nb = hp_cpu_batch(t);
    if (hp_cpu_numel(t) == 0)
        return;
    for (int64_t i = 0; i < nb; i++)
        memmove(dst + i * item, t->p + i * t->bstride, (size_t)item * sizeof(float));
}

static hp_status run_node(cpu_backend *b, hp_cpu_ctx *c, int k)
{
    const hp_graph *g = b->g;
    const hp_node *n = &g->nodes[k];
    for (int i = 0; i < n->n_in; i++)
        b->inptr[i] = n->in[i] >= 0 ? &b->t[n->in[i]] : NULL;
    const hp_cpu_tensor *const *in = b->inptr;
    const hp_cpu_tensor *out = &b->t[n->out[0]];
    c->node_data = b->node_data[k];
    switch (n->op) {
    case HP_OP_CONV:
        if (b->pre[k] >= 0) {
            const hp_node *s = &g->nodes[b->pre[k]];
            hp_cpu_conv_pre pre = {
                .x = &b->t[s->in[0]],
                .scale = b->t[s->in[1]].p,
                .shift = b->t[s->in[2]].p,
                .act = s->attr.act,
            };
            return hp_cpu_conv2d_fused(c, n, in, out, &pre);
        }
        return hp_cpu_conv2d(c, n, in, out);
    case HP_OP_BATCHNORM:
        return hp_cpu_batchnorm(c, n, in, out);
    case HP_OP_SCALE_SHIFT:
        return hp_cpu_scale_shift(c, n, in, out);
    case HP_OP_UNARY:
        return hp_cpu_unary(c, n, in, out);
    case HP_OP_PRELU:
        return hp_cpu_prelu(c, n, in, out);
    case HP_OP_BINARY:
        return hp_cpu_binary(c, n, in, out);
    case HP_OP_MAXPOOL:
    case HP_OP_AVGPOOL:
        return hp_cpu_pool(c, n, in, out);
    case HP_OP_GLOBAL_AVGPOOL:
    case HP_OP_GLOBAL_MAXPOOL:
        return hp_cpu_global_pool(c, n, in, out);
    case HP_OP_CONCAT:
        for (int i = 0; i < n->n_in; i++)
            b->skip[i] = n->in[i] >= 0 && g->values[n->in[i]].kind != HP_VAL_CONST &&
                         hp_plan_concat_input_in_place(g, b->plan, n, i);
        return hp_cpu_concat(c, n, in, out, b->skip);
    case HP_OP_TRANSPOSE:
        return hp_cpu_transpose(c, n, in, out);
    case HP_OP_GEMM:
        return hp_cpu_gemm(c, n, in, out);
    case HP_OP_MATMUL:
        return hp_cpu_matmul(c, n, in, out);
    case HP_OP_SOFTMAX:
        return hp_cpu_softmax(c, n, in, out);
    case HP_OP_DEPTH_TO_SPACE:
        return hp_cpu_depth_to_space(c, n, in, out);
    case HP_OP_RESIZE:
        return hp_cpu_resize(c, n, in, out);
    case HP_OP_PAD:
        return hp_cpu_pad(c, n, in, out);
    case HP_OP_ALIAS: {
        /* Normally the planner gives the output the input's storage; when it did not (an alias
         * of a constant, say) copy, so the result is right either way. */
        if (n->n_in < 1 || !in[0])
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
        int64_t cnt = hp_cpu_numel(out);
        if (hp_cpu_numel(in[0]) != cnt)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "input has %lld elements, output %lld",
                               (long long)hp_cpu_numel(in[0]), (long long)cnt);
        if (in[0]->p != out->p && cnt > 0) {
            if (!is_contiguous(in[0]))
                return hp_cpu_fail(c, n, HP_ERR_INVALID, "input '%s' is strided", in[0]->name);
            memmove(out->p, in[0]->p, (size_t)cnt * sizeof(float));
        }
        return HP_OK;
    }
    case HP_OP_COUNT:
        break;
    }
    return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "op not supported by the CPU backend");
}

static hp_status cpu_run(hp_backend *base, const float *const *inputs, float *const *outputs)
{
    cpu_backend *b = (cpu_backend *)base;
    if (!b->prepared)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cpu backend: run before a successful prepare");
    const hp_graph *g = b->g;
    hp_cpu_ctx c = {
        .pool = b->pool,
        .nthreads = hp_pool_size(b->pool),
        .reference = b->reference,
        .scratch = b->scratch,
        .scratch_elems = b->scratch_elems,
        .err = &b->base.err,
    };
    for (int i = 0; i < g->n_inputs; i++) {
        const hp_cpu_tensor *t = &b->t[g->inputs[i]];
        /* An input bound to a constant keeps its data; never write into the graph's constants. */
        if (hp_cpu_numel(t) == 0 || g->values[g->inputs[i]].kind == HP_VAL_CONST)
            continue;
        if (!inputs || !inputs[i])
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "cpu backend: graph input %d ('%s') not given",
                                i, t->name);
        copy_in(t, inputs[i]);
    }
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead || b->folded[k])
            continue;
        hp_status st = run_node(b, &c, k);
        if (st != HP_OK)
            return st;
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const hp_cpu_tensor *t = &b->t[g->outputs[i]];
        if (hp_cpu_numel(t) == 0)
            continue;
        if (!outputs || !outputs[i])
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "cpu backend: no buffer for graph output %d ('%s')",
                                i, t->name);
        copy_out(t, outputs[i]);
    }
    return HP_OK;
}

static void cpu_destroy(hp_backend *base)
{
    cpu_backend *b = (cpu_backend *)base;
    release(b);
    hp_pool_destroy(b->pool);
    free(b);
}

static const hp_backend_vtbl cpu_vt = {
    .name = "cpu", .prepare = cpu_prepare, .run = cpu_run, .destroy = cpu_destroy};
static const hp_backend_vtbl cpu_ref_vt = {
    .name = "cpu-reference", .prepare = cpu_prepare, .run = cpu_run, .destroy = cpu_destroy};

hp_backend *hp_cpu_backend_create(int threads, int reference)
{
    cpu_backend *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->base.vt = reference ? &cpu_ref_vt : &cpu_vt;
    b->base.precision = HP_PREC_FP32;
    b->reference = reference != 0;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    if (threads > 256)
        threads = 256;
    /* The reference path is single-threaded on purpose: it is the plain ground truth. */
    b->nthreads = b->reference ? 1 : threads;
    /* We parallelize above BLAS (one GEMM per work unit), so BLAS itself must not spawn threads. */
    openblas_set_num_threads(1);
    b->pool = hp_pool_create(b->nthreads);
    if (!b->pool) {
        free(b);
        return NULL;
    }
    return &b->base;
}
