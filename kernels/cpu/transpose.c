/* Transpose with attr.perm: out.dims[i] = in.dims[perm[i]]. The fast path walks the output in
 * rows of its last dim (a gather with one input stride), in fixed groups of rows. */
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    int nd;
    int64_t odims[HP_MAX_DIMS], istr[HP_MAX_DIMS]; /* input stride of each output dim */
    const float *x;
    float *y;
    int64_t rows, rows_per_task;
} tr_job;

static void tr_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const tr_job *j = arg;
    int nd = j->nd;
    int64_t len = j->odims[nd - 1], s = j->istr[nd - 1];
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    int64_t idx[HP_MAX_DIMS] = {0}, rem = r0, off = 0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rem % j->odims[d];
        rem /= j->odims[d];
        off += idx[d] * j->istr[d];
    }
    for (int64_t r = r0; r < r1; r++) {
        float *y = j->y + r * len;
        const float *x = j->x + off;
        for (int64_t i = 0; i < len; i++)
            y[i] = x[i * s];
        for (int d = nd - 2; d >= 0; d--) {
            off += j->istr[d];
            if (++idx[d] < j->odims[d])
                break;
            off -= idx[d] * j->istr[d];
            idx[d] = 0;
        }
    }
}

hp_status hp_cpu_transpose(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                           const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    int nd = x->ndim;
    if (out->ndim != nd)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output rank differs from the input's");
    int seen[HP_MAX_DIMS] = {0};
    int64_t xs[HP_MAX_DIMS];
    tr_job j = {.nd = nd, .x = x->p, .y = out->p};
    int64_t m = 1;
    for (int d = nd - 1; d >= 0; d--) {
        xs[d] = m;
        m *= x->dims[d];
    }
    for (int i = 0; i < nd; i++) {
        int p = n->attr.perm[i];
        if (p < 0 || p >= nd || seen[p])
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "perm is not a permutation of %d dims", nd);
        seen[p] = 1;
        if (out->dims[i] != x->dims[p])
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "output dim %d does not match the permuted input", i);
        j.odims[i] = out->dims[i];
        j.istr[i] = xs[p];
    }
    int64_t total = hp_cpu_numel(out);
    if (total == 0)
        return HP_OK;
    if (nd == 0) {
        out->p[0] = x->p[0];
        return HP_OK;
    }
    if (c->reference) {
        int64_t idx[HP_MAX_DIMS] = {0};
        for (int64_t e = 0; e < total; e++) {
            int64_t off = 0;
            for (int d = 0; d < nd; d++)
                off += idx[d] * j.istr[d];
            out->p[e] = x->p[off];
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < out->dims[d])
                    break;
                idx[d] = 0;
            }
        }
        return HP_OK;
    }
    int64_t len = j.odims[nd - 1];
    j.rows = total / len;
    j.rows_per_task = len >= HP_CPU_CHUNK ? 1 : HP_CPU_CHUNK / len;
    hp_pool_run(c->pool, (j.rows + j.rows_per_task - 1) / j.rows_per_task, tr_task, &j);
    return HP_OK;
}
