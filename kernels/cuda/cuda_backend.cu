/* The CUDA backend: device selection, handles, prepare (constants, arena, conv algorithms,
 * staging buffers), run (inputs in, nodes, outputs out) and destroy. The ops live in their own
 * files; this one only dispatches. */
#include "kernels/cuda/cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/parallel_copy.h"
}

/* ---- error recording ------------------------------------------------------------------ */

static const char *node_label(const hp_cuda_backend *b, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (b->g && b->cur_node >= 0 && b->cur_node < b->g->n_nodes) {
        const hp_node *n = &b->g->nodes[b->cur_node];
        snprintf(buf, cap, " (node '%s', %s)", n->name ? n->name : "?",
                 n->op_type ? n->op_type : hp_op_name(n->op));
    }
    return buf;
}

extern "C" hp_status hp_cu_fail_cuda(hp_cuda_backend *b, const char *file, int line,
                                     const char *call, int e)
{
    char nb[300];
    return hp_error_set(&b->base.err, HP_ERR_DEVICE, "%s:%d: %s: %s (%s)%s", file, line, call,
                        cudaGetErrorString((cudaError_t)e), cudaGetErrorName((cudaError_t)e),
                        node_label(b, nb, sizeof nb));
}

extern "C" hp_status hp_cu_fail_cudnn(hp_cuda_backend *b, const char *file, int line,
                                      const char *call, int e)
{
    char nb[300];
    return hp_error_set(&b->base.err, HP_ERR_DEVICE, "%s:%d: %s: %s%s", file, line, call,
                        cudnnGetErrorString((cudnnStatus_t)e), node_label(b, nb, sizeof nb));
}

extern "C" hp_status hp_cu_fail_cublas(hp_cuda_backend *b, const char *file, int line,
                                       const char *call, int e)
{
    char nb[300];
    return hp_error_set(&b->base.err, HP_ERR_DEVICE, "%s:%d: %s: %s (%s)%s", file, line, call,
                        cublasGetStatusString((cublasStatus_t)e),
                        cublasGetStatusName((cublasStatus_t)e), node_label(b, nb, sizeof nb));
}

/* Checks a call on a release path: records the failure and carries on freeing the rest. */
#define SOFT(b, call)                                                                        \
    do {                                                                                     \
        cudaError_t hp_e_ = (call);                                                          \
        if (hp_e_ != cudaSuccess)                                                            \
            (void)hp_cu_fail_cuda((b), __FILE__, __LINE__, #call, (int)hp_e_);               \
    } while (0)

/* ---- small shared helpers --------------------------------------------------------------- */

extern "C" unsigned hp_cu_blocks(int64_t n)
{
    int64_t blocks = (n + HP_CU_THREADS - 1) / HP_CU_THREADS;
    if (blocks < 1)
        blocks = 1;
    if (blocks > (1 << 20))
        blocks = 1 << 20; /* grid-stride loops cover the rest */
    return (unsigned)blocks;
}

extern "C" cudnnDataType_t hp_cu_cudnn_type(const hp_cuda_backend *b)
{
    switch (b->base.precision) {
    case HP_PREC_FP16: return CUDNN_DATA_HALF;
    case HP_PREC_BF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
    }
}

extern "C" cudaDataType_t hp_cu_blas_type(const hp_cuda_backend *b)
{
    switch (b->base.precision) {
    case HP_PREC_FP16: return CUDA_R_16F;
    case HP_PREC_BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
    }
}

extern "C" void hp_cu_tensor_raw(hp_cu_tensor *t, void *p, int f32, int ndim, const int64_t *dims)
{
    memset(t, 0, sizeof *t);
    t->p = p;
    t->f32 = f32;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = dims[i];
        t->numel *= dims[i];
    }
    t->inner = (ndim > 0 && dims[0] > 0) ? t->numel / dims[0] : t->numel;
    t->bstride = t->inner;
}

