/* MatMul with numpy semantics: 1-D operands are promoted (and the added dim dropped from the
 * result), batch dims broadcast. One strided-batched cuBLAS call when each operand's batch is
 * either the whole output batch or a single matrix, one call per output matrix otherwise. */
#include "kernels/cuda/cuda_internal.h"

#include <limits.h>

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor A, B, Y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 1, &A));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 1, &B));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &Y));
    if (A.ndim < 1 || B.ndim < 1)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: matmul '%s': scalar operands", n->name);
    int64_t M = A.ndim >= 2 ? A.dims[A.ndim - 2] : 1, K = A.dims[A.ndim - 1];
    int64_t K2 = B.ndim >= 2 ? B.dims[B.ndim - 2] : B.dims[0];
    int64_t N = B.ndim >= 2 ? B.dims[B.ndim - 1] : 1;
    if (K != K2)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: matmul '%s': inner dimensions %lld and %lld differ", n->name,
                            (long long)K, (long long)K2);
    /* batch dims, right-aligned and broadcast */
    int ab = A.ndim > 2 ? A.ndim - 2 : 0, bb = B.ndim > 2 ? B.ndim - 2 : 0;
    int ob = ab > bb ? ab : bb;
    int64_t od[HP_MAX_DIMS], as[HP_MAX_DIMS], bs[HP_MAX_DIMS];
    int64_t sa = 1, sb = 1, batch = 1;
    int a_full = 1, b_full = 1;
    int64_t a_count = 1, b_count = 1;
    for (int d = ob - 1; d >= 0; d--) {
        int ia = d - (ob - ab), ib = d - (ob - bb);
        int64_t da = ia >= 0 ? A.dims[ia] : 1, db = ib >= 0 ? B.dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return hp_error_set(&b->base.err, HP_ERR_INVALID,
                                "cuda: matmul '%s': batch dims do not broadcast", n->name);
        od[d] = da > db ? da : db;
        as[d] = da == 1 ? 0 : sa;
        bs[d] = db == 1 ? 0 : sb;
        sa *= da;
        sb *= db;
        a_count *= da;
        b_count *= db;
        batch *= od[d];
    }
    a_full = a_count == batch;
    b_full = b_count == batch;
    int64_t expect = batch * M * N;
    if (Y.numel != expect)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: matmul '%s': output has %lld elements, expected %lld", n->name,
                            (long long)Y.numel, (long long)expect);
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX || batch > INT_MAX)
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: matmul '%s': a dimension exceeds cuBLAS's int range", n->name);
    if (Y.numel == 0)
        return HP_OK;
    if (K == 0) {
        HP_CU_CHECK(b, cudaMemsetAsync(Y.p, 0, (size_t)Y.numel * b->esize, b->stream));
        return HP_OK;
    }
    cudaDataType_t dt = hp_cu_blas_type(b);
    const float one = 1.f, zero = 0.f;
    const int64_t mA = M * K, mB = K * N, mY = M * N;
    if ((a_full || a_count == 1) && (b_full || b_count == 1)) {
        HP_CUBLAS_CHECK(b, cublasGemmStridedBatchedEx(
                               b->cublas, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M, (int)K, &one,
                               B.p, dt, (int)N, b_count == 1 ? 0 : mB, A.p, dt, (int)K,
                               a_count == 1 ? 0 : mA, &zero, Y.p, dt, (int)N, mY, (int)batch,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        return HP_OK;
    }
    for (int64_t i = 0; i < batch; i++) {
        int64_t r = i, ia = 0, ib = 0;
        for (int d = ob - 1; d >= 0; d--) {
            int64_t c = r % od[d];
            r /= od[d];
            ia += c * as[d];
            ib += c * bs[d];
        }
        const T *pa = (const T *)A.p + ia * mA;
        const T *pb = (const T *)B.p + ib * mB;
        T *py = (T *)Y.p + i * mY;
        HP_CUBLAS_CHECK(b, cublasGemmEx(b->cublas, CUBLAS_OP_N, CUBLAS_OP_N, (int)N, (int)M,
                                        (int)K, &one, pb, dt, (int)N, pa, dt, (int)K, &zero, py,
                                        dt, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    return HP_OK;
}

extern "C" hp_status hp_cu_matmul_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 2 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: matmul '%s' needs A and B",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
