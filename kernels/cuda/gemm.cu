/* Gemm: Y = alpha * op(A) op(B) + beta * C, C broadcast to (M, N), on cuBLAS. Row-major
 * operands are handed to column-major cuBLAS as the transposed problem Y^T = op(B)^T op(A)^T.
 * Accumulates in fp32 (CUBLAS_COMPUTE_32F; pedantic math at fp32, so no TF32). */
#include "kernels/cuda/cuda_internal.h"

#include <limits.h>

/* Y[m, n] = C[m * rs + n * cs] */
template <typename T>
__global__ void k_fill_c(const void *c, int cf32, int64_t rs, int64_t cs, T *y, int64_t N,
                         int64_t total)
{
    HP_CU_LOOP(i, total) y[i] = hp_from_f<T>(hp_ld<T>(c, cf32, (i / N) * rs + (i % N) * cs));
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor A, B, Y, C;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 1, &A));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 1, &B));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &Y));
    const hp_gemm_attr *a = &n->attr.gemm;
    if (A.ndim != 2 || B.ndim != 2 || Y.ndim != 2)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: gemm '%s' needs 2-D operands",
                            n->name);
    int64_t M = a->trans_a ? A.dims[1] : A.dims[0], K = a->trans_a ? A.dims[0] : A.dims[1];
    int64_t K2 = a->trans_b ? B.dims[1] : B.dims[0], N = a->trans_b ? B.dims[0] : B.dims[1];
    if (K != K2 || Y.dims[0] != M || Y.dims[1] != N)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: gemm '%s': operand shapes disagree", n->name);
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || A.dims[1] > INT_MAX || B.dims[1] > INT_MAX)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: gemm '%s': a dimension exceeds cuBLAS's int range", n->name);
    if (Y.numel == 0)
        return HP_OK;
    float alpha = a->alpha, beta = 0.f;
    int has_c = n->n_in > 2 && n->in[2] >= 0 && a->beta != 0.f;
    if (has_c) {
        HP_CU_TRY(hp_cu_tensor_of(b, n->in[2], 0, &C));
        if (C.ndim > 2)
            return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: gemm '%s': C has rank %d",
                                n->name, C.ndim);
        int64_t c0 = C.ndim == 2 ? C.dims[0] : 1, c1 = C.ndim >= 1 ? C.dims[C.ndim - 1] : 1;
        if ((c0 != 1 && c0 != M) || (c1 != 1 && c1 != N))
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: gemm '%s': C does not broadcast to %lldx%lld", n->name,
                                (long long)M, (long long)N);
        k_fill_c<T><<<hp_cu_blocks(Y.numel), HP_CU_THREADS, 0, b->stream>>>(
            C.p, C.f32, c0 == 1 ? 0 : c1, c1 == 1 ? 0 : 1, (T *)Y.p, N, Y.numel);
        HP_CU_LAUNCHED(b);
        beta = a->beta;
    }
    cudaDataType_t dt = hp_cu_blas_type(b);
    if (K == 0) {
        /* an empty sum: Y = beta * C, which cuBLAS may not handle for k = 0 */
        if (!has_c)
            HP_CU_CHECK(b, cudaMemsetAsync(Y.p, 0, (size_t)Y.numel * b->esize, b->stream));
        else if (beta != 1.f)
            return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                                "cuda: gemm '%s' with K = 0 and beta != 1", n->name);
        return HP_OK;
    }
    HP_CUBLAS_CHECK(b, cublasGemmEx(b->cublas, a->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                    a->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                    &alpha, B.p, dt, (int)B.dims[1], A.p, dt, (int)A.dims[1],
                                    &beta, Y.p, dt, (int)N, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
    return HP_OK;
}

extern "C" hp_status hp_cu_gemm_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 2 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: gemm '%s' needs A and B",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
