/* The network input from 8-bit tiles, on the device: N tiles of interleaved RGB (HWC, as the
 * tile loader decodes them) become the [N,3,H,W] input, each channel mapped to
 * value*scale[c] + bias[c] (the model card's mean and std) and stored in the arena's element
 * type. The host then sends one byte per channel instead of four and spends no thread on
 * normalizing: at a few thousand tiles/s that conversion alone would occupy a core. */
#include "kernels/cuda/cuda_internal.h"

namespace {

struct affine3 {
    float scale[3], bias[3];
};

/* One thread per output element, in NCHW order so the writes are coalesced; the reads stride
 * by 3 bytes, which the L1 absorbs. */
template <typename T>
__global__ void rgb8_to_nchw(const uint8_t *__restrict__ rgb, void *dst, int f32, int64_t plane,
                             int64_t numel, int64_t inner, int64_t bstride, affine3 a)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < numel;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t n = i / (3 * plane), r = i - n * 3 * plane;
        int c = (int)(r / plane);
        int64_t p = r - c * plane;
        float v = (float)rgb[(n * plane + p) * 3 + c] * a.scale[c] + a.bias[c];
        hp_st<T>(dst, f32, hp_addr(i, inner, bstride), v);
    }
}

} // namespace

extern "C" hp_status hp_cu_rgb8_to_input(hp_cuda_backend *b, const uint8_t *rgb_d,
                                         const float scale[3], const float bias[3],
                                         const hp_cu_tensor *dst)
{
    if (dst->ndim != 4 || dst->dims[1] != 3)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: 8-bit RGB input needs an [N,3,H,W] graph input (rank %d, %lld "
                            "channels)", dst->ndim, dst->ndim > 1 ? (long long)dst->dims[1] : 0LL);
    affine3 a;
    for (int c = 0; c < 3; c++) {
        a.scale[c] = scale[c];
        a.bias[c] = bias[c];
    }
    int64_t plane = dst->dims[2] * dst->dims[3];
    unsigned grid = hp_cu_blocks(dst->numel);
    switch (b->base.precision) {
    case HP_PREC_FP16:
        rgb8_to_nchw<__half><<<grid, HP_CU_THREADS, 0, b->stream>>>(
            rgb_d, dst->p, dst->f32, plane, dst->numel, dst->inner, dst->bstride, a);
        break;
    case HP_PREC_BF16:
        rgb8_to_nchw<__nv_bfloat16><<<grid, HP_CU_THREADS, 0, b->stream>>>(
            rgb_d, dst->p, dst->f32, plane, dst->numel, dst->inner, dst->bstride, a);
        break;
    default:
        rgb8_to_nchw<float><<<grid, HP_CU_THREADS, 0, b->stream>>>(
            rgb_d, dst->p, dst->f32, plane, dst->numel, dst->inner, dst->bstride, a);
        break;
    }
    HP_CU_LAUNCHED(b);
    return HP_OK;
}
