/* Internal state and helpers shared by the CUDA backend's files (the .cu files in kernels/cuda).
 *
 * The C-visible part (the backend record, the per-op entry points, the check macros) is plain C
 * so the header stays C-compatible; the device helpers below it are compiled only by nvcc.
 *
 * Storage: every runtime value lives in one device arena, in the element type of the backend's
 * precision (float, __half or __nv_bfloat16), at plan->place[v].offset elements. A 4-D value may
 * be a channel slice of a concat output ("strided"): batch item n starts `batch_stride` elements
 * after item n-1. Constants are uploaded once in prepare as float (cf32) and, for the slots that
 * cuDNN/cuBLAS read, also in the arena element type (ct; the same buffer at fp32).
 *
 * Errors: every CUDA/cuDNN/cuBLAS call goes through HP_CU_CHECK / HP_CUDNN_CHECK /
 * HP_CUBLAS_CHECK, which records "file:line: call: message" on the backend and returns
 * HP_ERR_DEVICE from the calling function. Nothing here aborts. */
#ifndef HP_CUDA_INTERNAL_H
#define HP_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's headers carry no extern "C" guards of their own. */
#include "common/status.h"
#include "kernels/cuda/fast_divide.h"
#include "kernels/backend.h"
#include "models/graph.h"
#include "models/plan.h"

typedef struct hp_cu_profile hp_cu_profile; /* HP_CUDA_PROFILE (profile.cu) */

/* A conv algorithm choice remembered by shape, so identical convolutions search once. */
typedef struct {
    int64_t key[24];
    int algo;
    int math;
    size_t ws;
} hp_cu_algo_memo;

typedef struct {
    hp_backend base; /* first: the vtable's hp_backend* is this record */
    int device;
    int sm_count; /* multiprocessors: sizes grids that loop rather than cover every element */
    size_t esize; /* arena element size in bytes: 4, 2 or 2 */
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cublasHandle_t cublas;

    /* per prepared graph (released by hp_cu_release) */
    const hp_graph *g;
    const hp_plan *plan;
    char *arena;
    void **cf32;       /* per value: device float copy of a constant, or NULL */
    void **ct;         /* per value: device copy in the arena element type (== cf32 at fp32) */
    void **node_state; /* per node: op-private state (convolutions), or NULL */
    int n_cvals, n_states; /* lengths of the arrays above (the graph may be gone at release) */
    void *scratch;     /* shared scratch (explicit padding), scratch_bytes */
    size_t scratch_bytes;
    void *ws; /* cuDNN workspace, ws_bytes */
    size_t ws_bytes;
    float *stage_d; /* device float staging for inputs and outputs */
    float *stage_h; /* pinned host staging, same size */
    size_t stage_elems;
    uint8_t *rgb_d; /* device copy of 8-bit RGB tiles (run_rgb8), rgb_bytes; allocated on use */
    size_t rgb_bytes;
    hp_cu_algo_memo *memo;
    int n_memo, cap_memo;
    int cur_node;  /* node being enqueued, named in error messages; -1 outside nodes */
    int sync_each; /* HP_CUDA_SYNC=1: synchronize after every node (debugging device faults) */
    hp_cu_profile *prof; /* HP_CUDA_PROFILE=1: per-op device time; NULL when off */
} hp_cuda_backend;

/* A view of one value on the device, as generic kernels read and write it. */
typedef struct {
    void *p;     /* first element */
    int f32;     /* 1: stored as float (constants, or any value at fp32); 0: arena element type */
    int ndim;
    int64_t dims[HP_MAX_DIMS];
    int64_t numel;
    int64_t inner;   /* numel / dims[0] (numel for a scalar) */
    int64_t bstride; /* elements between batch items; == inner when contiguous */
} hp_cu_tensor;

/* Error recording, used by the check macros. Each returns HP_ERR_DEVICE. */
hp_status hp_cu_fail_cuda(hp_cuda_backend *b, const char *file, int line, const char *call, int e);
hp_status hp_cu_fail_cudnn(hp_cuda_backend *b, const char *file, int line, const char *call, int e);
hp_status hp_cu_fail_cublas(hp_cuda_backend *b, const char *file, int line, const char *call, int e);

