/* GlobalAveragePool / GlobalMaxPool: one block per (n, c) reduces every element after dim 1
 * (a channel's elements are contiguous even inside a strided view). Accumulates in float. Max
 * propagates NaN, as in the CPU reference. */
#include "kernels/cuda/cuda_internal.h"

/* max(m, v) propagating NaN: kernels/cpu/cpu_internal.h's hp_cpu_max_nan. */
static __device__ __forceinline__ float max_nan(float m, float v)
{
    return (v > m || v != v) ? v : m;
}

template <typename T>
__global__ void k_global_pool(const void *x, int xf32, int64_t xbs, void *y, int yf32,
                              int64_t ybs, int64_t C, int64_t S, int is_max, int64_t rows)
{
    __shared__ float red[HP_CU_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t nn = r / C, c = r % C;
        const int64_t base = nn * xbs + c * S;
        float acc = is_max ? -INFINITY : 0.f;
        for (int64_t s = threadIdx.x; s < S; s += blockDim.x) {
            float v = hp_ld<T>(x, xf32, base + s);
            if (is_max)
                acc = max_nan(acc, v);
            else
                acc += v;
        }
        red[threadIdx.x] = acc;
        __syncthreads();
        for (int k = blockDim.x / 2; k > 0; k >>= 1) {
            if ((int)threadIdx.x < k) {
                float o = red[threadIdx.x + k], m = red[threadIdx.x];
                if (is_max)
                    red[threadIdx.x] = max_nan(m, o);
                else
                    red[threadIdx.x] = m + o;
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            float v = red[0];
            if (!is_max)
                v = S > 0 ? v / (float)S : 0.f;
            hp_st<T>(y, yf32, nn * ybs + c, v);
        }
        __syncthreads();
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    if (x.ndim < 2 || y.numel != x.dims[0] * x.dims[1])
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: global pool '%s': output must be N x C", n->name);
    int64_t C = x.dims[1], rows = x.dims[0] * C;
    if (rows == 0)
        return HP_OK;
    int64_t S = C > 0 ? x.inner / C : 0;
    int64_t blocks = rows < (1 << 20) ? rows : (1 << 20);
    /* y's batch stride: C for a contiguous N x C x 1 x 1, more inside a concat slice */
    k_global_pool<T><<<(unsigned)blocks, HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, x.bstride, y.p, y.f32, y.bstride, C, S, n->op == HP_OP_GLOBAL_MAXPOOL, rows);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_global_pool_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: global pool '%s' needs an input", n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
