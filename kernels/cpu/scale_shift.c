/* ScaleShift: y = act(x * scale[c] + shift[c]), a BatchNorm folded by the passes, usually with
 * the ReLU after it; on DenseNet it runs on every layer's concatenated input. */
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    const hp_cpu_tensor *x, *y;
    const float *scale, *shift;
    const hp_act *act;
    int64_t C, inner, cb, nblk;
} affine_job;

static void affine_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const affine_job *j = arg;
    int64_t n = task / j->nblk, c0 = (task % j->nblk) * j->cb;
    int64_t rows = j->C - c0 < j->cb ? j->C - c0 : j->cb;
    hp_cpu_affine_act_rows(j->act, j->x->p + n * j->x->bstride + c0 * j->inner, j->inner,
                           j->y->p + n * j->y->bstride + c0 * j->inner, j->inner, rows, j->inner,
                           j->scale + c0, j->shift + c0);
}

void hp_cpu_channel_affine(hp_cpu_ctx *c, const hp_cpu_tensor *x, const hp_cpu_tensor *y,
                           const float *scale, const float *shift, const hp_act *act)
{
    affine_job j = {.x = x, .y = y, .scale = scale, .shift = shift, .act = act};
    j.C = x->dims[1];
    j.inner = 1;
    for (int i = 2; i < x->ndim; i++)
        j.inner *= x->dims[i];
    if (hp_cpu_numel(x) == 0)
        return;
    /* Blocks of whole channels, about one chunk each: fixed by the shape alone. */
    j.cb = j.inner >= HP_CPU_CHUNK ? 1 : HP_CPU_CHUNK / j.inner;
    j.nblk = (j.C + j.cb - 1) / j.cb;
    hp_pool_run(c->pool, x->dims[0] * j.nblk, affine_task, &j);
}

hp_status hp_cpu_scale_shift(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                             const hp_cpu_tensor *out)
{
    if (n->n_in < 3 || !in[0] || !in[1] || !in[2])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs inputs X, scale and shift");
    const hp_cpu_tensor *x = in[0];
    if (x->ndim < 2)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "input has rank %d; needs rank >= 2", x->ndim);
    if (!hp_cpu_same_dims(x, out))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output shape differs from the input's");
    int64_t C = x->dims[1];
    if (hp_cpu_numel(in[1]) != C || hp_cpu_numel(in[2]) != C)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "scale and shift need %lld elements (one per channel)",
                           (long long)C);
    if (!hp_cpu_act_valid(&n->attr.act))
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "unknown activation %d", (int)n->attr.act.kind);
    if (hp_cpu_numel(x) == 0)
        return HP_OK;
    const float *s = in[1]->p, *b = in[2]->p;
    if (c->reference) {
        int64_t N = x->dims[0], inner = hp_cpu_item(x) / (C ? C : 1);
        for (int64_t i = 0; i < N; i++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t k = 0; k < inner; k++) {
                    float v = x->p[i * x->bstride + ch * inner + k];
                    out->p[i * out->bstride + ch * inner + k] = hp_cpu_act1(&n->attr.act, v * s[ch] + b[ch]);
                }
        return HP_OK;
    }
    hp_cpu_channel_affine(c, x, out, s, b, &n->attr.act);
    return HP_OK;
}
