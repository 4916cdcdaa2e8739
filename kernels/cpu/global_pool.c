/* GlobalAveragePool / GlobalMaxPool: over every dim after the channel dim (rank >= 3). */
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    const hp_cpu_tensor *x, *y;
    int64_t C, inner, cb, nblk;
    int is_max;
} gp_job;

static void gp_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const gp_job *j = arg;
    int64_t n = task / j->nblk, c0 = (task % j->nblk) * j->cb;
    int64_t c1 = c0 + j->cb < j->C ? c0 + j->cb : j->C;
    for (int64_t c = c0; c < c1; c++) {
        const float *xp = j->x->p + n * j->x->bstride + c * j->inner;
        float r;
        if (j->is_max) {
            float m = -INFINITY;
            for (int64_t i = 0; i < j->inner; i++)
                m = hp_cpu_max_nan(m, xp[i]); /* NaN propagates, as in MaxPool */
            r = m;
        } else {
            /* Eight partial sums: vectorizes, and keeps rounding error low on big planes. */
            float acc[8] = {0};
            int64_t i = 0;
            for (; i + 8 <= j->inner; i += 8)
                for (int k = 0; k < 8; k++)
                    acc[k] += xp[i + k];
            float s = 0.0f;
            for (; i < j->inner; i++)
                s += xp[i];
            s += ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            r = s / (float)j->inner;
        }
        j->y->p[n * j->y->bstride + c] = r;
    }
}

hp_status hp_cpu_global_pool(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                             const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    if (x->ndim < 3)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "input has rank %d; needs rank >= 3", x->ndim);
    int64_t N = x->dims[0], C = x->dims[1], inner = hp_cpu_item(x) / (C ? C : 1);
    if (out->ndim < 2 || out->dims[0] != N || out->dims[1] != C || hp_cpu_numel(out) != N * C)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output must be [N, C, 1, ...]");
    if (N * C == 0)
        return HP_OK;
    if (inner == 0)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "global pooling over an empty plane");
    int is_max = n->op == HP_OP_GLOBAL_MAXPOOL;
    if (c->reference) {
        for (int64_t b = 0; b < N; b++)
            for (int64_t ch = 0; ch < C; ch++) {
                const float *xp = x->p + b * x->bstride + ch * inner;
                double s = 0.0;
                float m = -INFINITY;
                for (int64_t i = 0; i < inner; i++) {
                    s += xp[i];
                    m = hp_cpu_max_nan(m, xp[i]); /* NaN propagates, as in MaxPool */
                }
                out->p[b * out->bstride + ch] = is_max ? m : (float)(s / (double)inner);
            }
        return HP_OK;
    }
    gp_job j = {x, out, C, inner, inner >= HP_CPU_CHUNK ? 1 : HP_CPU_CHUNK / inner, 0, is_max};
    j.nblk = (C + j.cb - 1) / j.cb;
    hp_pool_run(c->pool, N * j.nblk, gp_task, &j);
    return HP_OK;
}