extern "C" hp_status hp_cu_tensor_of(hp_cuda_backend *b, int v, int want_t, hp_cu_tensor *t)
{
    if (v < 0 || v >= b->g->n_values)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: value index %d out of range", v);
    const hp_value *val = &b->g->values[v];
    int fp32 = b->base.precision == HP_PREC_FP32;
    if (val->kind == HP_VAL_CONST) {
        void *p = want_t ? b->ct[v] : b->cf32[v];
        if (!p)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: constant '%s' was not uploaded at prepare", val->name);
        hp_cu_tensor_raw(t, p, want_t ? fp32 : 1, val->ndim, val->dims);
        return HP_OK;
    }
    const hp_place *pl = &b->plan->place[v];
    if (pl->root < 0 || pl->offset < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: value '%s' has no place in the memory plan", val->name);
    hp_cu_tensor_raw(t, b->arena + (size_t)pl->offset * b->esize, fp32, val->ndim, val->dims);
    if (val->ndim > 0 && pl->batch_stride > 0)
        t->bstride = pl->batch_stride;
    return HP_OK;
}

/* ---- release / destroy ------------------------------------------------------------------ */

static void release(hp_cuda_backend *b)
{
    /* the graph may already be freed (the caller keeps it alive only until this point):
     * walk our own arrays by their recorded lengths */
    for (int v = 0; v < b->n_cvals; v++) {
        if (b->ct && b->ct[v] && (!b->cf32 || b->ct[v] != b->cf32[v]))
            SOFT(b, cudaFree(b->ct[v]));
        if (b->cf32 && b->cf32[v])
            SOFT(b, cudaFree(b->cf32[v]));
    }
    for (int k = 0; k < b->n_states; k++)
        if (b->node_state && b->node_state[k])
            hp_cu_conv_release(b->node_state[k]);
    b->n_cvals = b->n_states = 0;
    free(b->ct);
    free(b->cf32);
    free(b->node_state);
    b->ct = b->cf32 = NULL;
    b->node_state = NULL;
    if (b->arena)
        SOFT(b, cudaFree(b->arena));
    if (b->scratch)
        SOFT(b, cudaFree(b->scratch));
    if (b->ws)
        SOFT(b, cudaFree(b->ws));
    if (b->stage_d)
        SOFT(b, cudaFree(b->stage_d));
    if (b->stage_h)
        SOFT(b, cudaFreeHost(b->stage_h));
    if (b->rgb_d)
        SOFT(b, cudaFree(b->rgb_d));
    b->rgb_d = NULL;
    b->rgb_bytes = 0;
    b->arena = NULL;
    b->scratch = b->ws = NULL;
    b->stage_d = b->stage_h = NULL;
    b->scratch_bytes = b->ws_bytes = b->stage_elems = 0;
    free(b->memo);
    b->memo = NULL;
    b->n_memo = b->cap_memo = 0;
    b->g = NULL;
    b->plan = NULL;
}

static void cuda_destroy(hp_backend *base)
{
    hp_cuda_backend *b = (hp_cuda_backend *)base;
    if (!b)
        return;
    b->cur_node = -1;
    if (cudaSetDevice(b->device) == cudaSuccess) {
        if (b->stream)
            SOFT(b, cudaStreamSynchronize(b->stream));
        release(b);
        hp_cu_profile_report(b);
        if (b->cublas)
            (void)cublasDestroy(b->cublas);
        if (b->cudnn)
            (void)cudnnDestroy(b->cudnn);
        if (b->stream)
            SOFT(b, cudaStreamDestroy(b->stream));
    }
    free(b);
}

/* ---- prepare ---------------------------------------------------------------------------- */

static int op_supported(hp_op op)
{
    switch (op) {
    case HP_OP_CONV: case HP_OP_BATCHNORM: case HP_OP_UNARY: case HP_OP_PRELU: case HP_OP_BINARY:
    case HP_OP_MAXPOOL: case HP_OP_AVGPOOL: case HP_OP_GLOBAL_AVGPOOL: case HP_OP_GLOBAL_MAXPOOL:
    case HP_OP_CONCAT: case HP_OP_TRANSPOSE: case HP_OP_GEMM: case HP_OP_MATMUL:
    case HP_OP_SOFTMAX: case HP_OP_DEPTH_TO_SPACE: case HP_OP_RESIZE: case HP_OP_PAD:
    case HP_OP_SCALE_SHIFT: case HP_OP_ALIAS:
        return 1;
    default:
        return 0;
    }
}

/* Uploads constant v as float, and in the arena element type where that differs. */
template <typename T>
__global__ void k_f32_to(const float *src, T *dst, int64_t n)
{
    HP_CU_LOOP(i, n) dst[i] = hp_from_f<T>(src[i]);
}

static hp_status upload_const(hp_cuda_backend *b, int v, const hp_node *user)
{
    const hp_value *val = &b->g->values[v];
    if (b->cf32[v])
        return HP_OK;
    if (val->dtype != HP_DT_FLOAT || !val->data)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: constant '%s' (input of node '%s') has element type %d%s; the "
                            "CUDA backend takes float32 constants",
                            val->name, user ? user->name : "-", (int)val->dtype,
                            val->data ? "" : " and no data");
    int64_t n = hp_value_numel(val);
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(float);
    HP_CU_CHECK(b, cudaMalloc(&b->cf32[v], bytes));
    if (n > 0)
        /* on our stream, so the conversion below is ordered after the copy (a plain
         * cudaMemcpy from pageable memory may return before its DMA lands) */
        HP_CU_CHECK(b, cudaMemcpyAsync(b->cf32[v], val->data, (size_t)n * sizeof(float),
                                       cudaMemcpyHostToDevice, b->stream));
    if (b->base.precision == HP_PREC_FP32) {
        b->ct[v] = b->cf32[v];
        return HP_OK;
    }
    HP_CU_CHECK(b, cudaMalloc(&b->ct[v], (size_t)(n > 0 ? n : 1) * b->esize));
    if (n > 0) {
        if (b->base.precision == HP_PREC_FP16)
            k_f32_to<__half><<<hp_cu_blocks(n), HP_CU_THREADS, 0, b->stream>>>(
                (const float *)b->cf32[v], (__half *)b->ct[v], n);
        else
            k_f32_to<__nv_bfloat16><<<hp_cu_blocks(n), HP_CU_THREADS, 0, b->stream>>>(
                (const float *)b->cf32[v], (__nv_bfloat16 *)b->ct[v], n);
        HP_CU_LAUNCHED(b);
    }
    return HP_OK;
}

