/* 2-D convolution (groups, stride, dilation, asymmetric padding, fused activation).
 *
 * Fast path: per (batch item, group, block of output positions) one SGEMM
 *     Y[Mg, cols] = W[Mg, K] x B[K, cols],   K = Cg*kh*kw,
 * where B is the input itself for a 1x1 stride-1 unpadded convolution (NCHW makes that a plain
 * matrix, strided views included) and otherwise an im2col copy of just those columns in the
 * thread's scratch, so the scratch stays cache-sized whatever the image size. Bias and
 * activation are applied right after each block's GEMM while it is still in cache. The blocks
 * depend only on the shapes, so any thread count computes the same bytes.
 *
 * A ScaleShift feeding the convolution (see exec.c) is applied while packing B. */
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

typedef struct {
    int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, OH, OW, K, HW, HWo;
    int64_t sh, sw, dh, dw, pt, pl;
    int direct;   /* B is the input itself */
    int64_t cols; /* output positions per work unit */
    int64_t nblk;
} conv_geom;

/* Target size of a packed B block (floats): about half of a 2 MiB L2. */
#define HP_CONV_PACK_ELEMS (1 << 18)
/* Work units we try to have per convolution, whatever the thread count, so small batches still
 * spread over a few cores. */
#define HP_CONV_MIN_UNITS 16

/* Fills q from the shapes; NULL when consistent, else what is wrong. */
static const char *geom_init(conv_geom *q, const hp_conv_attr *a, int xnd, const int64_t *xd,
                             int wnd, const int64_t *wd, int ynd, const int64_t *yd, int64_t bias_n,
                             int packed_only)
{
    memset(q, 0, sizeof *q);
    if (xnd != 4 || wnd != 4 || ynd != 4)
        return "only 2-D convolution (4-D X, W and Y) is supported";
    if (a->group < 1)
        return "group must be >= 1";
    if (a->stride[0] < 1 || a->stride[1] < 1 || a->dil[0] < 1 || a->dil[1] < 1)
        return "strides and dilations must be >= 1";
    for (int i = 0; i < 4; i++)
        if (a->pad[i] < 0)
            return "negative padding";
    q->N = xd[0];
    q->C = xd[1];
    q->H = xd[2];
    q->W = xd[3];
    q->M = wd[0];
    q->G = a->group;
    q->Cg = wd[1];
    q->kh = wd[2];
    q->kw = wd[3];
    q->OH = yd[2];
    q->OW = yd[3];
    if (q->C != q->Cg * q->G)
        return "input channels do not match W's shape and the group count";
    if (q->M % q->G != 0)
        return "output channels are not divisible by the group count";
    if (yd[0] != q->N || yd[1] != q->M)
        return "output shape does not match the input and weights";
    if (bias_n >= 0 && bias_n != q->M)
        return "bias length differs from the number of output channels";
    q->Mg = q->M / q->G;
    q->K = q->Cg * q->kh * q->kw;
    q->HW = q->H * q->W;
    q->HWo = q->OH * q->OW;
    q->sh = a->stride[0];
    q->sw = a->stride[1];
    q->dh = a->dil[0];
    q->dw = a->dil[1];
    q->pt = a->pad[0];
    q->pl = a->pad[1];
    q->direct = !packed_only && q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && !a->pad[0] &&
                !a->pad[1] && !a->pad[2] && !a->pad[3] && q->OH == q->H && q->OW == q->W;
    if (q->HWo == 0)
        return NULL;
    int64_t cols = q->HWo;
    if (!q->direct) {
        int64_t k = q->K > 0 ? q->K : 1;
        cols = HP_CONV_PACK_ELEMS / k;
        if (cols < 64)
            cols = 64;
    }
    int64_t outer = q->N * q->G;
    if (outer > 0 && outer < HP_CONV_MIN_UNITS) {
        int64_t want = (HP_CONV_MIN_UNITS + outer - 1) / outer;
        int64_t c2 = (q->HWo + want - 1) / want;
        if (c2 < 64)
            c2 = 64;
        if (c2 < cols)
            cols = c2;
    }
    if (cols < q->HWo)
        cols = (cols + 15) & ~(int64_t)15;
    if (cols > q->HWo)
        cols = q->HWo;
    q->cols = cols;
    q->nblk = (q->HWo + cols - 1) / cols;
    return NULL;
}

