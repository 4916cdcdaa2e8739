/* Internal interface of the CPU backend: the tensor view every kernel receives, the run context
 * (thread pool, per-thread scratch, error record) and one entry point per op.
 *
 * Each op file holds both paths: `c->reference` selects plain loops that are obviously correct
 * (the ground truth of the tests); otherwise the fast path runs, split into work units whose
 * boundaries depend only on the shapes, never on the thread count, so the bytes produced are the
 * same for any number of threads. Not part of the public API. */
#ifndef HP_CPU_INTERNAL_H
#define HP_CPU_INTERNAL_H

#include <math.h>
#include <stdint.h>

/* The fast loops are written to be auto-vectorized. At the project's -O2, GCC 12 vectorizes only
 * loops whose trip count it knows, so every CPU kernel file (each includes this header first)
 * is compiled at O3. -std=c11 keeps -ffp-contract=off, so the fast and reference elementwise
 * paths still evaluate the same float expressions. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

/* The hottest elementwise loops are also compiled for AVX-512 and AVX2, picked at load time by
 * the CPU (the build itself targets baseline x86-64). Elementwise only: every clone computes the
 * same float expression per element, so results do not depend on the machine's clone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HP_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HP_CPU_CLONES
#endif

#include "kernels/backend.h"
#include "kernels/cpu/threadpool.h"

/* A view of one value. For 4-D values inside a concatenation buffer, batch items are `bstride`
 * elements apart (a channel-sliced view); within an item the layout is contiguous. */
typedef struct {
    float *p; /* first element (constants: their data, never written) */
    int ndim;
    int64_t dims[HP_MAX_DIMS];
    int64_t bstride; /* elements between consecutive items of dim 0 */
    const char *name;
} hp_cpu_tensor;

typedef struct {
    hp_pool *pool;
    int nthreads;
    int reference;
    float **scratch;       /* one buffer per pool thread, `scratch_elems` floats each */
    int64_t scratch_elems;
    hp_error *err;
    const void *node_data; /* what prepare made for the node being run, or NULL */
} hp_cpu_ctx;

/* Inputs: in[i] is NULL for an absent optional input. Kernels write out only. */
typedef hp_status (*hp_cpu_kernel)(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                                   const hp_cpu_tensor *out);

