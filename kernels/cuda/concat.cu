/* Concat along any axis. Inputs that the plan placed inside their slice of the output
 * (hp_plan_concat_input_in_place) were written there by their producers and are skipped; the
 * rest are copied. Inputs and output may be strided 4-D views (batch stride), constants are
 * read as float. */
#include "kernels/cuda/cuda_internal.h"

/* Input element (n, r), r < inner_in, with r = (o * ai + a) * inner + i, goes to output
 * (n + nb_off) * obs + (o * at + a_off + a) * inner + i. */
template <typename T>
__global__ void k_concat_copy(const void *x, int xf32, int64_t x_inner, int64_t xbs, void *y,
                              int64_t ybs, int64_t ai, int64_t at, int64_t a_off, int64_t inner,
                              int64_t nb_off, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t nn = i / x_inner, r = i % x_inner;
        int64_t ii = r % inner, t = r / inner;
        int64_t a = t % ai, o = t / ai;
        float v = hp_ld<T>(x, xf32, nn * xbs + r);
        ((T *)y)[(nn + nb_off) * ybs + (o * at + a_off + a) * inner + ii] = hp_from_f<T>(v);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    int axis = n->attr.axis;
    if (axis < 0 || axis >= y.ndim)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: concat '%s': axis %d", n->name,
                            axis);
    int64_t inner = 1;
    for (int d = axis + 1; d < y.ndim; d++)
        inner *= y.dims[d];
    int64_t at = y.dims[axis], a_off = 0;
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0)
            continue;
        hp_cu_tensor x;
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[k], 0, &x));
        if (x.ndim != y.ndim)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: concat '%s': input %d has rank %d, output %d", n->name, k,
                                x.ndim, y.ndim);
        int64_t ai = x.dims[axis];
        if (a_off + ai > at)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: concat '%s': inputs exceed the output along axis %d",
                                n->name, axis);
        if (x.numel > 0 && !hp_plan_concat_input_in_place(b->g, b->plan, n, k)) {
            int64_t nb_off = 0, ai_k = ai, at_k = at, aoff_k = a_off, inner_k = inner;
            if (axis == 0) {
                /* whole batch items move: item n goes to item n + a_off */
                nb_off = a_off;
                ai_k = at_k = 1;
                aoff_k = 0;
                inner_k = x.inner;
            }
            k_concat_copy<T><<<hp_cu_blocks(x.numel), HP_CU_THREADS, 0, b->stream>>>(
                x.p, x.f32, x.inner, x.bstride, y.p, y.bstride, ai_k, at_k, aoff_k, inner_k,
                nb_off, x.numel);
            HP_CU_LAUNCHED(b);
        }
        a_off += ai;
    }
    if (a_off != at)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: concat '%s': inputs cover %lld of %lld along axis %d", n->name,
                            (long long)a_off, (long long)at, axis);
    return HP_OK;
}

extern "C" hp_status hp_cu_concat_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_out < 1)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: concat '%s' has no output",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
