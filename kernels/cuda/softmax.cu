/* Softmax along one axis, or (legacy, opset < 13) over the input coerced to 2-D at the axis:
 * over every element from the axis on. One thread per row; float accumulation. */
#include "kernels/cuda/cuda_internal.h"

template <typename T>
__global__ void k_softmax(const void *x, int xf32, void *y, int yf32, int64_t len,
                          int64_t inner, int64_t rows)
{
    HP_CU_LOOP(r, rows)
    {
        int64_t o = r / inner, ii = r % inner;
        const int64_t base = o * len * inner + ii;
        float m = -INFINITY;
        for (int64_t k = 0; k < len; k++) {
            float v = hp_ld<T>(x, xf32, base + k * inner);
            m = v > m ? v : m;
        }
        float s = 0.f;
        for (int64_t k = 0; k < len; k++)
            s += expf(hp_ld<T>(x, xf32, base + k * inner) - m);
        const float inv = 1.f / s;
        for (int64_t k = 0; k < len; k++)
            hp_st<T>(y, yf32, base + k * inner, expf(hp_ld<T>(x, xf32, base + k * inner) - m) * inv);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.numel != y.numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: softmax '%s': sizes differ",
                            n->name);
    int axis = n->attr.softmax.axis;
    if (axis < 0)
        axis += x.ndim;
    if (x.ndim == 0)
        axis = 0;
    else if (axis < 0 || axis >= x.ndim)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: softmax '%s': axis %d", n->name,
                            n->attr.softmax.axis);
    int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= x.dims[d];
    if (n->attr.softmax.legacy) {
        for (int d = axis; d < x.ndim; d++)
            len *= x.dims[d];
    } else if (x.ndim > 0) {
        len = x.dims[axis];
        for (int d = axis + 1; d < x.ndim; d++)
            inner *= x.dims[d];
    }
    int64_t rows = outer * inner;
    if (rows == 0 || len == 0)
        return HP_OK;
    k_softmax<T><<<hp_cu_blocks(rows), HP_CU_THREADS, 0, b->stream>>>(x.p, x.f32, y.p, y.f32,
                                                                         len, inner, rows);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_softmax_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: softmax '%s' needs an input",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
