/* MaxPool and AveragePool, 2-D, on possibly strided 4-D views. The output shape already
 * includes ceil_mode. Max ignores padding; average divides by the number
 * of window positions inside the input, or with count_include_pad by those inside the padded
 * input (windows that ceil_mode lets run past the padding do not count those positions). A window
 * with no input position yields 0. A NaN in a window makes its max NaN, as in the CPU reference
 * (and ONNX and PyTorch). */
#include "kernels/cuda/cuda_internal.h"

/* max(m, v) propagating NaN: kernels/cpu/cpu_internal.h's hp_cpu_max_nan. */
static __device__ __forceinline__ float max_nan(float m, float v)
{
    return (v > m || v != v) ? v : m;
}

typedef struct {
    int64_t C, H, W, OH, OW;
    int kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int is_max, include_pad;
} pool_geom;

/* Splitting the flat output index into (n, c, oh, ow): plain 64-bit division, or, when the
 * output has under 2^32 elements, fast 32-bit division by the launch-time constants (64-bit
 * division costs about 70 instructions, and three of them per output dominated the pools). */
struct split64 {
    int64_t OW, OH, C;
    __device__ void operator()(int64_t i, int64_t *nn, int64_t *c, int64_t *oh, int64_t *ow) const
    {
        int64_t t = i / OW;
        *ow = i - t * OW;
        int64_t u = t / OH;
        *oh = t - u * OH;
        *nn = u / C;
        *c = u - *nn * C;
    }
};
struct split32 {
    hp_fast_div OW, OH, C;
    __device__ void operator()(int64_t i, int64_t *nn, int64_t *c, int64_t *oh, int64_t *ow) const
    {
        uint32_t t = hp_fast_div_q(OW, (uint32_t)i), u = hp_fast_div_q(OH, t);
        uint32_t q = hp_fast_div_q(C, u);
        *ow = (uint32_t)i - t * OW.d;
        *oh = t - u * OH.d;
        *c = u - q * C.d;
        *nn = q;
    }
};

template <typename T, typename Split>
__global__ void k_pool(const void *x, int xf32, int64_t xbs, void *y, int yf32, int64_t ybs,
                       pool_geom p, Split split, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t nn, c, oh, ow;
        split(i, &nn, &c, &oh, &ow);
        int64_t h0 = oh * p.sh - p.pt, w0 = ow * p.sw - p.pl;
        const int64_t base = nn * xbs + c * p.H * p.W;
        float acc = p.is_max ? -INFINITY : 0.f;
        int64_t cnt = 0, cnt_pad = 0;
        for (int a = 0; a < p.kh; a++) {
            int64_t ih = h0 + (int64_t)a * p.dh;
            int in_h = ih >= 0 && ih < p.H;
            int pad_h = ih >= -p.pt && ih < p.H + p.pb;
            for (int bq = 0; bq < p.kw; bq++) {
                int64_t iw = w0 + (int64_t)bq * p.dw;
                int in_w = iw >= 0 && iw < p.W;
                if (pad_h && iw >= -p.pl && iw < p.W + p.pr)
                    cnt_pad++;
                if (!in_h || !in_w)
                    continue;
                float v = hp_ld<T>(x, xf32, base + ih * p.W + iw);
                if (p.is_max) {
                    acc = max_nan(acc, v);
                } else {
                    acc += v;
                }
                cnt++;
            }
        }
        if (p.is_max) {
            acc = cnt > 0 ? acc : 0.f; /* a window with no input position yields 0 */
        } else {
            int64_t div = p.include_pad ? cnt_pad : cnt;
            acc = div > 0 ? acc / (float)div : 0.f;
        }
        int64_t at = nn * ybs + (c * p.OH + oh) * p.OW + ow;
        hp_st<T>(y, yf32, at, acc);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.ndim != 4 || y.ndim != 4 || x.dims[0] != y.dims[0] || x.dims[1] != y.dims[1])
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: pool '%s': only 2-D pooling over NCHW is supported", n->name);
    const hp_pool_attr *a = &n->attr.pool;
    pool_geom p;
    p.C = x.dims[1], p.H = x.dims[2], p.W = x.dims[3], p.OH = y.dims[2], p.OW = y.dims[3];
    p.kh = a->kh, p.kw = a->kw, p.sh = a->stride[0], p.sw = a->stride[1];
    p.dh = a->dil[0] > 0 ? a->dil[0] : 1, p.dw = a->dil[1] > 0 ? a->dil[1] : 1;
    p.pt = a->pad[0], p.pl = a->pad[1], p.pb = a->pad[2], p.pr = a->pad[3];
    p.is_max = n->op == HP_OP_MAXPOOL;
    p.include_pad = a->count_include_pad;
    if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: pool '%s': kernel and strides must be >= 1", n->name);
    if (y.numel == 0)
        return HP_OK;
    if (y.numel <= 0xffffffffLL) {
        split32 sp = {hp_fast_div_make((uint32_t)p.OW), hp_fast_div_make((uint32_t)p.OH),
                      hp_fast_div_make((uint32_t)p.C)};
        k_pool<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(
            x.p, x.f32, x.bstride, y.p, y.f32, y.bstride, p, sp, y.numel);
    } else {
        split64 sp = {p.OW, p.OH, p.C};
        k_pool<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(
            x.p, x.f32, x.bstride, y.p, y.f32, y.bstride, p, sp, y.numel);
    }
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_pool_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: pool '%s' needs an input",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
