/* MatMul with numpy semantics: 1-D operands are promoted (and the added dim dropped from the
 * result), batch dims broadcast. Fast path: one SGEMM per output batch item. */
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

typedef struct {
    int nb; /* output batch rank */
    int64_t bdims[HP_MAX_DIMS], sa[HP_MAX_DIMS], sb[HP_MAX_DIMS]; /* strides in matrices */
    const float *a, *b;
    float *y;
    int64_t M, N, K;
} mm_job;

static void batch_offsets(const mm_job *j, int64_t t, int64_t *oa, int64_t *ob)
{
    int64_t a = 0, b = 0;
    for (int d = j->nb - 1; d >= 0; d--) {
        int64_t i = t % j->bdims[d];
        t /= j->bdims[d];
        a += i * j->sa[d];
        b += i * j->sb[d];
    }
    *oa = a * j->M * j->K;
    *ob = b * j->K * j->N;
}

static void mm_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const mm_job *j = arg;
    int64_t oa, ob;
    batch_offsets(j, t, &oa, &ob);
    float *y = j->y + t * j->M * j->N;
    if (j->K == 0) {
        memset(y, 0, (size_t)(j->M * j->N) * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)j->M, (int)j->N, (int)j->K, 1.0f, j->a + oa,
                (int)j->K, j->b + ob, (int)j->N, 0.0f, y, (int)j->N);
}

hp_status hp_cpu_matmul(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out)
{
    if (n->n_in < 2 || !in[0] || !in[1])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs inputs A and B");
    const hp_cpu_tensor *A = in[0], *B = in[1];
    if (A->ndim < 1 || B->ndim < 1)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "MatMul operands must have rank >= 1");
    mm_job j = {.a = A->p, .b = B->p, .y = out->p};
    int an = A->ndim, bn = B->ndim;
    j.M = an == 1 ? 1 : A->dims[an - 2];
    j.K = A->dims[an - 1];
    int64_t Kb = bn == 1 ? B->dims[0] : B->dims[bn - 2];
    j.N = bn == 1 ? 1 : B->dims[bn - 1];
    if (j.K != Kb)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "inner dimensions differ (%lld vs %lld)", (long long)j.K,
                           (long long)Kb);
    int abat = an > 2 ? an - 2 : 0, bbat = bn > 2 ? bn - 2 : 0;
    int nb = abat > bbat ? abat : bbat;
    int want = nb + (an > 1) + (bn > 1);
    if (out->ndim != want)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output rank %d, expected %d", out->ndim, want);
    j.nb = nb;
    /* Batch strides (in matrices) of A and B broadcast to the output batch dims. */
    int64_t ma = 1, mb = 1;
    for (int d = nb - 1; d >= 0; d--) {
        int da = d - (nb - abat), db = d - (nb - bbat);
        int64_t ka = da >= 0 ? A->dims[da] : 1, kb = db >= 0 ? B->dims[db] : 1;
        int64_t ko = ka == 1 ? kb : ka;
        if ((ka != 1 && kb != 1 && ka != kb) || out->dims[d] != ko)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "batch dim %d does not broadcast", d);
        j.bdims[d] = ko;
        j.sa[d] = ka == 1 ? 0 : ma;
        j.sb[d] = kb == 1 ? 0 : mb;
        ma *= ka;
        mb *= kb;
    }
    if ((an > 1 && out->dims[nb] != j.M) || (bn > 1 && out->dims[out->ndim - 1] != j.N))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output matrix dims do not match");
    if (j.M > INT32_MAX || j.N > INT32_MAX || j.K > INT32_MAX)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "MatMul too large for 32-bit BLAS indices");
    int64_t batches = 1;
    for (int d = 0; d < nb; d++)
        batches *= j.bdims[d];
    if (hp_cpu_numel(out) == 0)
        return HP_OK;
    if (c->reference) {
        for (int64_t t = 0; t < batches; t++) {
            int64_t oa, ob;
            batch_offsets(&j, t, &oa, &ob);
            for (int64_t i = 0; i < j.M; i++)
                for (int64_t q = 0; q < j.N; q++) {
                    double s = 0.0;
                    for (int64_t k = 0; k < j.K; k++)
                        s += (double)A->p[oa + i * j.K + k] * B->p[ob + k * j.N + q];
                    out->p[t * j.M * j.N + i * j.N + q] = (float)s;
                }
        }
        return HP_OK;
    }
    hp_pool_run(c->pool, batches, mm_task, &j);
    return HP_OK;
}