/* Checks that a runtime value's place fits the arena and that only ops that accept strided
 * views see strided ones: a planner mistake must fail here, not corrupt memory later. */
static hp_status check_place(hp_cuda_backend *b, int v, const hp_node *n)
{
    const hp_value *val = &b->g->values[v];
    if (val->kind == HP_VAL_CONST)
        return HP_OK;
    hp_cu_tensor t;
    HP_CU_TRY(hp_cu_tensor_of(b, v, 0, &t));
    int64_t off = b->plan->place[v].offset;
    int64_t n0 = (t.ndim > 0) ? t.dims[0] : 1;
    if (t.bstride < t.inner)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: value '%s' has batch stride %lld below its item size %lld",
                            val->name, (long long)t.bstride, (long long)t.inner);
    int64_t end = t.numel == 0 ? off : off + (n0 - 1) * t.bstride + t.inner;
    if (off < 0 || end > b->plan->arena_elems)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: value '%s' [%lld, %lld) lies outside the arena (%lld elements)",
                            val->name, (long long)off, (long long)end,
                            (long long)b->plan->arena_elems);
    if (n && t.bstride != t.inner && !hp_op_accepts_strided(n->op))
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: node '%s' (%s) got strided value '%s' but cannot take one",
                            n->name, hp_op_name(n->op), val->name);
    if (t.bstride != t.inner && t.ndim != 4)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: strided value '%s' has rank %d; only 4-D values may be strided",
                            val->name, t.ndim);
    return HP_OK;
}

