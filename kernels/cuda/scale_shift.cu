/* ScaleShift (a folded BatchNorm): y = act(x * scale[c] + shift[c]), channel on dim 1. X and Y
 * may be strided 4-D views (DenseNet's BN-ReLU on concat outputs). */
#include "kernels/cuda/cuda_internal.h"

template <typename T>
__global__ void k_scale_shift(const void *x, int xf32, int64_t xinner, int64_t xbs, void *y,
                              int yf32, int64_t yinner, int64_t ybs, const void *sc, int sf32,
                              const void *sh, int hf32, int64_t spatial, int64_t C, hp_act act,
                              int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t c = (i % xinner) / spatial % C;
        float v = hp_ld<T>(x, xf32, hp_addr(i, xinner, xbs));
        v = v * hp_ld<T>(sc, sf32, c) + hp_ld<T>(sh, hf32, c);
        hp_st<T>(y, yf32, hp_addr(i, yinner, ybs), hp_act_apply(v, act));
    }
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
    k_scale_shift<T><<<hp_cu_blocks(x.numel), HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, x.inner, x.bstride, y.p, y.f32, y.inner, y.bstride, sc.p, sc.f32, sh.p, sh.f32,
        x.inner / C, C, n->attr.act, x.numel);
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