static int64_t scratch_for(const hp_graph *g, const hp_node *n, int packed_only)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->out[0] < 0)
        return 0;
    const hp_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]], *y = &g->values[n->out[0]];
    conv_geom q;
    if (geom_init(&q, &n->attr.conv, x->ndim, x->dims, w->ndim, w->dims, y->ndim, y->dims, -1,
                  packed_only))
        return 0;
    return q.direct ? 0 : q.K * q.cols;
}

int64_t hp_cpu_conv2d_scratch(const hp_graph *g, const hp_node *n)
{
    return scratch_for(g, n, 0);
}

int64_t hp_cpu_conv2d_fused_scratch(const hp_graph *g, const hp_node *n)
{
    return scratch_for(g, n, 1);
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

/* im2col of output positions [j0, j0+nc) of one group into dst[K][nc]. */
static void im2col(const conv_geom *q, const float *xg, int64_t j0, int64_t nc, float *dst)
{
    for (int64_t c = 0; c < q->Cg; c++) {
        const float *xc = xg + c * q->HW;
        for (int64_t ky = 0; ky < q->kh; ky++)
            for (int64_t kx = 0; kx < q->kw; kx++) {
                float *d = dst + ((c * q->kh + ky) * q->kw + kx) * nc;
                int64_t oh = j0 / q->OW, ow = j0 % q->OW, j = 0;
                while (j < nc) {
                    int64_t seg = q->OW - ow < nc - j ? q->OW - ow : nc - j;
                    int64_t ih = oh * q->sh - q->pt + ky * q->dh;
                    float *dd = d + j;
                    if (ih < 0 || ih >= q->H) {
                        memset(dd, 0, (size_t)seg * sizeof(float));
                    } else {
                        const float *src = xc + ih * q->W;
                        int64_t iw0 = ow * q->sw - q->pl + kx * q->dw;
                        /* t in [lo, hi) maps inside the row: iw0 + t*sw in [0, W) */
                        int64_t lo = iw0 >= 0 ? 0 : ceil_div(-iw0, q->sw);
                        int64_t hi = iw0 >= q->W ? 0 : ceil_div(q->W - iw0, q->sw);
                        if (lo > seg)
                            lo = seg;
                        if (hi > seg)
                            hi = seg;
                        if (hi < lo)
                            hi = lo;
                        for (int64_t t = 0; t < lo; t++)
                            dd[t] = 0.0f;
                        if (q->sw == 1) {
                            if (hi > lo)
                                memcpy(dd + lo, src + (iw0 + lo), (size_t)(hi - lo) * sizeof(float));
                        } else {
                            for (int64_t t = lo; t < hi; t++)
                                dd[t] = src[iw0 + t * q->sw];
                        }
                        for (int64_t t = hi; t < seg; t++)
                            dd[t] = 0.0f;
                    }
                    j += seg;
                    oh++;
                    ow = 0;
                }
            }
    }
}

typedef struct {
    hp_cpu_ctx *c;
    const conv_geom *q;
    const hp_cpu_tensor *x, *y;
    const float *w, *bias;
    const hp_act *act;
    const hp_cpu_conv_pre *pre;
} conv_job;

static void conv_task(void *arg, int64_t task, int tid)
{
    const conv_job *jb = arg;
    const conv_geom *q = jb->q;
    int64_t per_n = q->G * q->nblk;
    int64_t n = task / per_n, g = (task % per_n) / q->nblk, blk = task % q->nblk;
    int64_t j0 = blk * q->cols, nc = q->HWo - j0 < q->cols ? q->HWo - j0 : q->cols;
    float *yg = jb->y->p + n * jb->y->bstride + g * q->Mg * q->HWo + j0;
    const float *wg = jb->w + g * q->Mg * q->K;
    const float *bmat;
    int64_t ldb;
    if (jb->pre) {
        const hp_cpu_tensor *px = jb->pre->x;
        const float *xg = px->p + n * px->bstride + g * q->Cg * q->HW + j0;
        float *buf = jb->c->scratch[tid];
        hp_cpu_affine_act_rows(&jb->pre->act, xg, q->HW, buf, nc, q->Cg, nc, jb->pre->scale + g * q->Cg,
                               jb->pre->shift + g * q->Cg);
        bmat = buf;
        ldb = nc;
    } else if (q->direct) {
        bmat = jb->x->p + n * jb->x->bstride + g * q->Cg * q->HW + j0;
        ldb = q->HW;
    } else {
        float *buf = jb->c->scratch[tid];
        im2col(q, jb->x->p + n * jb->x->bstride + g * q->Cg * q->HW, j0, nc, buf);
        bmat = buf;
        ldb = nc;
    }
    if (q->K == 0) {
        for (int64_t m = 0; m < q->Mg; m++)
            memset(yg + m * q->HWo, 0, (size_t)nc * sizeof(float));
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q->Mg, (int)nc, (int)q->K, 1.0f, wg,
                    (int)q->K, bmat, (int)ldb, 0.0f, yg, (int)q->HWo);
    }
    hp_cpu_act_rows(jb->act, yg, q->HWo, q->Mg, nc, NULL, jb->bias ? jb->bias + g * q->Mg : NULL);
}

