/* Pad: constant, reflect or edge over any rank; pads are all begins then all ends and may be
 * negative (cropping). */
#include "kernels/cuda/cuda_internal.h"

typedef struct {
    int nd;
    int64_t id[HP_MAX_DIMS], od[HP_MAX_DIMS], begin[HP_MAX_DIMS];
} pad_geom;

template <typename T>
__global__ void k_pad(const void *x, int xf32, void *y, int yf32, pad_geom p, int mode,
                      float value, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t r = i, at = 0, s = 1;
        int inside = 1;
        for (int d = p.nd - 1; d >= 0; d--) {
            int64_t L = p.id[d];
            int64_t c = r % p.od[d] - p.begin[d];
            r /= p.od[d];
            if (c < 0 || c >= L) {
                if (mode == HP_PAD_CONSTANT || L <= 0) {
                    inside = 0;
                } else if (mode == HP_PAD_EDGE) {
                    c = c < 0 ? 0 : L - 1;
                } else if (L == 1) {
                    c = 0;
                } else {
                    /* reflect without repeating the edge, period 2(L-1) */
                    int64_t per = 2 * (L - 1);
                    c = c % per;
                    if (c < 0)
                        c += per;
                    if (c >= L)
                        c = per - c;
                }
            }
            at += c * s;
            s *= L;
        }
        hp_st<T>(y, yf32, i, inside ? hp_ld<T>(x, xf32, at) : value);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.ndim != y.ndim)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: pad '%s': ranks differ",
                            n->name);
    const hp_pad_attr *a = &n->attr.pad;
    pad_geom p;
    p.nd = x.ndim;
    for (int d = 0; d < x.ndim; d++) {
        p.id[d] = x.dims[d];
        p.od[d] = y.dims[d];
        p.begin[d] = a->pads[d];
        if (x.dims[d] + a->pads[d] + a->pads[d + x.ndim] != y.dims[d])
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: pad '%s': pads do not give the output shape on axis %d",
                                n->name, d);
    }
    if (y.numel == 0)
        return HP_OK;
    if (x.numel == 0 && a->mode != HP_PAD_CONSTANT)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: pad '%s': reflect/edge padding of an empty tensor", n->name);
    k_pad<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, y.p, y.f32, p, (int)a->mode, a->value, y.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_pad_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: pad '%s' needs an input",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