static hp_status prepare_impl(hp_cuda_backend *b, const hp_graph *g, const hp_plan *plan)
{
    HP_CU_CHECK(b, cudaSetDevice(b->device));
    b->cur_node = -1;
    if (b->stream)
        HP_CU_CHECK(b, cudaStreamSynchronize(b->stream));
    release(b);
    if (!g || !plan || !plan->place || plan->n_values != g->n_values)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: prepare needs a graph and its memory plan (plan has %d values, "
                            "graph %d)", plan ? plan->n_values : -1, g ? g->n_values : -1);
    b->g = g;
    b->plan = plan;
    b->cur_node = -1;
    size_t nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    size_t nn = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1);
    b->cf32 = (void **)calloc(nv, sizeof(void *));
    b->ct = (void **)calloc(nv, sizeof(void *));
    b->node_state = (void **)calloc(nn, sizeof(void *));
    if (!b->cf32 || !b->ct || !b->node_state)
        return hp_error_set(&b->base.err, HP_ERR_NOMEM, "cuda: out of host memory in prepare");
    b->n_cvals = g->n_values;
    b->n_states = g->n_nodes;

    /* ops, places, constants */
    for (int k = 0; k < g->n_nodes; k++) {
        const hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        if (!op_supported(n->op))
            return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                                "cuda: node '%s': op %s is not supported by the CUDA backend",
                                n->name, hp_op_name(n->op));
        for (int i = 0; i < n->n_in; i++) {
            int v = n->in[i];
            if (v < 0)
                continue;
            if (v >= g->n_values)
                return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                    "cuda: node '%s' input %d is out of range", n->name, i);
            if (g->values[v].kind == HP_VAL_CONST)
                HP_CU_TRY(upload_const(b, v, n));
            else
                HP_CU_TRY(check_place(b, v, n));
        }
        for (int i = 0; i < n->n_out; i++) {
            int v = n->out[i];
            if (v < 0 || v >= g->n_values || g->values[v].kind == HP_VAL_CONST)
                return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                    "cuda: node '%s' output %d is not a runtime value", n->name, i);
            HP_CU_TRY(check_place(b, v, n));
        }
    }
    int64_t in_total = 0, out_total = 0;
    for (int i = 0; i < g->n_inputs; i++)
        in_total += hp_value_numel(&g->values[g->inputs[i]]);
    for (int i = 0; i < g->n_outputs; i++) {
        int v = g->outputs[i];
        out_total += hp_value_numel(&g->values[v]);
        if (g->values[v].kind == HP_VAL_CONST)
            HP_CU_TRY(upload_const(b, v, NULL));
        else
            HP_CU_TRY(check_place(b, v, NULL));
    }

    /* arena (zeroed once so a stray read sees zeros, not stale memory) */
    int64_t ae = plan->arena_elems > 0 ? plan->arena_elems : 1;
    HP_CU_CHECK(b, cudaMalloc((void **)&b->arena, (size_t)ae * b->esize));
    HP_CU_CHECK(b, cudaMemsetAsync(b->arena, 0, (size_t)ae * b->esize, b->stream));

    /* staging */
    b->stage_elems = (size_t)(in_total > out_total ? in_total : out_total);
    if (b->stage_elems < 1)
        b->stage_elems = 1;
    HP_CU_CHECK(b, cudaMalloc((void **)&b->stage_d, b->stage_elems * sizeof(float)));
    HP_CU_CHECK(b, cudaHostAlloc((void **)&b->stage_h, b->stage_elems * sizeof(float),
                                 cudaHostAllocDefault));

    /* convolutions: descriptors, scratch, then algorithms within a bounded workspace */
    size_t scratch = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead || g->nodes[k].op != HP_OP_CONV)
            continue;
        size_t need = 0;
        b->cur_node = k;
        HP_CU_TRY(hp_cu_conv_prepare(b, k, &need));
        if (need > scratch)
            scratch = need;
    }
    b->cur_node = -1;
    if (scratch > 0) {
        HP_CU_CHECK(b, cudaMalloc(&b->scratch, scratch));
        b->scratch_bytes = scratch;
    }
    size_t free_b = 0, total_b = 0;
    HP_CU_CHECK(b, cudaMemGetInfo(&free_b, &total_b));
    size_t limit = free_b / 4;
    const char *env = getenv("HP_CUDA_WORKSPACE_MB");
    size_t cap = (size_t)1 << 30;
    if (env && *env)
        cap = (size_t)strtoull(env, NULL, 10) << 20;
    if (limit > cap)
        limit = cap;
    limit &= ~(size_t)255;
    if (limit > 0) {
        HP_CU_CHECK(b, cudaMalloc(&b->ws, limit));
        b->ws_bytes = limit;
    }
    size_t ws_max = 0;
    for (int k = 0; k < g->n_nodes; k++) {
        if (g->nodes[k].dead || g->nodes[k].op != HP_OP_CONV)
            continue;
        size_t need = 0;
        b->cur_node = k;
        HP_CU_TRY(hp_cu_conv_select(b, k, &need));
        if (need > ws_max)
            ws_max = need;
    }
    b->cur_node = -1;
    /* keep only the workspace the chosen algorithms use */
    if (b->ws && ws_max < b->ws_bytes) {
        HP_CU_CHECK(b, cudaStreamSynchronize(b->stream));
        HP_CU_CHECK(b, cudaFree(b->ws));
        b->ws = NULL;
        b->ws_bytes = 0;
        if (ws_max > 0) {
            HP_CU_CHECK(b, cudaMalloc(&b->ws, ws_max));
            b->ws_bytes = ws_max;
        }
    }
    HP_CU_CHECK(b, cudaStreamSynchronize(b->stream));
    return HP_OK;
}