/* Records "Op 'name': <message>" on the backend's error. */
hp_status hp_cpu_fail(hp_cpu_ctx *c, const hp_node *n, hp_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ceil(a / b) for a >= 0, b > 0. */
static inline int64_t hp_cpu_ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* max(m, v) that propagates NaN, as ONNX's and PyTorch's MaxPool do: a NaN in a window makes
 * the result NaN (a plain '>' would drop it, so an all-NaN input gave finite outputs). */
static inline float hp_cpu_max_nan(float m, float v)
{
    return (v > m || v != v) ? v : m;
}

static inline int64_t hp_cpu_numel(const hp_cpu_tensor *t)
{
    int64_t k = 1;
    for (int i = 0; i < t->ndim; i++)
        k *= t->dims[i];
    return k;
}

/* Elements of one item of dim 0 (the whole tensor for a scalar). */
static inline int64_t hp_cpu_item(const hp_cpu_tensor *t)
{
    int64_t k = 1;
    for (int i = 1; i < t->ndim; i++)
        k *= t->dims[i];
    return k;
}

static inline int64_t hp_cpu_batch(const hp_cpu_tensor *t)
{
    return t->ndim > 0 ? t->dims[0] : 1;
}

static inline int hp_cpu_same_dims(const hp_cpu_tensor *a, const hp_cpu_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

/* Scalar activation; the fast paths use hp_cpu_act_rows, which must agree with this bit for bit
 * (both evaluate the same expression in float). NaN passes through Relu and Clip unchanged. */
static inline float hp_cpu_act1(const hp_act *a, float x)
{
    switch (a->kind) {
    case HP_ACT_NONE:
        return x;
    case HP_ACT_RELU:
        return x < 0.0f ? 0.0f : x;
    case HP_ACT_LEAKY_RELU:
        return x < 0.0f ? a->alpha * x : x;
    case HP_ACT_CLIP:
        return x < a->lo ? a->lo : (x > a->hi ? a->hi : x);
    case HP_ACT_SIGMOID:
        if (x >= 0.0f)
            return 1.0f / (1.0f + expf(-x));
        else {
            float e = expf(x);
            return e / (1.0f + e);
        }
    case HP_ACT_TANH:
        return tanhf(x);
    }
    return x;
}

/* Whether the activation kind is one the backend knows. */
static inline int hp_cpu_act_valid(const hp_act *a)
{
    return a->kind >= HP_ACT_NONE && a->kind <= HP_ACT_TANH;
}

/* y[r*ld + j] = act(y[r*ld + j] * (scale ? scale[r] : 1) + (bias ? bias[r] : 0)) for r < rows,
 * j < cols: the shared epilogue of Conv/ScaleShift/BatchNorm, a tight loop per row. */
void hp_cpu_act_rows(const hp_act *a, float *y, int64_t ld, int64_t rows, int64_t cols,
                     const float *scale, const float *bias);
/* Same with a separate source: y[r*ldy + j] = act(x[r*ldx + j] * scale[r] + bias[r]). */
void hp_cpu_affine_act_rows(const hp_act *a, const float *x, int64_t ldx, float *y, int64_t ldy,
                            int64_t rows, int64_t cols, const float *scale, const float *bias);

/* y[r*ldy + j] = act(x[r*ldx + j] + bias): a plane of one output channel. */
void hp_cpu_bias_act_plane(const hp_act *a, const float *x, int64_t ldx, float *y, int64_t ldy,
                           int64_t rows, int64_t cols, float bias);

/* Fast per-channel y = act(x * scale[c] + shift[c]) over a tensor of rank >= 2 (channel = dim 1),
 * x and y possibly strided, parallel over (item, channel block). Shapes already checked. */
void hp_cpu_channel_affine(hp_cpu_ctx *c, const hp_cpu_tensor *x, const hp_cpu_tensor *y,
                           const float *scale, const float *shift, const hp_act *act);

/* Elementwise a (op) b with numpy broadcasting of both into out's shape. `op` is an
 * hp_binary_kind, or HP_CPU_OP_PRELU for y = a < 0 ? b * a : a. Validates the shapes. */
#define HP_CPU_OP_PRELU 100
hp_status hp_cpu_broadcast_apply(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *a,
                                 const hp_cpu_tensor *b, const hp_cpu_tensor *out, int op);

/* A SCALE_SHIFT whose only consumer is a 1x1 convolution is folded into that convolution's
 * input packing (the scaled tensor is never written out). `pre` carries it. */
typedef struct {
    const hp_cpu_tensor *x;     /* the ScaleShift's input (may be strided) */
    const float *scale, *shift; /* per channel of x */
    hp_act act;
} hp_cpu_conv_pre;

/* Fast-path preparation of one Conv node (fused: a ScaleShift is folded into it): the per-thread
 * scratch it needs (floats) and, when it repacks its constant weights, *data (malloc'd, handed
 * back as hp_cpu_ctx.node_data at run time; the caller frees it). Shape errors are left for run
 * time, which reports them; only allocation failure returns an error. */
hp_status hp_cpu_conv2d_prepare(const hp_graph *g, const hp_node *n, int fused, void **data,
                                int64_t *scratch);
hp_status hp_cpu_conv2d_fused(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                              const hp_cpu_tensor *out, const hp_cpu_conv_pre *pre);

/* Winograd F(4x4, 3x3) for 3x3 stride-1 dilation-1 single-group convolutions
 * (conv2d_winograd.c). Each row of 4x4-pixel output tiles is cut into `nseg` segments of at most
 * `sl` tiles; segments, numbered item-major over the batch, are processed `rs` at a time: one
 * work unit per block of segments, fixed by the shapes. */
typedef struct {
    int64_t N, C, H, W, M, OH, OW, pt, pl;
    int64_t th, tw;              /* tile rows and columns per item */
    int64_t sl, nseg, segs;      /* tiles per segment; segments per tile row; in the batch */
    int64_t rs, tb, nblk;        /* segments per block; GEMM columns (rs * sl); blocks */
    int64_t ws;                  /* per-thread workspace of the transforms (floats) */
    int64_t scratch;             /* floats of per-thread scratch in all */
} hp_wino_geom;

/* Fills q and returns 1 when the shapes suit the Winograd form (enough channels), else 0. The
 * caller has checked kernel 3x3, stride 1, dilation 1, one group, OH = H + pads - 2 (same for W). */
int hp_cpu_wino_plan(hp_wino_geom *q, int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int64_t OH,
                     int64_t OW, int64_t pt, int64_t pl);
/* Weights W[M][C][3][3] to the transform domain U[36][M][C] (36*M*C floats at u). */
void hp_cpu_wino_weights(const float *w, int64_t M, int64_t C, float *u);
/* y = act(conv(x, W) + bias) with U from hp_cpu_wino_weights; needs q->scratch floats of
 * scratch per thread. x and y may be strided views. */
void hp_cpu_wino_run(hp_cpu_ctx *c, const hp_wino_geom *q, const hp_cpu_tensor *x, const float *u,
                     const float *bias, const hp_act *act, const hp_cpu_tensor *y);

hp_status hp_cpu_conv2d(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out);
hp_status hp_cpu_batchnorm(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                           const hp_cpu_tensor *out);
hp_status hp_cpu_scale_shift(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                             const hp_cpu_tensor *out);
hp_status hp_cpu_unary(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                       const hp_cpu_tensor *out);
hp_status hp_cpu_prelu(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                       const hp_cpu_tensor *out);
hp_status hp_cpu_binary(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out);
hp_status hp_cpu_pool(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                      const hp_cpu_tensor *out);
hp_status hp_cpu_global_pool(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                             const hp_cpu_tensor *out);
/* skip[i] != 0: input i already lives in its slice of the output. */
hp_status hp_cpu_concat(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out, const unsigned char *skip);
hp_status hp_cpu_transpose(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                           const hp_cpu_tensor *out);
hp_status hp_cpu_gemm(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                      const hp_cpu_tensor *out);
hp_status hp_cpu_matmul(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out);
hp_status hp_cpu_softmax(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                         const hp_cpu_tensor *out);
hp_status hp_cpu_depth_to_space(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                                const hp_cpu_tensor *out);
hp_status hp_cpu_resize(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out);
hp_status hp_cpu_pad(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                     const hp_cpu_tensor *out);

/* Number of fixed-size chunks of `n` elements (the unit of parallel elementwise work). */
#define HP_CPU_CHUNK 16384
static inline int64_t hp_cpu_nchunks(int64_t n)
{
    return (n + HP_CPU_CHUNK - 1) / HP_CPU_CHUNK;
}

#endif
