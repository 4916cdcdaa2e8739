/* 2-D convolution with cuDNN's legacy API.
 *
 * cuDNN takes symmetric pads only: the symmetric part (min of the two sides) goes to cuDNN and
 * the rest is padded explicitly into the shared scratch buffer before the call. Strided inputs
 * and outputs (channel slices of a concat) are described with explicit strides. The algorithm
 * is chosen once at prepare (measured with cudnnFindConvolutionForwardAlgorithmEx, or cuDNN's
 * heuristic with HP_CUDA_CONV_ALGO=heuristic) within a bounded workspace; fp32 keeps to
 * CUDNN_FMA_MATH so TF32 never creeps in. Bias and activation run after the convolution as a
 * per-channel map (hp_cu_channel_affine); HP_CUDA_FUSE=1 tries
 * cudnnConvolutionBiasActivationForward for bias + ReLU instead (falling back to the plain path
 * when cuDNN says it is not supported). */
#include "kernels/cuda/cuda_internal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    cudnnActivationDescriptor_t ad;
    cudnnConvolutionFwdAlgo_t algo;
    cudnnMathType_t math;
    size_t ws;
    int explicit_pad;
    int et, el; /* extra top / left rows padded explicitly */
    int64_t N, C, H, W, Hp, Wp, M;
    int has_bias;
    int fuse;
    int64_t key[24];
} conv_state;

extern "C" void hp_cu_conv_release(void *state)
{
    conv_state *st = (conv_state *)state;
    if (!st)
        return;
    /* destroy calls only free host memory; their status carries nothing to act on */
    if (st->xd)
        (void)cudnnDestroyTensorDescriptor(st->xd);
    if (st->yd)
        (void)cudnnDestroyTensorDescriptor(st->yd);
    if (st->bd)
        (void)cudnnDestroyTensorDescriptor(st->bd);
    if (st->wd)
        (void)cudnnDestroyFilterDescriptor(st->wd);
    if (st->cd)
        (void)cudnnDestroyConvolutionDescriptor(st->cd);
    if (st->ad)
        (void)cudnnDestroyActivationDescriptor(st->ad);
    free(st);
}

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

