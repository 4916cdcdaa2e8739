/* ScaleShift (a folded BatchNorm): y = act(x * scale[c] + shift[c]), channel on dim 1. X and Y
 * may be strided 4-D views (DenseNet's BN-ReLU on concat outputs). The same per-channel affine
 * map adds a convolution's bias and applies its activation (conv2d.cu). */
#include "kernels/cuda/cuda_internal.h"

/* Large planes (>= 1024 elements): one (n, c) plane per blockIdx.x, its run split over
 * blockIdx.y, so the channel's scale and shift are read once and no element divides. */
template <typename T>
__global__ void k_scale_shift_planes(const void *x, int xf32, int64_t xbs, void *y, int yf32,
                                     int64_t ybs, const void *sc, int sf32, const void *sh,
                                     int hf32, int64_t spatial, unsigned C, hp_act act)
{
    unsigned plane = blockIdx.x, n = plane / C, c = plane - n * C;
    int64_t xo = (int64_t)n * xbs + (int64_t)c * spatial, yo = (int64_t)n * ybs + (int64_t)c * spatial;
    float s = sc ? hp_ld<T>(sc, sf32, c) : 1.f, h = sh ? hp_ld<T>(sh, hf32, c) : 0.f;
    for (int64_t j = (int64_t)blockIdx.y * blockDim.x + threadIdx.x; j < spatial;
         j += (int64_t)gridDim.y * blockDim.x)
        hp_st<T>(y, yf32, yo + j, hp_act_apply(hp_ld<T>(x, xf32, xo + j) * s + h, act));
}

/* Small planes (DenseNet's 7x7 to 28x28, where a block per plane would idle): batch items over
 * blockIdx.y, threads walking the item's C*spatial run, the channel from a fast division. (The
 * first version split a flat 64-bit index with four divisions per element and, in DenseNet-121
 * at fp16, took as long as all the convolutions together.) */
template <typename T>
__global__ void k_scale_shift_items(const void *x, int xf32, int64_t xbs, void *y, int yf32,
                                    int64_t ybs, const void *sc, int sf32, const void *sh,
                                    int hf32, hp_fast_div spatial, uint32_t inner, uint32_t N,
                                    hp_act act)
{
    for (uint32_t n = blockIdx.y; n < N; n += gridDim.y) {
        const int64_t xo = (int64_t)n * xbs, yo = (int64_t)n * ybs;
        for (int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; j < inner;
             j += (int64_t)gridDim.x * blockDim.x) {
            uint32_t c = hp_fast_div_q(spatial, (uint32_t)j);
            float v = hp_ld<T>(x, xf32, xo + j) * (sc ? hp_ld<T>(sc, sf32, c) : 1.f) +
                      (sh ? hp_ld<T>(sh, hf32, c) : 0.f);
            hp_st<T>(y, yf32, yo + j, hp_act_apply(v, act));
        }
    }
}

template <typename T>
static hp_status affine(hp_cuda_backend *b, const hp_cu_tensor *x, const hp_cu_tensor *y,
                        const hp_cu_tensor *sc, const hp_cu_tensor *sh, hp_act act,
                        const char *name)
{
    if (x->ndim < 2 || x->numel != y->numel)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: '%s': a per-channel map needs rank >= 2 and equal input and "
                            "output sizes", name);
    int64_t C = x->dims[1];
    if ((sc && sc->numel != C) || (sh && sh->numel != C))
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: '%s': scale and shift need %lld elements", name, (long long)C);
    if (x->numel == 0 || C == 0 || x->inner / C == 0)
        return HP_OK;
    const void *scp = sc ? sc->p : NULL, *shp = sh ? sh->p : NULL;
    int scf = sc ? sc->f32 : 1, shf = sh ? sh->f32 : 1;
    int64_t spatial = x->inner / C, N = x->dims[0], planes = N * C;
    if (spatial < 1024 && x->inner <= 0xffffffffLL) {
        /* about 16 blocks per multiprocessor in all; each thread then walks several elements */
        int64_t per_item = (x->inner + HP_CU_THREADS - 1) / HP_CU_THREADS;
        int64_t want = (int64_t)b->sm_count * 16 / (N < 65535 ? N : 65535);
        dim3 grid((unsigned)(per_item < want ? per_item : (want > 0 ? want : 1)),
                  (unsigned)(N < 65535 ? N : 65535));
        k_scale_shift_items<T><<<grid, HP_CU_THREADS, 0, b->stream>>>(
            x->p, x->f32, x->bstride, y->p, y->f32, y->bstride, scp, scf, shp, shf,
            hp_fast_div_make((uint32_t)spatial), (uint32_t)x->inner, (uint32_t)N, act);
    } else {
        if (planes > 0x7fffffff)
            return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                                "cuda: '%s': %lld channel planes (at most 2^31 - 1)", name,
                                (long long)planes);
        int64_t chunks = (spatial + HP_CU_THREADS - 1) / HP_CU_THREADS;
        dim3 grid((unsigned)planes, (unsigned)(chunks < 65535 ? chunks : 65535));
        k_scale_shift_planes<T><<<grid, HP_CU_THREADS, 0, b->stream>>>(
            x->p, x->f32, x->bstride, y->p, y->f32, y->bstride, scp, scf, shp, shf, spatial,
            (unsigned)C, act);
    }
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_channel_affine(hp_cuda_backend *b, const hp_cu_tensor *x,
                                          const hp_cu_tensor *y, const hp_cu_tensor *scale,
                                          const hp_cu_tensor *shift, hp_act act, const char *name)
{
    HP_CU_DISPATCH(b, affine, b, x, y, scale, shift, act, name);
}

extern "C" hp_status hp_cu_scale_shift_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 3 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0 || n->in[2] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: scale-shift '%s' needs X, scale and shift", n->name);
    hp_cu_tensor x, y, sc, sh;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 0, &sc));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[2], 0, &sh));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    return hp_cu_channel_affine(b, &x, &y, &sc, &sh, n->attr.act, n->name);
}
