/* DepthToSpace (ONNX): with b = blocksize and C' = C / b^2,
 *   DCR: y[n, c, h*b+i, w*b+j] = x[n, (i*b + j)*C' + c, h, w]
 *   CRD: y[n, c, h*b+i, w*b+j] = x[n, c*b*b + i*b + j, h, w]
 * The fast path writes output rows in order, one task per (n, c) plane. */
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    const float *x;
    float *y;
    int64_t C, Co, H, W, b;
    int crd;
} d2s_job;

static inline int64_t src_chan(const d2s_job *j, int64_t c, int64_t i, int64_t k)
{
    return j->crd ? c * j->b * j->b + i * j->b + k : (i * j->b + k) * j->Co + c;
}

static void d2s_task(void *arg, int64_t t, int tid)
{
    (void)tid;
    const d2s_job *j = arg;
    int64_t n = t / j->Co, c = t % j->Co, b = j->b, OW = j->W * b;
    float *y = j->y + t * j->H * b * OW;
    for (int64_t h = 0; h < j->H; h++)
        for (int64_t i = 0; i < b; i++) {
            float *yr = y + (h * b + i) * OW;
            for (int64_t k = 0; k < b; k++) {
                const float *xr = j->x + (n * j->C + src_chan(j, c, i, k)) * j->H * j->W + h * j->W;
                for (int64_t w = 0; w < j->W; w++)
                    yr[w * b + k] = xr[w];
            }
        }
}

hp_status hp_cpu_depth_to_space(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                                const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    int64_t b = n->attr.d2s.blocksize;
    if (x->ndim != 4 || out->ndim != 4)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs 4-D tensors");
    if (b < 1 || x->dims[1] % (b * b) != 0)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "channels (%lld) not divisible by blocksize^2 (%lld)",
                           (long long)x->dims[1], (long long)(b * b));
    d2s_job j = {x->p, out->p, x->dims[1], x->dims[1] / (b * b), x->dims[2], x->dims[3], b, n->attr.d2s.crd != 0};
    if (out->dims[0] != x->dims[0] || out->dims[1] != j.Co || out->dims[2] != j.H * b || out->dims[3] != j.W * b)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output shape does not match");
    if (hp_cpu_numel(out) == 0)
        return HP_OK;
    int64_t N = x->dims[0];
    if (c->reference) {
        for (int64_t nn = 0; nn < N; nn++)
            for (int64_t cc = 0; cc < j.Co; cc++)
                for (int64_t oh = 0; oh < j.H * b; oh++)
                    for (int64_t ow = 0; ow < j.W * b; ow++) {
                        int64_t h = oh / b, i = oh % b, w = ow / b, k = ow % b;
                        int64_t sc = j.crd ? cc * b * b + i * b + k : (i * b + k) * j.Co + cc;
                        out->p[((nn * j.Co + cc) * j.H * b + oh) * j.W * b + ow] =
                            x->p[((nn * j.C + sc) * j.H + h) * j.W + w];
                    }
        return HP_OK;
    }
    hp_pool_run(c->pool, N * j.Co, d2s_task, &j);
    return HP_OK;
}