extern "C" hp_status hp_cu_conv_prepare(hp_cuda_backend *b, int node, size_t *scratch_need)
{
    const hp_graph *g = b->g;
    const hp_node *n = &g->nodes[node];
    const hp_conv_attr *a = &n->attr.conv;
    *scratch_need = 0;
    if (n->n_in < 2 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: conv '%s' needs X and W",
                            n->name);
    const hp_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]];
    const hp_value *y = &g->values[n->out[0]];
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: conv '%s': only 2-D convolutions (4-D tensors) are supported",
                            n->name);
    int group = a->group > 0 ? a->group : 1;
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t M = w->dims[0];
    if (w->dims[1] * group != C || M % group != 0 || y->dims[1] != M || y->dims[0] != N ||
        w->dims[2] != a->kh || w->dims[3] != a->kw)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: conv '%s': shapes of X, W, Y and the group count disagree",
                            n->name);
    for (int i = 0; i < 4; i++)
        if (a->pad[i] < 0)
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: conv '%s': negative pad",
                                n->name);
    if (a->stride[0] < 1 || a->stride[1] < 1 || a->dil[0] < 1 || a->dil[1] < 1)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: conv '%s': strides and dilations must be >= 1", n->name);
    int has_bias = n->n_in > 2 && n->in[2] >= 0;
    if (has_bias && hp_value_numel(&g->values[n->in[2]]) != M)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: conv '%s': bias has %lld elements, expected %lld", n->name,
                            (long long)hp_value_numel(&g->values[n->in[2]]), (long long)M);
    if (has_bias && g->values[n->in[2]].kind != HP_VAL_CONST)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: conv '%s': the bias must be a constant", n->name);

    conv_state *st = (conv_state *)calloc(1, sizeof *st);
    if (!st)
        return hp_error_set(&b->base.err, HP_ERR_NOMEM, "cuda: out of host memory");
    b->node_state[node] = st; /* released with the backend from here on */
    st->N = N, st->C = C, st->H = H, st->W = W, st->M = M;
    st->has_bias = has_bias;
    const char *fe = getenv("HP_CUDA_FUSE");
    st->fuse = has_bias && a->act.kind == HP_ACT_RELU && fe && strcmp(fe, "1") == 0;

    HP_CUDNN_CHECK(b, cudnnCreateTensorDescriptor(&st->xd));
    HP_CUDNN_CHECK(b, cudnnCreateTensorDescriptor(&st->yd));
    HP_CUDNN_CHECK(b, cudnnCreateTensorDescriptor(&st->bd));
    HP_CUDNN_CHECK(b, cudnnCreateFilterDescriptor(&st->wd));
    HP_CUDNN_CHECK(b, cudnnCreateConvolutionDescriptor(&st->cd));
    HP_CUDNN_CHECK(b, cudnnCreateActivationDescriptor(&st->ad));

    hp_cu_tensor xt, yt;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 1, &xt));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &yt));
    int sym_h = a->pad[0] < a->pad[2] ? a->pad[0] : a->pad[2];
    int sym_w = a->pad[1] < a->pad[3] ? a->pad[1] : a->pad[3];
    st->et = a->pad[0] - sym_h;
    st->el = a->pad[1] - sym_w;
    int eb = a->pad[2] - sym_h, er = a->pad[3] - sym_w;
    st->explicit_pad = st->et || st->el || eb || er;
    st->Hp = H + st->et + eb;
    st->Wp = W + st->el + er;
    int64_t OH = y->dims[2], OW = y->dims[3];
    if (!fits_int(N) || !fits_int(C) || !fits_int(st->Hp) || !fits_int(st->Wp) ||
        !fits_int(M) || !fits_int(OH) || !fits_int(OW) || !fits_int(xt.bstride) ||
        !fits_int(yt.bstride) || !fits_int(C * st->Hp * st->Wp) || !fits_int(M * OH * OW))
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: conv '%s': a dimension exceeds cuDNN's int range", n->name);
    cudnnDataType_t dt = hp_cu_cudnn_type(b);
    if (st->explicit_pad) {
        HP_CUDNN_CHECK(b, cudnnSetTensor4dDescriptor(st->xd, CUDNN_TENSOR_NCHW, dt, (int)N, (int)C,
                                                     (int)st->Hp, (int)st->Wp));
        *scratch_need = (size_t)(N * C * st->Hp * st->Wp) * b->esize;
    } else {
        HP_CUDNN_CHECK(b, cudnnSetTensor4dDescriptorEx(st->xd, dt, (int)N, (int)C, (int)H, (int)W,
                                                       (int)xt.bstride, (int)(H * W), (int)W, 1));
    }
    HP_CUDNN_CHECK(b, cudnnSetTensor4dDescriptorEx(st->yd, dt, (int)N, (int)M, (int)OH, (int)OW,
                                                   (int)yt.bstride, (int)(OH * OW), (int)OW, 1));
    HP_CUDNN_CHECK(b, cudnnSetTensor4dDescriptor(st->bd, CUDNN_TENSOR_NCHW, dt, 1, (int)M, 1, 1));
    HP_CUDNN_CHECK(b, cudnnSetFilter4dDescriptor(st->wd, dt, CUDNN_TENSOR_NCHW, (int)M,
                                                 (int)(C / group), a->kh, a->kw));
    HP_CUDNN_CHECK(b, cudnnSetConvolution2dDescriptor(st->cd, sym_h, sym_w, a->stride[0],
                                                      a->stride[1], a->dil[0], a->dil[1],
                                                      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    HP_CUDNN_CHECK(b, cudnnSetConvolutionGroupCount(st->cd, group));
    HP_CUDNN_CHECK(b, cudnnSetActivationDescriptor(st->ad, CUDNN_ACTIVATION_RELU,
                                                   CUDNN_PROPAGATE_NAN, 0.0));
    int on, oc, oh, ow;
    HP_CUDNN_CHECK(b, cudnnGetConvolution2dForwardOutputDim(st->cd, st->xd, st->wd, &on, &oc, &oh,
                                                            &ow));
    if (on != N || oc != M || oh != OH || ow != OW)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: conv '%s': cuDNN computes output %dx%dx%dx%d, the graph says "
                            "%lldx%lldx%lldx%lld", n->name, on, oc, oh, ow, (long long)N,
                            (long long)M, (long long)OH, (long long)OW);
    int64_t key[24] = {(int64_t)dt, N, C, st->Hp, st->Wp, st->explicit_pad ? 0 : xt.bstride, M,
                       C / group, a->kh, a->kw, sym_h, sym_w, a->stride[0], a->stride[1],
                       a->dil[0], a->dil[1], group, yt.bstride, OH, OW, 0, 0, 0, 0};
    memcpy(st->key, key, sizeof key);
    return HP_OK;
}