#define HP_CU_CHECK(b, call)                                                                 \
    do {                                                                                     \
        cudaError_t hp_e_ = (call);                                                          \
        if (hp_e_ != cudaSuccess)                                                            \
            return hp_cu_fail_cuda((b), __FILE__, __LINE__, #call, (int)hp_e_);              \
    } while (0)
#define HP_CUDNN_CHECK(b, call)                                                              \
    do {                                                                                     \
        cudnnStatus_t hp_e_ = (call);                                                        \
        if (hp_e_ != CUDNN_STATUS_SUCCESS)                                                   \
            return hp_cu_fail_cudnn((b), __FILE__, __LINE__, #call, (int)hp_e_);             \
    } while (0)
#define HP_CUBLAS_CHECK(b, call)                                                             \
    do {                                                                                     \
        cublasStatus_t hp_e_ = (call);                                                       \
        if (hp_e_ != CUBLAS_STATUS_SUCCESS)                                                  \
            return hp_cu_fail_cublas((b), __FILE__, __LINE__, #call, (int)hp_e_);            \
    } while (0)
/* After a kernel launch: a bad configuration shows up here, a fault at the next sync. */
#define HP_CU_LAUNCHED(b) HP_CU_CHECK((b), cudaGetLastError())
/* Propagates a failed hp_status. */
#define HP_CU_TRY(expr)                                                                      \
    do {                                                                                     \
        hp_status hp_s_ = (expr);                                                            \
        if (hp_s_ != HP_OK)                                                                  \
            return hp_s_;                                                                    \
    } while (0)

/* Fills `t` for value `v` of the prepared graph. want_t: for a constant, point at the copy in
 * the arena element type (what cuDNN and cuBLAS read) instead of the float copy. */
hp_status hp_cu_tensor_of(hp_cuda_backend *b, int v, int want_t, hp_cu_tensor *t);

/* Copies src into dst elementwise (same numel), converting float <-> arena type as the f32
 * flags say and honouring both batch strides. Either may be a plain contiguous float buffer. */
hp_status hp_cu_copy(hp_cuda_backend *b, const hp_cu_tensor *src, const hp_cu_tensor *dst);

/* A contiguous tensor over a raw device buffer. */
void hp_cu_tensor_raw(hp_cu_tensor *t, void *p, int f32, int ndim, const int64_t *dims);

/* Grid size for a grid-stride loop over n items with 256 threads per block. */
unsigned hp_cu_blocks(int64_t n);

/* Per-op entry points (one file each). run functions enqueue on b->stream. */
hp_status hp_cu_conv_prepare(hp_cuda_backend *b, int node, size_t *scratch_need);
/* Chooses the algorithm (after arena, scratch and workspace exist); *ws_need: its workspace. */
hp_status hp_cu_conv_select(hp_cuda_backend *b, int node, size_t *ws_need);
hp_status hp_cu_conv_run(hp_cuda_backend *b, const hp_node *n, void *state);
void hp_cu_conv_release(void *state);

hp_status hp_cu_batchnorm_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_scale_shift_run(hp_cuda_backend *b, const hp_node *n);
/* y = act(x * scale[c] + shift[c]) over channel dim 1 (scale_shift.cu); scale or shift may be
 * NULL (1 or 0); x and y may be the same value (in place) and strided views. */
hp_status hp_cu_channel_affine(hp_cuda_backend *b, const hp_cu_tensor *x, const hp_cu_tensor *y,
                               const hp_cu_tensor *scale, const hp_cu_tensor *shift, hp_act act,
                               const char *name);
hp_status hp_cu_unary_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_binary_run(hp_cuda_backend *b, const hp_node *n); /* BINARY and PRELU */
hp_status hp_cu_pool_run(hp_cuda_backend *b, const hp_node *n);   /* MAXPOOL, AVGPOOL */
hp_status hp_cu_global_pool_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_concat_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_transpose_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_gemm_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_matmul_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_softmax_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_depth_to_space_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_resize_run(hp_cuda_backend *b, const hp_node *n);
hp_status hp_cu_pad_run(hp_cuda_backend *b, const hp_node *n);

/* Writes the [N,3,H,W] input `dst` from N tiles of interleaved 8-bit RGB on the device
 * (image_input.cu), each channel as value*scale[c] + bias[c]. */
hp_status hp_cu_rgb8_to_input(hp_cuda_backend *b, const uint8_t *rgb_d, const float scale[3],
                              const float bias[3], const hp_cu_tensor *dst);

/* HP_CUDA_PROFILE (profile.cu): from_env returns NULL when the variable is unset. A run calls
 * begin, mark(1) after the inputs, mark(2 + k) after node k, mark(n_nodes + 2) after the
 * outputs, and end once the stream is idle; report prints to stderr and frees the profile. */
hp_cu_profile *hp_cu_profile_from_env(void);
hp_status hp_cu_profile_begin(hp_cuda_backend *b);
hp_status hp_cu_profile_mark(hp_cuda_backend *b, int slot);
hp_status hp_cu_profile_end(hp_cuda_backend *b);
void hp_cu_profile_report(hp_cuda_backend *b);

/* cuDNN / cuBLAS element types for the backend's precision. */
cudnnDataType_t hp_cu_cudnn_type(const hp_cuda_backend *b);
cudaDataType_t hp_cu_blas_type(const hp_cuda_backend *b);

#ifdef __cplusplus
}
#endif

/* ---- device helpers (nvcc only) ------------------------------------------------------- */
#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define HP_CU_THREADS 256

template <typename T> __device__ __forceinline__ float hp_to_f(T v);
template <> __device__ __forceinline__ float hp_to_f<float>(float v) { return v; }
template <> __device__ __forceinline__ float hp_to_f<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float hp_to_f<__nv_bfloat16>(__nv_bfloat16 v)
{
    return __bfloat162float(v);
}

template <typename T> __device__ __forceinline__ T hp_from_f(float v);
template <> __device__ __forceinline__ float hp_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half hp_from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 hp_from_f<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

/* Element i of a buffer stored as float (f32) or as T. */
template <typename T>
__device__ __forceinline__ float hp_ld(const void *p, int f32, int64_t i)
{
    return f32 ? ((const float *)p)[i] : hp_to_f<T>(((const T *)p)[i]);
}
template <typename T> __device__ __forceinline__ void hp_st(void *p, int f32, int64_t i, float v)
{
    if (f32)
        ((float *)p)[i] = v;
    else
        ((T *)p)[i] = hp_from_f<T>(v);
}

/* Storage index of logical (contiguous NCHW) element i of a possibly strided value. */
__device__ __forceinline__ int64_t hp_addr(int64_t i, int64_t inner, int64_t bstride)
{
    return bstride == inner ? i : (i / inner) * bstride + i % inner;
}

/* The fused activations, written as the CPU reference writes them (NaN passes through). */
__device__ __forceinline__ float hp_act_apply(float x, const hp_act a)
{
    switch (a.kind) {
    case HP_ACT_RELU: return x < 0.f ? 0.f : x;
    case HP_ACT_LEAKY_RELU: return x < 0.f ? a.alpha * x : x;
    case HP_ACT_CLIP: return x < a.lo ? a.lo : (x > a.hi ? a.hi : x);
    case HP_ACT_SIGMOID:
        if (x >= 0.f)
            return 1.f / (1.f + expf(-x));
        else {
            float e = expf(x);
            return e / (1.f + e);
        }
    case HP_ACT_TANH: return tanhf(x);
    default: return x;
    }
}

#define HP_CU_LOOP(i, n)                                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                 \
         i += (int64_t)blockDim.x * gridDim.x)

/* Calls FN<T>(args...) for the backend's element type. */
#define HP_CU_DISPATCH(b, FN, ...)                                                           \
    do {                                                                                     \
        switch ((b)->base.precision) {                                                       \
        case HP_PREC_FP16: return FN<__half>(__VA_ARGS__);                                   \
        case HP_PREC_BF16: return FN<__nv_bfloat16>(__VA_ARGS__);                            \
        default: return FN<float>(__VA_ARGS__);                                              \
        }                                                                                    \
    } while (0)

#endif /* __CUDACC__ */

#endif