static hp_status cuda_prepare(hp_backend *base, const hp_graph *g, const hp_plan *plan)
{
    hp_cuda_backend *b = (hp_cuda_backend *)base;
    hp_status s = prepare_impl(b, g, plan);
    if (s != HP_OK) {
        b->cur_node = -1;
        (void)cudaStreamSynchronize(b->stream); /* the failure is already recorded */
        release(b);
    }
    return s;
}

/* ---- run -------------------------------------------------------------------------------- */

static hp_status run_node(hp_cuda_backend *b, int k)
{
    const hp_node *n = &b->g->nodes[k];
    switch (n->op) {
    case HP_OP_CONV: return hp_cu_conv_run(b, n, b->node_state[k]);
    case HP_OP_BATCHNORM: return hp_cu_batchnorm_run(b, n);
    case HP_OP_SCALE_SHIFT: return hp_cu_scale_shift_run(b, n);
    case HP_OP_UNARY: return hp_cu_unary_run(b, n);
    case HP_OP_PRELU:
    case HP_OP_BINARY: return hp_cu_binary_run(b, n);
    case HP_OP_MAXPOOL:
    case HP_OP_AVGPOOL: return hp_cu_pool_run(b, n);
    case HP_OP_GLOBAL_AVGPOOL:
    case HP_OP_GLOBAL_MAXPOOL: return hp_cu_global_pool_run(b, n);
    case HP_OP_CONCAT: return hp_cu_concat_run(b, n);
    case HP_OP_TRANSPOSE: return hp_cu_transpose_run(b, n);
    case HP_OP_GEMM: return hp_cu_gemm_run(b, n);
    case HP_OP_MATMUL: return hp_cu_matmul_run(b, n);
    case HP_OP_SOFTMAX: return hp_cu_softmax_run(b, n);
    case HP_OP_DEPTH_TO_SPACE: return hp_cu_depth_to_space_run(b, n);
    case HP_OP_RESIZE: return hp_cu_resize_run(b, n);
    case HP_OP_PAD: return hp_cu_pad_run(b, n);
    case HP_OP_ALIAS: {
        if (n->n_in < 1 || n->n_out < 1)
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: alias node '%s' needs an "
                                "input and an output", n->name);
        hp_cu_tensor x, y;
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
        HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
        if (x.numel != y.numel)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: alias node '%s' changes the element count", n->name);
        if (x.p == y.p && x.f32 == y.f32)
            return HP_OK; /* the planner shared the storage: nothing to do */
        return hp_cu_copy(b, &x, &y);
    }
    default:
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED, "cuda: op %s is not supported",
                            hp_op_name(n->op));
    }
}