static int fp32_math_ok(const hp_cuda_backend *b, cudnnMathType_t m)
{
    return b->base.precision != HP_PREC_FP32 || m == CUDNN_FMA_MATH;
}

extern "C" hp_status hp_cu_conv_select(hp_cuda_backend *b, int node, size_t *ws_need)
{
    conv_state *st = (conv_state *)b->node_state[node];
    const hp_node *n = &b->g->nodes[node];
    *ws_need = 0;
    if (!st)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: conv '%s' was not prepared",
                            n->name);
    for (int i = 0; i < b->n_memo; i++)
        if (memcmp(b->memo[i].key, st->key, sizeof st->key) == 0) {
            st->algo = (cudnnConvolutionFwdAlgo_t)b->memo[i].algo;
            st->math = (cudnnMathType_t)b->memo[i].math;
            st->ws = b->memo[i].ws;
            HP_CUDNN_CHECK(b, cudnnSetConvolutionMathType(st->cd, st->math));
            *ws_need = st->ws;
            return HP_OK;
        }

    int fp32 = b->base.precision == HP_PREC_FP32;
    cudnnMathType_t want = fp32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
    HP_CUDNN_CHECK(b, cudnnSetConvolutionMathType(st->cd, want));
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int got = 0, chosen = -1;
    const char *mode = getenv("HP_CUDA_CONV_ALGO");
    if (mode && strcmp(mode, "heuristic") == 0) {
        HP_CUDNN_CHECK(b, cudnnGetConvolutionForwardAlgorithm_v7(
                              b->cudnn, st->xd, st->wd, st->cd, st->yd,
                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf));
    } else {
        hp_cu_tensor xt, wt, yt;
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 1, &xt));
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 1, &wt));
        HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &yt));
        /* timing runs on the prepare-time arena contents; nothing reads the results */
        HP_CUDNN_CHECK(b, cudnnFindConvolutionForwardAlgorithmEx(
                              b->cudnn, st->xd, st->explicit_pad ? b->scratch : xt.p, st->wd, wt.p,
                              st->cd, st->yd, yt.p, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf,
                              b->ws, b->ws_bytes));
    }
    /* Candidates in cuDNN's order of preference, each confirmed under the math type it will
     * run with. fp32 runs FMA only: entries timed with FMA math come first, then those timed
     * with default math (run under FMA); tensor-op ones never. Implicit GEMM, which needs no
     * workspace, closes the list. */
    cudnnConvolutionFwdAlgo_t cand[2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT + 1];
    cudnnMathType_t cmath[2 * CUDNN_CONVOLUTION_FWD_ALGO_COUNT + 1];
    int nc = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < got; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].memory > b->ws_bytes)
                continue;
            int exact = fp32_math_ok(b, perf[i].mathType);
            if ((pass == 0) != (exact != 0))
                continue;
            if (fp32 && pass == 1 && perf[i].mathType != CUDNN_DEFAULT_MATH)
                continue; /* tensor-op timings say nothing about the FMA kernel */
            cand[nc] = perf[i].algo;
            cmath[nc++] = fp32 ? CUDNN_FMA_MATH : perf[i].mathType;
        }
    cand[nc] = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    cmath[nc++] = fp32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
    for (int i = 0; i < nc && chosen < 0; i++) {
        size_t ws = 0;
        HP_CUDNN_CHECK(b, cudnnSetConvolutionMathType(st->cd, cmath[i]));
        cudnnStatus_t s = cudnnGetConvolutionForwardWorkspaceSize(b->cudnn, st->xd, st->wd,
                                                                  st->cd, st->yd, cand[i], &ws);
        if (s == CUDNN_STATUS_SUCCESS && ws <= b->ws_bytes) {
            chosen = i;
            st->algo = cand[i];
            st->math = cmath[i];
            st->ws = ws;
        } else if (s != CUDNN_STATUS_SUCCESS && s != CUDNN_STATUS_NOT_SUPPORTED &&
                   s != CUDNN_STATUS_BAD_PARAM) {
            return hp_cu_fail_cudnn(b, __FILE__, __LINE__,
                                    "cudnnGetConvolutionForwardWorkspaceSize", (int)s);
        }
    }
    if (chosen < 0)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: conv '%s': cuDNN offers no forward algorithm for this shape "
                            "within %zu bytes of workspace", n->name, b->ws_bytes);
    *ws_need = st->ws;
    if (b->n_memo == b->cap_memo) {
        int cap = b->cap_memo ? 2 * b->cap_memo : 32;
        hp_cu_algo_memo *m = (hp_cu_algo_memo *)realloc(b->memo, (size_t)cap * sizeof *m);
        if (!m)
            return hp_error_set(&b->base.err, HP_ERR_NOMEM, "cuda: out of host memory");
        b->memo = m;
        b->cap_memo = cap;
    }
    hp_cu_algo_memo *m = &b->memo[b->n_memo++];
    memcpy(m->key, st->key, sizeof st->key);
    m->algo = (int)st->algo;
    m->math = (int)st->math;
    m->ws = st->ws;
    return HP_OK;
}