static void conv_reference(const conv_geom *q, const hp_cpu_tensor *x, const float *w, const float *bias,
                           const hp_act *act, const hp_cpu_tensor *y)
{
    for (int64_t n = 0; n < q->N; n++)
        for (int64_t m = 0; m < q->M; m++) {
            int64_t g = m / q->Mg;
            for (int64_t oh = 0; oh < q->OH; oh++)
                for (int64_t ow = 0; ow < q->OW; ow++) {
                    double s = bias ? bias[m] : 0.0;
                    for (int64_t c = 0; c < q->Cg; c++)
                        for (int64_t ky = 0; ky < q->kh; ky++)
                            for (int64_t kx = 0; kx < q->kw; kx++) {
                                int64_t ih = oh * q->sh - q->pt + ky * q->dh;
                                int64_t iw = ow * q->sw - q->pl + kx * q->dw;
                                if (ih < 0 || ih >= q->H || iw < 0 || iw >= q->W)
                                    continue;
                                float xv = x->p[n * x->bstride + (g * q->Cg + c) * q->HW + ih * q->W + iw];
                                float wv = w[((m * q->Cg + c) * q->kh + ky) * q->kw + kx];
                                s += (double)xv * wv;
                            }
                    y->p[n * y->bstride + m * q->HWo + oh * q->OW + ow] = hp_cpu_act1(act, (float)s);
                }
        }
}

static hp_status conv_common(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                             const hp_cpu_tensor *out, const hp_cpu_conv_pre *pre)
{
    if (n->n_in < 2 || !in[0] || !in[1])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs inputs X and W");
    const hp_cpu_tensor *x = in[0], *w = in[1];
    const hp_cpu_tensor *b = n->n_in > 2 ? in[2] : NULL;
    const hp_conv_attr *a = &n->attr.conv;
    conv_geom q;
    const char *why = geom_init(&q, a, x->ndim, x->dims, w->ndim, w->dims, out->ndim, out->dims,
                                b ? hp_cpu_numel(b) : -1, pre != NULL);
    if (why)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "%s", why);
    if (!hp_cpu_act_valid(&a->act))
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "unknown fused activation %d", (int)a->act.kind);
    if (q.M > INT32_MAX || q.K > INT32_MAX || q.HWo > INT32_MAX || q.HW > INT32_MAX)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "convolution too large for 32-bit BLAS indices");
    if (hp_cpu_numel(out) == 0)
        return HP_OK;
    const float *bias = b ? b->p : NULL;
    if (c->reference) {
        conv_reference(&q, x, w->p, bias, &a->act, out);
        return HP_OK;
    }
    if (pre && (!hp_cpu_same_dims(pre->x, x) || q.kh != 1 || q.kw != 1 || q.sh != 1 || q.sw != 1 ||
                a->pad[0] || a->pad[1] || a->pad[2] || a->pad[3] || q.OH != q.H || q.OW != q.W))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "cannot fuse a ScaleShift into this convolution");
    if ((pre || !q.direct) && q.K * q.cols > c->scratch_elems)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "scratch too small (%lld < %lld); prepare not run?",
                           (long long)c->scratch_elems, (long long)(q.K * q.cols));
    conv_job jb = {c, &q, x, out, w->p, bias, &a->act, pre};
    hp_pool_run(c->pool, q.N * q.G * q.nblk, conv_task, &jb);
    return HP_OK;
}

hp_status hp_cpu_conv2d(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out)
{
    return conv_common(c, n, in, out, NULL);
}

hp_status hp_cpu_conv2d_fused(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                              const hp_cpu_tensor *out, const hp_cpu_conv_pre *pre)
{
    return conv_common(c, n, in, out, pre);
}