/* Whether the runtime knows `p` as page-locked host memory (the tile loader's batches for this
 * backend are): then it is copied to the device directly, without passing through staging. */
static int is_pinned(const void *p)
{
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return a.type == cudaMemoryTypeHost;
}

/* Stage 1 of a run from float inputs: each input to the device (through pinned staging in
 * chunks, each chunk's copy to the device overlapping the next chunk's host copy, which several
 * threads share, unless the caller's buffer is pinned already), then converted into the arena. */
static hp_status upload_inputs(hp_cuda_backend *b, const float *const *inputs)
{
    const hp_graph *g = b->g;
    const size_t chunk = (size_t)8 << 20; /* floats */
    size_t off = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        int64_t n = hp_value_numel(&g->values[g->inputs[i]]);
        if (n > 0 && !inputs[i])
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: input %d is NULL", i);
        if (n > 0 && is_pinned(inputs[i])) {
            HP_CU_CHECK(b, cudaMemcpyAsync(b->stage_d + off, inputs[i], (size_t)n * sizeof(float),
                                           cudaMemcpyHostToDevice, b->stream));
        } else {
            for (size_t c = 0; c < (size_t)n; c += chunk) {
                size_t len = (size_t)n - c < chunk ? (size_t)n - c : chunk;
                hp_parallel_memcpy(b->stage_h + off + c, inputs[i] + c, len * sizeof(float), 0);
                HP_CU_CHECK(b, cudaMemcpyAsync(b->stage_d + off + c, b->stage_h + off + c,
                                               len * sizeof(float), cudaMemcpyHostToDevice,
                                               b->stream));
            }
        }
        const hp_value *val = &g->values[g->inputs[i]];
        if (b->plan->place[g->inputs[i]].root >= 0 && n > 0) {
            hp_cu_tensor src, dst;
            hp_cu_tensor_raw(&src, b->stage_d + off, 1, val->ndim, val->dims);
            HP_CU_TRY(hp_cu_tensor_of(b, g->inputs[i], 0, &dst));
            HP_CU_TRY(hp_cu_copy(b, &src, &dst));
        }
        off += (size_t)n;
    }
    return HP_OK;
}

/* Stage 1 of a run from 8-bit tiles: the bytes to the device, normalized there into the
 * graph's one [N,3,H,W] input. */
static hp_status upload_rgb8(hp_cuda_backend *b, const uint8_t *rgb, const float scale[3],
                             const float bias[3])
{
    const hp_graph *g = b->g;
    if (g->n_inputs != 1)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: 8-bit RGB input needs a graph with one input (it has %d)",
                            g->n_inputs);
    int v = g->inputs[0];
    int64_t n = hp_value_numel(&g->values[v]);
    if (n <= 0 || b->plan->place[v].root < 0)
        return HP_OK; /* nothing reads the input */
    if (!rgb)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: 8-bit RGB input is NULL");
    if ((size_t)n > b->rgb_bytes) {
        if (b->rgb_d) {
            HP_CU_CHECK(b, cudaStreamSynchronize(b->stream));
            HP_CU_CHECK(b, cudaFree(b->rgb_d));
            b->rgb_d = NULL;
            b->rgb_bytes = 0;
        }
        HP_CU_CHECK(b, cudaMalloc((void **)&b->rgb_d, (size_t)n));
        b->rgb_bytes = (size_t)n;
    }
    HP_CU_CHECK(b, cudaMemcpyAsync(b->rgb_d, rgb, (size_t)n, cudaMemcpyHostToDevice, b->stream));
    hp_cu_tensor dst;
    HP_CU_TRY(hp_cu_tensor_of(b, v, 0, &dst));
    return hp_cu_rgb8_to_input(b, b->rgb_d, scale, bias, &dst);
}

