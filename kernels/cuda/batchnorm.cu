/* BatchNormalization (inference): y = (x - mean[c]) / sqrt(var[c] + eps) * scale[c] + B[c],
 * channel on dim 1, any rank >= 2. Parameters may be constants (read as float) or runtime
 * values (read in the arena type). X and Y may be strided 4-D views. */
#include "kernels/cuda/cuda_internal.h"

typedef struct {
    const void *p[4]; /* scale, B, mean, var */
    int f32[4];
} bn_params;

template <typename T>
__global__ void k_batchnorm(const void *x, int xf32, int64_t xinner, int64_t xbs, void *y,
                            int yf32, int64_t yinner, int64_t ybs, bn_params prm, int64_t spatial,
                            int64_t C, float eps, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t c = (i % xinner) / spatial % C;
        float v = hp_ld<T>(x, xf32, hp_addr(i, xinner, xbs));
        float sc = hp_ld<T>(prm.p[0], prm.f32[0], c);
        float bi = hp_ld<T>(prm.p[1], prm.f32[1], c);
        float mu = hp_ld<T>(prm.p[2], prm.f32[2], c);
        float va = hp_ld<T>(prm.p[3], prm.f32[3], c);
        hp_st<T>(y, yf32, hp_addr(i, yinner, ybs), (v - mu) / sqrtf(va + eps) * sc + bi);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y, p[4];
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.ndim < 2 || x.numel != y.numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: batchnorm '%s' needs rank >= 2 and equal X and Y sizes",
                            n->name);
    int64_t C = x.dims[1];
    bn_params prm;
    for (int i = 0; i < 4; i++) {
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[1 + i], 0, &p[i]));
        if (p[i].numel != C)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: batchnorm '%s': parameter %d has %lld elements, not %lld",
                                n->name, i + 1, (long long)p[i].numel, (long long)C);
        prm.p[i] = p[i].p;
        prm.f32[i] = p[i].f32;
    }
    if (x.numel == 0 || C == 0)
        return HP_OK;
    int64_t spatial = x.inner / C;
    if (spatial == 0)
        return HP_OK;
    k_batchnorm<T><<<hp_cu_blocks(x.numel), HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, x.inner, x.bstride, y.p, y.f32, y.inner, y.bstride, prm, spatial, C,
        n->attr.bn_epsilon, x.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_batchnorm_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 5 || n->n_out < 1)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: batchnorm '%s' needs X, scale, B, mean and var", n->name);
    for (int i = 0; i < 5; i++)
        if (n->in[i] < 0)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: batchnorm '%s': input %d is missing", n->name, i);
    HP_CU_DISPATCH(b, launch, b, n);
}
