/* Stain normalization kernel: one thread per pixel of a device batch of RGB8 pixels, running
 * the per-pixel arithmetic of kernels/stain_pixel.h, as hp_stain_normalize_cpu does. The
 * normalizer (a few dozen floats) travels by value as a kernel parameter. Every CUDA call is
 * checked and reported with file and line on the caller's hp_error. */
#include <cuda_runtime_api.h>

#include "kernels/cuda/stain_normalize.h"
#include "kernels/stain_pixel.h"

#define HP_STAIN_CU(err, call)                                                                \
    do {                                                                                      \
        cudaError_t hp_e_ = (call);                                                           \
        if (hp_e_ != cudaSuccess) {                                                           \
            st = hp_error_set((err), HP_ERR_DEVICE, "%s:%d: %s: %s", __FILE__, __LINE__, #call, \
                              cudaGetErrorString(hp_e_));                                     \
            goto fail;                                                                        \
        }                                                                                     \
    } while (0)

static const int block_threads = 256;

__global__ void stain_macenko_kernel(hp_stain_normalizer n, const uint8_t *src, uint8_t *dst,
                                     size_t npix)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (; i < npix; i += stride) {
        float od[3] = {hp_stain_od(src[3 * i]), hp_stain_od(src[3 * i + 1]),
                       hp_stain_od(src[3 * i + 2])};
        uint8_t out[3];
        hp_stain_macenko_pixel(n.m, od, out);
        dst[3 * i] = out[0];
        dst[3 * i + 1] = out[1];
        dst[3 * i + 2] = out[2];
    }
}

__global__ void stain_reinhard_kernel(hp_stain_normalizer n, const uint8_t *src, uint8_t *dst,
                                      size_t npix)
{
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t stride = (size_t)gridDim.x * blockDim.x;
    for (; i < npix; i += stride) {
        float lin[3];
        for (int c = 0; c < 3; c++)
            lin[c] = hp_stain_srgb_to_linear((float)src[3 * i + c] / 255.0f);
        uint8_t out[3];
        hp_stain_reinhard_pixel(n.gain, n.offset, lin, out);
        dst[3 * i] = out[0];
        dst[3 * i + 1] = out[1];
        dst[3 * i + 2] = out[2];
    }
}

extern "C" hp_status hp_stain_normalize_cuda(const hp_stain_normalizer *n, const uint8_t *d_src,
                                             uint8_t *d_dst, size_t npix, void *stream,
                                             hp_error *err)
{
    hp_status st = HP_OK;
    if (!n || (npix && (!d_src || !d_dst)))
        return hp_error_set(err, HP_ERR_INVALID, "stain normalize (CUDA): NULL argument");
    if (n->method != HP_STAIN_MACENKO && n->method != HP_STAIN_REINHARD)
        return hp_error_set(err, HP_ERR_INVALID,
                            "stain normalize (CUDA): the normalizer was not initialized (method %d)",
                            (int)n->method);
    if (npix == 0)
        return HP_OK;
    {
        /* grid-stride loop: a few waves of blocks cover any batch */
        size_t want = (npix + block_threads - 1) / block_threads;
        unsigned blocks = (unsigned)(want < 65535 ? want : 65535);
        cudaStream_t s = (cudaStream_t)stream;
        if (n->method == HP_STAIN_MACENKO)
            stain_macenko_kernel<<<blocks, block_threads, 0, s>>>(*n, d_src, d_dst, npix);
        else
            stain_reinhard_kernel<<<blocks, block_threads, 0, s>>>(*n, d_src, d_dst, npix);
        HP_STAIN_CU(err, cudaGetLastError());
    }
fail:
    return st;
}

extern "C" hp_status hp_stain_normalize_cuda_host(const hp_stain_normalizer *n,
                                                  const uint8_t *src, uint8_t *dst, size_t npix,
                                                  hp_error *err)
{
    hp_status st = HP_OK;
    uint8_t *d = NULL;
    size_t bytes = npix * 3;
    if (!n || (npix && (!src || !dst)))
        return hp_error_set(err, HP_ERR_INVALID, "stain normalize (CUDA): NULL argument");
    if (npix > ((size_t)-1) / 3)
        return hp_error_set(err, HP_ERR_INVALID, "stain normalize (CUDA): batch too large");
    if (npix == 0)
        return HP_OK;
    HP_STAIN_CU(err, cudaMalloc((void **)&d, bytes));
    HP_STAIN_CU(err, cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice));
    st = hp_stain_normalize_cuda(n, d, d, npix, NULL, err);
    if (st != HP_OK)
        goto fail;
    HP_STAIN_CU(err, cudaDeviceSynchronize());
    HP_STAIN_CU(err, cudaMemcpy(dst, d, bytes, cudaMemcpyDeviceToHost));
fail:
    if (d) {
        cudaError_t e = cudaFree(d);
        if (e != cudaSuccess && st == HP_OK)
            st = hp_error_set(err, HP_ERR_DEVICE, "%s:%d: cudaFree: %s", __FILE__, __LINE__,
                              cudaGetErrorString(e));
    }
    return st;
}