/* Copies a (possibly strided) NCHW input into the zero-bordered scratch tensor. */
template <typename T>
__global__ void k_pad_input(const T *x, int64_t xbs, T *dst, int64_t C, int64_t H, int64_t W,
                            int64_t Hp, int64_t Wp, int et, int el, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t w = i % Wp, t = i / Wp;
        int64_t h = t % Hp;
        t /= Hp;
        int64_t c = t % C, nn = t / C;
        int64_t sh = h - et, sw = w - el;
        T v = hp_from_f<T>(0.f);
        if (sh >= 0 && sh < H && sw >= 0 && sw < W)
            v = x[nn * xbs + (c * H + sh) * W + sw];
        dst[i] = v;
    }
}

template <typename T> static hp_status conv_run(hp_cuda_backend *b, const hp_node *n,
                                                conv_state *st)
{
    hp_cu_tensor xt, wt, yt, bt;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 1, &xt));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 1, &wt));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &yt));
    if (st->has_bias)
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[2], 1, &bt));
    if (st->ws > b->ws_bytes)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: conv '%s': workspace too small",
                            n->name);
    const void *x = xt.p;
    if (st->explicit_pad) {
        int64_t total = st->N * st->C * st->Hp * st->Wp;
        if ((size_t)total * sizeof(T) > b->scratch_bytes)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: conv '%s': scratch too small for explicit padding",
                                n->name);
        k_pad_input<T><<<hp_cu_blocks(total), HP_CU_THREADS, 0, b->stream>>>(
            (const T *)xt.p, xt.bstride, (T *)b->scratch, st->C, st->H, st->W, st->Hp, st->Wp,
            st->et, st->el, total);
        HP_CU_LAUNCHED(b);
        x = b->scratch;
    }
    const float one = 1.f, zero = 0.f;
    const hp_act act = n->attr.conv.act;
    if (st->fuse) {
        /* z is y with alpha2 = 0; the bias is the arena-type copy, as cuDNN requires */
        cudnnStatus_t s = cudnnConvolutionBiasActivationForward(
            b->cudnn, &one, st->xd, x, st->wd, wt.p, st->cd, st->algo, b->ws, st->ws, &zero,
            st->yd, yt.p, st->bd, bt.p, st->ad, st->yd, yt.p);
        if (s == CUDNN_STATUS_SUCCESS)
            return HP_OK;
        if (s != CUDNN_STATUS_NOT_SUPPORTED)
            return hp_cu_fail_cudnn(b, __FILE__, __LINE__,
                                    "cudnnConvolutionBiasActivationForward", (int)s);
        st->fuse = 0; /* this configuration is not fusable: use the plain path from now on */
    }
    HP_CUDNN_CHECK(b, cudnnConvolutionForward(b->cudnn, &one, st->xd, x, st->wd, wt.p, st->cd,
                                              st->algo, b->ws, st->ws, &zero, st->yd, yt.p));
    /* y = act(y + bias[c]) in place */
    if (st->has_bias || act.kind != HP_ACT_NONE)
        return hp_cu_channel_affine(b, &yt, &yt, NULL, st->has_bias ? &bt : NULL, act, n->name);
    return HP_OK;
}

extern "C" hp_status hp_cu_conv_run(hp_cuda_backend *b, const hp_node *n, void *state)
{
    conv_state *st = (conv_state *)state;
    if (!st)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: conv '%s' was not prepared",
                            n->name);
    HP_CU_DISPATCH(b, conv_run, b, n, st);
}