/* Stage 2: every live node, in order. */
static hp_status run_nodes(hp_cuda_backend *b)
{
    const hp_graph *g = b->g;
    for (int k = 0; k < g->n_nodes; k++) {
        if (!g->nodes[k].dead) {
            b->cur_node = k;
            HP_CU_TRY(run_node(b, k));
            if (b->sync_each)
                HP_CU_CHECK(b, cudaStreamSynchronize(b->stream));
        }
        if (b->prof)
            HP_CU_TRY(hp_cu_profile_mark(b, 2 + k));
    }
    b->cur_node = -1;
    return HP_OK;
}

/* Stage 3: outputs converted to float in staging, one copy to pinned host memory, then out. */
static hp_status download_outputs(hp_cuda_backend *b, float *const *outputs)
{
    const hp_graph *g = b->g;
    size_t off = 0;
    for (int i = 0; i < g->n_outputs; i++) {
        const hp_value *val = &g->values[g->outputs[i]];
        int64_t n = hp_value_numel(val);
        if (n > 0) {
            hp_cu_tensor src, dst;
            HP_CU_TRY(hp_cu_tensor_of(b, g->outputs[i], 0, &src));
            hp_cu_tensor_raw(&dst, b->stage_d + off, 1, val->ndim, val->dims);
            HP_CU_TRY(hp_cu_copy(b, &src, &dst));
        }
        off += (size_t)n;
    }
    if (off > 0)
        HP_CU_CHECK(b, cudaMemcpyAsync(b->stage_h, b->stage_d, off * sizeof(float),
                                       cudaMemcpyDeviceToHost, b->stream));
    if (b->prof)
        HP_CU_TRY(hp_cu_profile_mark(b, g->n_nodes + 2));
    HP_CU_CHECK(b, cudaStreamSynchronize(b->stream));
    if (b->prof)
        HP_CU_TRY(hp_cu_profile_end(b));
    off = 0;
    for (int i = 0; i < g->n_outputs; i++) {
        int64_t n = hp_value_numel(&g->values[g->outputs[i]]);
        if (n > 0) {
            if (!outputs[i])
                return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: output %d is NULL", i);
            memcpy(outputs[i], b->stage_h + off, (size_t)n * sizeof(float));
        }
        off += (size_t)n;
    }
    return HP_OK;
}

/* A run: inputs (float, or 8-bit tiles when rgb is given), nodes, outputs. */
static hp_status run_impl(hp_cuda_backend *b, const float *const *inputs, const uint8_t *rgb,
                          const float *scale, const float *bias, float *const *outputs)
{
    if (!b->g)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: run before a successful prepare");
    HP_CU_CHECK(b, cudaSetDevice(b->device));
    b->cur_node = -1;
    if (b->prof)
        HP_CU_TRY(hp_cu_profile_begin(b));
    HP_CU_TRY(scale ? upload_rgb8(b, rgb, scale, bias) : upload_inputs(b, inputs));
    if (b->prof)
        HP_CU_TRY(hp_cu_profile_mark(b, 1));
    HP_CU_TRY(run_nodes(b));
    return download_outputs(b, outputs);
}

static hp_status finish_run(hp_cuda_backend *b, hp_status s)
{
    if (s != HP_OK) {
        b->cur_node = -1;
        /* leave the stream idle so staging buffers are not in use when the caller retries */
        (void)cudaStreamSynchronize(b->stream);
    }
    return s;
}

static hp_status cuda_run(hp_backend *base, const float *const *inputs, float *const *outputs)
{
    hp_cuda_backend *b = (hp_cuda_backend *)base;
    return finish_run(b, run_impl(b, inputs, NULL, NULL, NULL, outputs));
}

