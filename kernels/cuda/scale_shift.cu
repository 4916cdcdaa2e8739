/* ScaleShift (a folded BatchNorm): y = act(x * scale[c] + shift[c]), channel on dim 1. X and Y
 * may be strided 4-D views (DenseNet's BN-ReLU on concat outputs). */
#include "kernels/cuda/cuda_internal.h"

/* One (n, c) plane per blockIdx.x, its spatial run split over blockIdx.y: the channel's scale
 * and shift are read once and no element pays for an index division. (The first version did
 * four 64-bit divisions per element and, in DenseNet-121 at fp16, took as long as all the
 * convolutions together.) */
template <typename T>
__global__ void k_scale_shift(const void *x, int xf32, int64_t xbs, void *y, int yf32,
                              int64_t ybs, const void *sc, int sf32, const void *sh, int hf32,
                              int64_t spatial, unsigned C, hp_act act)
{
    unsigned plane = blockIdx.x, n = plane / C, c = plane - n * C;
    int64_t xo = (int64_t)n * xbs + (int64_t)c * spatial, yo = (int64_t)n * ybs + (int64_t)c * spatial;
    float s = hp_ld<T>(sc, sf32, c), h = hp_ld<T>(sh, hf32, c);
    for (int64_t j = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; j < spatial;
         j += (int64_t)gridDim.y * blockDim.x)
        hp_st<T>(y, yf32, yo + j, hp_act_apply(hp_ld<T>(x, xf32, xo + j) * s + h, act));
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y, sc, sh;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 0, &sc));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[2], 0, &sh));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.ndim < 2 || x.numel != y.numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: scale-shift '%s' needs rank >= 2 and equal X and Y sizes",
                            n->name);
    int64_t C = x.dims[1];
    if (sc.numel != C || sh.numel != C)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: scale-shift '%s': scale and shift need %lld elements", n->name,
                            (long long)C);
    if (x.numel == 0 || C == 0 || x.inner / C == 0)
        return HP_OK;
    int64_t spatial = x.inner / C, planes = x.dims[0] * C;
    if (planes > 0x7fffffff)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: scale-shift '%s': %lld channel planes (at most 2^31 - 1)",
                            n->name, (long long)planes);
    /* enough threads for a 7x7 plane not to idle most of a block, at most 256 */
    unsigned threads = spatial >= HP_CU_THREADS ? HP_CU_THREADS : (unsigned)((spatial + 31) / 32 * 32);
    int64_t chunks = (spatial + threads - 1) / threads;
    dim3 grid((unsigned)planes, (unsigned)(chunks < 65535 ? chunks : 65535));
    k_scale_shift<T><<<grid, threads, 0, b->stream>>>(x.p, x.f32, x.bstride, y.p, y.f32,
                                                      y.bstride, sc.p, sc.f32, sh.p, sh.f32,
                                                      spatial, (unsigned)C, n->attr.act);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_scale_shift_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 3 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0 || n->in[2] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: scale-shift '%s' needs X, scale and shift", n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
