/* Gemm: Y = alpha * op(A) * op(B) + beta * C, A and B 2-D, C optional and unidirectionally
 * broadcastable to (M, N). Fast path: SGEMM over fixed blocks of rows, then beta*C. */
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

#define HP_GEMM_ROWS 64

typedef struct {
    const float *a, *b, *cm;
    float *y;
    int64_t M, N, K, cs_m, cs_n;
    float alpha, beta;
    int ta, tb;
} gemm_job;

static void gemm_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const gemm_job *j = arg;
    int64_t r0 = task * HP_GEMM_ROWS, mb = j->M - r0 < HP_GEMM_ROWS ? j->M - r0 : HP_GEMM_ROWS;
    float *y = j->y + r0 * j->N;
    if (j->K == 0) {
        memset(y, 0, (size_t)(mb * j->N) * sizeof(float));
    } else {
        const float *a = j->ta ? j->a + r0 : j->a + r0 * j->K;
        cblas_sgemm(CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans, j->tb ? CblasTrans : CblasNoTrans,
                    (int)mb, (int)j->N, (int)j->K, j->alpha, a, (int)(j->ta ? j->M : j->K), j->b,
                    (int)(j->tb ? j->K : j->N), 0.0f, y, (int)j->N);
    }
    if (j->cm && j->beta != 0.0f)
        for (int64_t r = 0; r < mb; r++) {
            const float *cr = j->cm + (r0 + r) * j->cs_m;
            float *yr = y + r * j->N;
            for (int64_t q = 0; q < j->N; q++)
                yr[q] += j->beta * cr[q * j->cs_n];
        }
}

hp_status hp_cpu_gemm(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                      const hp_cpu_tensor *out)
{
    if (n->n_in < 2 || !in[0] || !in[1])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs inputs A and B");
    const hp_cpu_tensor *A = in[0], *B = in[1], *C = n->n_in > 2 ? in[2] : NULL;
    const hp_gemm_attr *at = &n->attr.gemm;
    if (A->ndim != 2 || B->ndim != 2 || out->ndim != 2)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "A, B and Y must be 2-D");
    int64_t M = at->trans_a ? A->dims[1] : A->dims[0], K = at->trans_a ? A->dims[0] : A->dims[1];
    int64_t Kb = at->trans_b ? B->dims[1] : B->dims[0], N = at->trans_b ? B->dims[0] : B->dims[1];
    if (K != Kb)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "inner dimensions differ (%lld vs %lld)", (long long)K,
                           (long long)Kb);
    if (out->dims[0] != M || out->dims[1] != N)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output is not [%lld, %lld]", (long long)M, (long long)N);
    if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "Gemm too large for 32-bit BLAS indices");
    int64_t cs_m = 0, cs_n = 0;
    if (C) {
        /* Strides of C viewed as (M, N); right-aligned unidirectional broadcasting. */
        int64_t cm = C->ndim == 2 ? C->dims[0] : 1, cn = C->ndim >= 1 ? C->dims[C->ndim - 1] : 1;
        if (C->ndim > 2 || (cm != 1 && cm != M) || (cn != 1 && cn != N))
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "C does not broadcast to [%lld, %lld]", (long long)M,
                               (long long)N);
        cs_n = cn == 1 ? 0 : 1;
        cs_m = cm == 1 ? 0 : cn;
    }
    if (M == 0 || N == 0)
        return HP_OK;
    if (c->reference) {
        for (int64_t i = 0; i < M; i++)
            for (int64_t q = 0; q < N; q++) {
                double s = 0.0;
                for (int64_t k = 0; k < K; k++) {
                    float a = at->trans_a ? A->p[k * M + i] : A->p[i * K + k];
                    float b = at->trans_b ? B->p[q * K + k] : B->p[k * N + q];
                    s += (double)a * b;
                }
                double v = (double)at->alpha * s;
                if (C)
                    v += (double)at->beta * C->p[i * cs_m + q * cs_n];
                out->p[i * N + q] = (float)v;
            }
        return HP_OK;
    }
    gemm_job j = {A->p, B->p, C ? C->p : NULL, out->p, M, N, K, cs_m, cs_n, at->alpha, at->beta,
                  at->trans_a, at->trans_b};
    hp_pool_run(c->pool, (M + HP_GEMM_ROWS - 1) / HP_GEMM_ROWS, gemm_task, &j);
    return HP_OK;
}
