/* MaxPool and AveragePool, 2-D, with dilation and asymmetric padding (ONNX semantics; ceil_mode
 * is already in the output shape). Padded positions never win a max, and a NaN in a window makes
 * its max NaN (ONNX and PyTorch propagate NaN through MaxPool); an average divides by the
 * window positions inside the input, or with count_include_pad by those inside the padded input
 * (a ceil_mode window running past the end counts only up to input + pads). A window with no
 * position to count yields 0. */
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    int64_t N, C, H, W, OH, OW, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    int is_max, include_pad;
} pool_geom;

/* [*a, *b): the t in [0, k) with s + t*d inside [lo, hi). */
static void krange(int64_t s, int64_t d, int64_t k, int64_t lo, int64_t hi, int64_t *a, int64_t *b)
{
    int64_t t0 = s >= lo ? 0 : hp_cpu_ceil_div(lo - s, d);
    int64_t t1 = s >= hi ? 0 : hp_cpu_ceil_div(hi - s, d);
    if (t0 > k)
        t0 = k;
    if (t1 > k)
        t1 = k;
    if (t1 < t0)
        t1 = t0;
    *a = t0;
    *b = t1;
}

static void pool_reference(const pool_geom *q, const hp_cpu_tensor *x, const hp_cpu_tensor *y)
{
    for (int64_t n = 0; n < q->N; n++)
        for (int64_t c = 0; c < q->C; c++) {
            const float *xp = x->p + n * x->bstride + c * q->H * q->W;
            float *yp = y->p + n * y->bstride + c * q->OH * q->OW;
            for (int64_t oh = 0; oh < q->OH; oh++)
                for (int64_t ow = 0; ow < q->OW; ow++) {
                    float m = -INFINITY, s = 0.0f;
                    int64_t cnt = 0, cnt_pad = 0;
                    for (int64_t ky = 0; ky < q->kh; ky++)
                        for (int64_t kx = 0; kx < q->kw; kx++) {
                            int64_t ih = oh * q->sh - q->pt + ky * q->dh;
                            int64_t iw = ow * q->sw - q->pl + kx * q->dw;
                            if (ih >= -q->pt && ih < q->H + q->pb && iw >= -q->pl && iw < q->W + q->pr)
                                cnt_pad++;
                            if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W)
                                continue;
                            float v = xp[ih * q->W + iw];
                            m = hp_cpu_max_nan(m, v);
                            s += v;
                            cnt++;
                        }
                    float r;
                    if (q->is_max)
                        r = cnt ? m : 0.0f;
                    else {
                        int64_t d = q->include_pad ? cnt_pad : cnt;
                        r = d ? s / (float)d : 0.0f;
                    }
                    yp[oh * q->OW + ow] = r;
                }
        }
}

typedef struct {
    const pool_geom *q;
    const hp_cpu_tensor *x, *y;
    int64_t planes_per_task, ntask_c;
} pool_job;

/* One output position whose window may be clipped by the borders. */
static float pool_edge(const pool_geom *q, const float *xp, int64_t hs, int64_t ky0, int64_t ky1, int64_t py,
                       int64_t ws)
{
    int64_t kx0, kx1;
    krange(ws, q->dw, q->kw, 0, q->W, &kx0, &kx1);
    if (q->is_max) {
        float m = -INFINITY;
        for (int64_t ky = ky0; ky < ky1; ky++) {
            const float *row = xp + (hs + ky * q->dh) * q->W;
            for (int64_t kx = kx0; kx < kx1; kx++) {
                m = hp_cpu_max_nan(m, row[ws + kx * q->dw]);
            }
        }
        return (ky1 > ky0 && kx1 > kx0) ? m : 0.0f;
    }
    float s = 0.0f;
    for (int64_t ky = ky0; ky < ky1; ky++) {
        const float *row = xp + (hs + ky * q->dh) * q->W;
        for (int64_t kx = kx0; kx < kx1; kx++)
            s += row[ws + kx * q->dw];
    }
    int64_t d;
    if (q->include_pad) {
        int64_t px0, px1;
        krange(ws, q->dw, q->kw, -q->pl, q->W + q->pr, &px0, &px1);
        d = py * (px1 - px0);
    } else {
        d = (ky1 - ky0) * (kx1 - kx0);
    }
    return d ? s / (float)d : 0.0f;
}

