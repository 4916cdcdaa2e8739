/* Elementwise copy between two views of the same element count, converting float <-> the
 * arena element type and honouring batch strides on either side. Moves graph inputs into the
 * arena, outputs out of it, and backs ALIAS when the planner could not share storage. */
#include "kernels/cuda/cuda_internal.h"

template <typename T>
__global__ void k_copy(const void *src, int sf32, int64_t s_inner, int64_t s_bs, void *dst,
                       int df32, int64_t d_inner, int64_t d_bs, int64_t n)
{
    HP_CU_LOOP(i, n)
    {
        float v = hp_ld<T>(src, sf32, hp_addr(i, s_inner, s_bs));
        hp_st<T>(dst, df32, hp_addr(i, d_inner, d_bs), v);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_cu_tensor *s,
                                              const hp_cu_tensor *d)
{
    k_copy<T><<<hp_cu_blocks(s->numel), HP_CU_THREADS, 0, b->stream>>>(
        s->p, s->f32, s->inner, s->bstride, d->p, d->f32, d->inner, d->bstride, s->numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_copy(hp_cuda_backend *b, const hp_cu_tensor *src,
                                const hp_cu_tensor *dst)
{
    if (src->numel != dst->numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: copy between %lld and %lld elements", (long long)src->numel,
                            (long long)dst->numel);
    if (src->numel == 0)
        return HP_OK;
    if (src->inner <= 0 || dst->inner <= 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: copy of an empty batch item");
    HP_CU_DISPATCH(b, launch, b, src, dst);
}
