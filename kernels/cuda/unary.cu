/* Elementwise activations (Relu, LeakyRelu, Clip, Sigmoid, Tanh: attr.act) over possibly
 * strided 4-D views. */
#include "kernels/cuda/cuda_internal.h"

template <typename T>
__global__ void k_unary(const void *x, int xf32, int64_t xinner, int64_t xbs, void *y, int yf32,
                        int64_t yinner, int64_t ybs, hp_act act, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        float v = hp_ld<T>(x, xf32, hp_addr(i, xinner, xbs));
        hp_st<T>(y, yf32, hp_addr(i, yinner, ybs), hp_act_apply(v, act));
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.numel != y.numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: unary '%s': X and Y sizes differ", n->name);
    if (x.numel == 0)
        return HP_OK;
    k_unary<T><<<hp_cu_blocks(x.numel), HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, x.inner, x.bstride, y.p, y.f32, y.inner, y.bstride, n->attr.act, x.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_unary_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: unary '%s' needs an input",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