static void pool_plane(const pool_geom *q, const float *xp, float *yp)
{
    /* Output columns whose window lies inside the input horizontally need no clipping. */
    int64_t ow_lo = hp_cpu_ceil_div(q->pl, q->sw);
    int64_t ow_hi = q->W - 1 - (q->kw - 1) * q->dw + q->pl >= 0 ? (q->W - 1 - (q->kw - 1) * q->dw + q->pl) / q->sw + 1 : 0;
    if (ow_hi > q->OW)
        ow_hi = q->OW;
    if (ow_lo > ow_hi)
        ow_lo = ow_hi;
    for (int64_t oh = 0; oh < q->OH; oh++) {
        int64_t hs = oh * q->sh - q->pt, ky0, ky1, py0, py1;
        krange(hs, q->dh, q->kh, 0, q->H, &ky0, &ky1);
        krange(hs, q->dh, q->kh, -q->pt, q->H + q->pb, &py0, &py1);
        float *yr = yp + oh * q->OW;
        for (int64_t ow = 0; ow < ow_lo; ow++)
            yr[ow] = pool_edge(q, xp, hs, ky0, ky1, py1 - py0, ow * q->sw - q->pl);
        if (q->is_max) {
            for (int64_t ow = ow_lo; ow < ow_hi; ow++) {
                const float *base = xp + (ow * q->sw - q->pl);
                float m = -INFINITY;
                for (int64_t ky = ky0; ky < ky1; ky++) {
                    const float *row = base + (hs + ky * q->dh) * q->W;
                    for (int64_t kx = 0; kx < q->kw; kx++) {
                        m = hp_cpu_max_nan(m, row[kx * q->dw]);
                    }
                }
                yr[ow] = ky1 > ky0 ? m : 0.0f;
            }
        } else {
            int64_t d = q->include_pad ? (py1 - py0) * q->kw : (ky1 - ky0) * q->kw;
            for (int64_t ow = ow_lo; ow < ow_hi; ow++) {
                const float *base = xp + (ow * q->sw - q->pl);
                float s = 0.0f;
                for (int64_t ky = ky0; ky < ky1; ky++) {
                    const float *row = base + (hs + ky * q->dh) * q->W;
                    for (int64_t kx = 0; kx < q->kw; kx++)
                        s += row[kx * q->dw];
                }
                yr[ow] = d ? s / (float)d : 0.0f;
            }
        }
        for (int64_t ow = ow_hi > ow_lo ? ow_hi : ow_lo; ow < q->OW; ow++)
            yr[ow] = pool_edge(q, xp, hs, ky0, ky1, py1 - py0, ow * q->sw - q->pl);
    }
}

static void pool_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const pool_job *j = arg;
    const pool_geom *q = j->q;
    int64_t n = task / j->ntask_c, c0 = (task % j->ntask_c) * j->planes_per_task;
    int64_t c1 = c0 + j->planes_per_task < q->C ? c0 + j->planes_per_task : q->C;
    for (int64_t c = c0; c < c1; c++)
        pool_plane(q, j->x->p + n * j->x->bstride + c * q->H * q->W, j->y->p + n * j->y->bstride + c * q->OH * q->OW);
}

hp_status hp_cpu_pool(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                      const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    const hp_pool_attr *a = &n->attr.pool;
    if (x->ndim != 4 || out->ndim != 4)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "only 2-D pooling (4-D tensors) is supported");
    if (out->dims[0] != x->dims[0] || out->dims[1] != x->dims[1])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output batch or channels differ from the input's");
    if (a->kh < 1 || a->kw < 1 || a->stride[0] < 1 || a->stride[1] < 1 || a->dil[0] < 1 || a->dil[1] < 1)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "kernel, strides and dilations must be >= 1");
    for (int i = 0; i < 4; i++)
        if (a->pad[i] < 0)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "negative padding");
    pool_geom q = {
        .N = x->dims[0], .C = x->dims[1], .H = x->dims[2], .W = x->dims[3],
        .OH = out->dims[2], .OW = out->dims[3], .kh = a->kh, .kw = a->kw,
        .sh = a->stride[0], .sw = a->stride[1], .dh = a->dil[0], .dw = a->dil[1],
        .pt = a->pad[0], .pl = a->pad[1], .pb = a->pad[2], .pr = a->pad[3],
        .is_max = n->op == HP_OP_MAXPOOL, .include_pad = a->count_include_pad != 0,
    };
    if (hp_cpu_numel(out) == 0)
        return HP_OK;
    if (c->reference) {
        pool_reference(&q, x, out);
        return HP_OK;
    }
    int64_t plane = q.OH * q.OW * q.kh * q.kw;
    pool_job j = {&q, x, out, plane >= HP_CPU_CHUNK ? 1 : HP_CPU_CHUNK / plane, 0};
    j.ntask_c = (q.C + j.planes_per_task - 1) / j.planes_per_task;
    hp_pool_run(c->pool, q.N * j.ntask_c, pool_task, &j);
    return HP_OK;
}