static hp_status cuda_run_rgb8(hp_backend *base, const uint8_t *rgb, const float scale[3],
                               const float bias[3], float *const *outputs)
{
    hp_cuda_backend *b = (hp_cuda_backend *)base;
    return finish_run(b, run_impl(b, NULL, rgb, scale, bias, outputs));
}

/* ---- create ----------------------------------------------------------------------------- */

static const hp_backend_vtbl cuda_vtbl = {.name = "cuda",
                                          .prepare = cuda_prepare,
                                          .run = cuda_run,
                                          .run_rgb8 = cuda_run_rgb8,
                                          .destroy = cuda_destroy};

static hp_status init(hp_cuda_backend *b)
{
    HP_CU_CHECK(b, cudaSetDevice(b->device));
    cudaDeviceProp prop;
    HP_CU_CHECK(b, cudaGetDeviceProperties(&prop, b->device));
    b->sm_count = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    if (b->base.precision == HP_PREC_BF16 && prop.major < 8)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: bfloat16 needs compute capability 8.0 or later; device %d (%s) "
                            "is %d.%d", b->device, prop.name, prop.major, prop.minor);
    if (b->base.precision == HP_PREC_FP16 && prop.major < 6)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: float16 needs compute capability 6.0 or later; device %d (%s) "
                            "is %d.%d", b->device, prop.name, prop.major, prop.minor);
    HP_CU_CHECK(b, cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking));
    HP_CUDNN_CHECK(b, cudnnCreate(&b->cudnn));
    HP_CUDNN_CHECK(b, cudnnSetStream(b->cudnn, b->stream));
    HP_CUBLAS_CHECK(b, cublasCreate(&b->cublas));
    HP_CUBLAS_CHECK(b, cublasSetStream(b->cublas, b->stream));
    /* fp32 means fp32: pedantic math rules out TF32 and other reduced-precision shortcuts */
    HP_CUBLAS_CHECK(b, cublasSetMathMode(b->cublas, b->base.precision == HP_PREC_FP32
                                                        ? CUBLAS_PEDANTIC_MATH
                                                        : CUBLAS_DEFAULT_MATH));
    return HP_OK;
}

extern "C" hp_backend *hp_cuda_backend_create(int device, hp_precision precision, hp_error *err)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        hp_error_set(err, HP_ERR_DEVICE, "cuda: no usable CUDA device (%s)",
                     e != cudaSuccess ? cudaGetErrorString(e) : "no devices");
        (void)cudaGetLastError(); /* clear the runtime's sticky last error */
        return NULL;
    }
    if (device < 0 || device >= count) {
        hp_error_set(err, HP_ERR_INVALID, "cuda: device %d does not exist (%d device%s)", device,
                     count, count == 1 ? "" : "s");
        return NULL;
    }
    if (precision != HP_PREC_FP32 && precision != HP_PREC_FP16 && precision != HP_PREC_BF16) {
        hp_error_set(err, HP_ERR_INVALID, "cuda: unknown precision %d", (int)precision);
        return NULL;
    }
    hp_cuda_backend *b = (hp_cuda_backend *)calloc(1, sizeof *b);
    if (!b) {
        hp_error_set(err, HP_ERR_NOMEM, "cuda: out of memory");
        return NULL;
    }
    b->base.vt = &cuda_vtbl;
    b->base.precision = precision;
    b->device = device;
    b->esize = precision == HP_PREC_FP32 ? 4 : 2;
    b->cur_node = -1;
    const char *s = getenv("HP_CUDA_SYNC");
    b->sync_each = s && *s && strcmp(s, "0") != 0;
    b->prof = hp_cu_profile_from_env();
    if (init(b) != HP_OK) {
        hp_error_set(err, b->base.err.code, "%s", b->base.err.msg);
        cuda_destroy(&b->base);
        return NULL;
    }
    return &b->base;
}

extern "C" int hp_cuda_compiled(void) { return 1; }

extern "C" int hp_cuda_available(void)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return count > 0;
}
