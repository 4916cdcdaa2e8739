/* Transpose with attr.perm (output axis j is input axis perm[j]), any rank up to HP_MAX_DIMS. */
#include "kernels/cuda/cuda_internal.h"

typedef struct {
    int nd;
    int64_t od[HP_MAX_DIMS]; /* output dims */
    int64_t is[HP_MAX_DIMS]; /* input stride of output axis j */
} perm_geom;

template <typename T>
__global__ void k_transpose(const void *x, int xf32, void *y, int yf32, perm_geom p,
                            int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t r = i, at = 0;
        for (int d = p.nd - 1; d >= 0; d--) {
            at += (r % p.od[d]) * p.is[d];
            r /= p.od[d];
        }
        hp_st<T>(y, yf32, i, hp_ld<T>(x, xf32, at));
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.ndim != y.ndim || x.numel != y.numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: transpose '%s': input and output shapes disagree", n->name);
    int64_t xs[HP_MAX_DIMS];
    int64_t s = 1;
    for (int d = x.ndim - 1; d >= 0; d--) {
        xs[d] = s;
        s *= x.dims[d];
    }
    perm_geom p;
    p.nd = y.ndim;
    int seen = 0;
    for (int j = 0; j < y.ndim; j++) {
        int a = n->attr.perm[j];
        if (a < 0 || a >= x.ndim || (seen & (1 << a)) || x.dims[a] != y.dims[j])
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: transpose '%s': bad permutation", n->name);
        seen |= 1 << a;
        p.od[j] = y.dims[j];
        p.is[j] = xs[a];
    }
    if (y.numel == 0)
        return HP_OK;
    k_transpose<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(x.p, x.f32, y.p,
                                                                              y.f32, p, y.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_transpose_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: transpose '%s' needs an input",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
