/* 2-D convolution (groups, stride, dilation, asymmetric padding, fused activation).
 *
 * Fast path: SGEMMs per work unit (batch item, group, block of output positions), in one of
 * three forms:
 *  - direct: a 1x1 stride-1 unpadded convolution is Y[Mg, cols] = W[Mg, Cg] x X[Cg, cols] on
 *    the NCHW input as it lies (strided views included); a ScaleShift folded into it (see
 *    exec.c) is applied while copying those columns into scratch instead;
 *  - shifted: a stride-1 convolution with constant weights and enough channels copies a tile of
 *    zero-padded input rows into scratch once and accumulates one SGEMM per kernel tap, each
 *    reading the tile at the tap's offset: output rows are computed at the padded width and the
 *    extra columns dropped. This avoids im2col's kh*kw-fold copy of the input;
 *  - im2col: everything else (strided, few channels, runtime weights) copies just its block of
 *    columns into scratch, so scratch stays cache-sized whatever the image size.
 * A 3x3 stride-1 convolution with constant weights and enough channels goes to Winograd
 * F(4x4, 3x3) instead (conv2d_winograd.c) unless HP_CPU_WINOGRAD=0 is set at prepare time.
 * Bias and activation are applied right after each unit's GEMMs while the block is in cache.
 * Units depend only on the shapes, so any thread count computes the same bytes. */
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

enum { CONV_DIRECT, CONV_FUSED, CONV_SHIFT, CONV_IM2COL, CONV_WINO };

/* What prepare makes for a node (node_data): the weights repacked for the shifted form, or
 * transformed for the Winograd form. The form is recorded so that run uses the one prepare chose
 * (the switch is read once, at prepare). The 16-byte header keeps w as aligned as malloc. */
typedef struct {
    int64_t form; /* CONV_SHIFT or CONV_WINO */
    int64_t reserved;
    float w[];
} conv_data;

typedef struct {
    int64_t N, C, H, W, M, G, Cg, Mg, kh, kw, OH, OW, K, HW, HWo;
    int64_t sh, sw, dh, dw, pt, pl, pb, pr;
    int mode;
    /* direct / fused / im2col: blocks of `cols` output positions */
    int64_t cols;
    /* shifted: blocks of `rows` output rows; padded width P; tile rows TR */
    int64_t rows, P, TR;
    int64_t nblk;    /* blocks per (item, group) */
    int64_t scratch; /* floats of per-thread scratch */
    hp_wino_geom wq; /* Winograd form */
} conv_geom;

/* Target size of a packed B block (floats): about half of a 2 MiB L2. */
#define HP_CONV_PACK_ELEMS (1 << 18)
/* Output block of a unit (floats): small enough that the epilogue finds it in cache. */
#define HP_CONV_OUT_ELEMS (1 << 16)
/* Input tile of a shifted unit (floats), 512 KiB: measured on DenseNet's 3x3 layers (128 -> 32
 * channels), 256 KiB and 1 MiB were no better and slightly worse. */
#define HP_CONV_TILE_ELEMS (1 << 17)
/* Work units we try to have per convolution, whatever the thread count, so small batches still
 * spread over a few cores. */
#define HP_CONV_MIN_UNITS 16
/* Fewer input channels than this make the shifted form's per-tap GEMMs too thin. */
#define HP_CONV_SHIFT_MIN_CG 16

/* Blocks so that there are at least HP_CONV_MIN_UNITS units when the shape allows. */
static int64_t spread(int64_t len, int64_t block, int64_t outer, int64_t min_block)
{
    if (outer > 0 && outer < HP_CONV_MIN_UNITS) {
        int64_t want = hp_cpu_ceil_div(HP_CONV_MIN_UNITS, outer);
        int64_t b2 = hp_cpu_ceil_div(len, want);
        if (b2 < min_block)
            b2 = min_block;
        if (b2 < block)
            block = b2;
    }
    if (block > len)
        block = len;
    return block < 1 ? 1 : block;
}

/* Whether the shifted form applies; sets the padded width P. */
static int conv2d_shift_fits(conv_geom *q)
{
    q->P = q->W + q->pl + q->pr;
    return q->sh == 1 && q->sw == 1 && q->kh * q->kw > 1 && q->Cg >= HP_CONV_SHIFT_MIN_CG &&
           q->OH == q->H + q->pt + q->pb - (q->kh - 1) * q->dh &&
           q->OW == q->P - (q->kw - 1) * q->dw && q->OH > 0 && q->OW > 0;
}

/* Whether the Winograd form applies; fills q->wq. */
static int conv2d_wino_fits(conv_geom *q)
{
    return q->kh == 3 && q->kw == 3 && q->sh == 1 && q->sw == 1 && q->dh == 1 && q->dw == 1 && q->G == 1 &&
           q->OH == q->H + q->pt + q->pb - 2 && q->OW == q->W + q->pl + q->pr - 2 &&
           hp_cpu_wino_plan(&q->wq, q->N, q->C, q->H, q->W, q->M, q->OH, q->OW, q->pt, q->pl);
}

/* Fills q from the shapes; NULL when consistent, else what is wrong. fused: a ScaleShift is
 * folded in; form: how the (constant) weights are or may be prepared: 0 not at all,
 * CONV_SHIFT repacked for the shifted form, CONV_WINO transformed for Winograd where it applies
 * (else repacked for the shifted form). */
static const char *geom_init(conv_geom *q, const hp_conv_attr *a, int xnd, const int64_t *xd,
                             int wnd, const int64_t *wd, int ynd, const int64_t *yd, int64_t bias_n,
                             int fused, int form)
{
    int shift_ok = form != 0;
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
    q->pb = a->pad[2];
    q->pr = a->pad[3];
    int one = q->kh == 1 && q->kw == 1 && q->sh == 1 && q->sw == 1 && !q->pt && !q->pl && !q->pb && !q->pr &&
              q->OH == q->H && q->OW == q->W;
    if (fused) {
        if (!one)
            return "a ScaleShift can only be folded into a 1x1 stride-1 unpadded convolution";
        q->mode = CONV_FUSED;
    } else if (one) {
        q->mode = CONV_DIRECT;
    } else if (form == CONV_WINO && q->HWo > 0 && q->N > 0 && q->M > 0 && conv2d_wino_fits(q)) {
        q->mode = CONV_WINO;
        q->scratch = q->wq.scratch;
        return NULL;
    } else if (shift_ok && conv2d_shift_fits(q)) {
        q->mode = CONV_SHIFT;
    } else {
        q->mode = CONV_IM2COL;
    }
    if (q->HWo == 0 || q->N == 0 || q->M == 0)
        return NULL;
    int64_t outer = q->N * q->G, mg = q->Mg > 0 ? q->Mg : 1, k = q->K > 0 ? q->K : 1;
    if (q->mode == CONV_SHIFT) {
        int64_t halo = (q->kh - 1) * q->dh;
        int64_t rows = HP_CONV_TILE_ELEMS / (q->Cg * q->P) - halo;
        int64_t rmax = HP_CONV_OUT_ELEMS / (mg * q->P);
        if (rows > rmax)
            rows = rmax;
        q->rows = spread(q->OH, rows < 1 ? 1 : rows, outer, 1);
        q->TR = q->rows + halo;
        q->nblk = hp_cpu_ceil_div(q->OH, q->rows);
        /* tile, its tail slack (the last taps read past it), then the accumulator */
        q->scratch = q->Cg * q->TR * q->P + (q->kw - 1) * q->dw + 16 + q->Mg * q->rows * q->P;
        return NULL;
    }
    int64_t cols = HP_CONV_OUT_ELEMS / mg;
    if (q->mode != CONV_DIRECT && HP_CONV_PACK_ELEMS / k < cols)
        cols = HP_CONV_PACK_ELEMS / k;
    if (cols < 64)
        cols = 64;
    cols = spread(q->HWo, cols, outer, 64);
    if (cols < q->HWo)
        cols = (cols + 15) & ~(int64_t)15;
    if (cols > q->HWo)
        cols = q->HWo;
    q->cols = cols;
    q->nblk = hp_cpu_ceil_div(q->HWo, cols);
    q->scratch = q->mode == CONV_DIRECT ? 0 : q->K * cols;
    return NULL;
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
                        int64_t lo = iw0 >= 0 ? 0 : hp_cpu_ceil_div(-iw0, q->sw);
                        int64_t hi = iw0 >= q->W ? 0 : hp_cpu_ceil_div(q->W - iw0, q->sw);
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
    const float *wt; /* shifted form: weights repacked tap-major, [G][kh*kw][Mg][Cg] */
} conv_job;

/* Shifted form, one block of output rows of one (item, group). */
static void shift_unit(const conv_job *jb, int64_t n, int64_t g, int64_t blk, float *buf)
{
    const conv_geom *q = jb->q;
    int64_t r0 = blk * q->rows, nr = q->OH - r0 < q->rows ? q->OH - r0 : q->rows;
    int64_t P = q->P, TR = nr + (q->kh - 1) * q->dh;
    float *tile = buf, *acc = buf + q->Cg * q->TR * P + (q->kw - 1) * q->dw + 16;
    const float *xg = jb->x->p + n * jb->x->bstride + g * q->Cg * q->HW;
    /* Tile row t is padded row r0 + t, i.e. input row r0 + t - pt; channel pitch TR*P. */
    for (int64_t c = 0; c < q->Cg; c++)
        for (int64_t t = 0; t < TR; t++) {
            float *d = tile + (c * TR + t) * P;
            int64_t ih = r0 + t - q->pt;
            if (ih < 0 || ih >= q->H) {
                memset(d, 0, (size_t)P * sizeof(float));
                continue;
            }
            for (int64_t i = 0; i < q->pl; i++)
                d[i] = 0.0f;
            memcpy(d + q->pl, xg + c * q->HW + ih * q->W, (size_t)q->W * sizeof(float));
            for (int64_t i = q->pl + q->W; i < P; i++)
                d[i] = 0.0f;
        }
    /* The last taps of the last channel read (kw-1)*dw past the tile (padding columns only). */
    memset(tile + q->Cg * TR * P, 0, (size_t)((q->kw - 1) * q->dw + 16) * sizeof(float));
    int64_t taps = q->kh * q->kw, ncol = nr * P;
    for (int64_t tap = 0; tap < taps; tap++) {
        int64_t ky = tap / q->kw, kx = tap % q->kw;
        const float *wtap = jb->wt + (g * taps + tap) * q->Mg * q->Cg;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q->Mg, (int)ncol, (int)q->Cg, 1.0f, wtap,
                    (int)q->Cg, tile + ky * q->dh * P + kx * q->dw, (int)(TR * P), tap ? 1.0f : 0.0f, acc,
                    (int)ncol);
    }
    /* Drop the padding columns; bias and activation on the way out. */
    float *yg = jb->y->p + n * jb->y->bstride + g * q->Mg * q->HWo + r0 * q->OW;
    for (int64_t m = 0; m < q->Mg; m++)
        hp_cpu_bias_act_plane(jb->act, acc + m * ncol, P, yg + m * q->HWo, q->OW, nr, q->OW,
                              jb->bias ? jb->bias[g * q->Mg + m] : 0.0f);
}

static void conv_task(void *arg, int64_t task, int tid)
{
    const conv_job *jb = arg;
    const conv_geom *q = jb->q;
    int64_t per_n = q->G * q->nblk;
    int64_t n = task / per_n, g = (task % per_n) / q->nblk, blk = task % q->nblk;
    if (q->mode == CONV_SHIFT) {
        shift_unit(jb, n, g, blk, jb->c->scratch[tid]);
        return;
    }
    int64_t j0 = blk * q->cols, nc = q->HWo - j0 < q->cols ? q->HWo - j0 : q->cols;
    float *yg = jb->y->p + n * jb->y->bstride + g * q->Mg * q->HWo + j0;
    const float *wg = jb->w + g * q->Mg * q->K;
    const float *bmat;
    int64_t ldb;
    if (q->K == 0) {
        /* No input channels (or an empty kernel): the output is the bias alone. */
        for (int64_t m = 0; m < q->Mg; m++)
            memset(yg + m * q->HWo, 0, (size_t)nc * sizeof(float));
        hp_cpu_act_rows(jb->act, yg, q->HWo, q->Mg, nc, NULL, jb->bias ? jb->bias + g * q->Mg : NULL);
        return;
    }
    if (q->mode == CONV_FUSED) {
        const hp_cpu_tensor *px = jb->pre->x;
        const float *xg = px->p + n * px->bstride + g * q->Cg * q->HW + j0;
        float *buf = jb->c->scratch[tid];
        hp_cpu_affine_act_rows(&jb->pre->act, xg, q->HW, buf, nc, q->Cg, nc, jb->pre->scale + g * q->Cg,
                               jb->pre->shift + g * q->Cg);
        bmat = buf;
        ldb = nc;
    } else if (q->mode == CONV_DIRECT) {
        bmat = jb->x->p + n * jb->x->bstride + g * q->Cg * q->HW + j0;
        ldb = q->HW;
    } else {
        float *buf = jb->c->scratch[tid];
        im2col(q, jb->x->p + n * jb->x->bstride + g * q->Cg * q->HW, j0, nc, buf);
        bmat = buf;
        ldb = nc;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q->Mg, (int)nc, (int)q->K, 1.0f, wg, (int)q->K,
                bmat, (int)ldb, 0.0f, yg, (int)q->HWo);
    hp_cpu_act_rows(jb->act, yg, q->HWo, q->Mg, nc, NULL, jb->bias ? jb->bias + g * q->Mg : NULL);
}

/* Shapes of a Conv node from the graph, for prepare. */
static const char *node_geom(const hp_graph *g, const hp_node *n, int fused, int form, conv_geom *q)
{
    if (n->n_in < 2 || n->in[0] < 0 || n->in[1] < 0 || n->n_out < 1 || n->out[0] < 0)
        return "missing input";
    const hp_value *x = &g->values[n->in[0]], *w = &g->values[n->in[1]], *y = &g->values[n->out[0]];
    return geom_init(q, &n->attr.conv, x->ndim, x->dims, w->ndim, w->dims, y->ndim, y->dims, -1, fused, form);
}

/* The Winograd form is on unless HP_CPU_WINOGRAD is set to 0 (for comparisons and tests). */
static int winograd_enabled(void)
{
    const char *e = getenv("HP_CPU_WINOGRAD");
    return !(e && e[0] == '0' && e[1] == '\0');
}

hp_status hp_cpu_conv2d_prepare(const hp_graph *g, const hp_node *n, int fused, void **data, int64_t *scratch)
{
    *data = NULL;
    *scratch = 0;
    conv_geom q;
    int shift_ok = !fused && n->n_in >= 2 && n->in[1] >= 0 && g->values[n->in[1]].kind == HP_VAL_CONST &&
                   g->values[n->in[1]].dtype == HP_DT_FLOAT && g->values[n->in[1]].data != NULL;
    int form = shift_ok ? (winograd_enabled() ? CONV_WINO : CONV_SHIFT) : 0;
    if (node_geom(g, n, fused, form, &q))
        return HP_OK; /* reported by run */
    *scratch = q.scratch;
    if (q.mode != CONV_SHIFT && q.mode != CONV_WINO)
        return HP_OK;
    int64_t taps = q.kh * q.kw;
    conv_data *cd = malloc(sizeof *cd + sizeof(float) * (size_t)(q.mode == CONV_WINO ? 36 * q.M * q.C
                                                                                      : q.M * q.Cg * taps));
    if (!cd)
        return HP_ERR_NOMEM;
    cd->form = q.mode;
    cd->reserved = 0;
    *data = cd;
    const float *w = g->values[n->in[1]].data;
    if (q.mode == CONV_WINO) {
        hp_cpu_wino_weights(w, q.M, q.C, cd->w);
        return HP_OK;
    }
    /* W[m][c][ky][kx] -> Wt[g][tap][m][c], so each tap is a plain row-major Mg x Cg matrix. */
    float *wt = cd->w;
    for (int64_t gg = 0; gg < q.G; gg++)
        for (int64_t tap = 0; tap < taps; tap++)
            for (int64_t m = 0; m < q.Mg; m++)
                for (int64_t c = 0; c < q.Cg; c++)
                    wt[((gg * taps + tap) * q.Mg + m) * q.Cg + c] = w[((gg * q.Mg + m) * q.Cg + c) * taps + tap];
    return HP_OK;
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
    /* The shifted and Winograd forms need the weights prepare made; the reference never uses them. */
    const conv_data *cd = c->reference ? NULL : c->node_data;
    const float *wt = cd ? cd->w : NULL;
    const char *why = geom_init(&q, a, x->ndim, x->dims, w->ndim, w->dims, out->ndim, out->dims,
                                b ? hp_cpu_numel(b) : -1, pre != NULL, cd ? (int)cd->form : 0);
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
    if (pre && !hp_cpu_same_dims(pre->x, x))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "the folded ScaleShift's input differs in shape");
    if (cd && q.mode != cd->form)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "prepared weights do not match the shapes");
    if (q.scratch > c->scratch_elems)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "scratch too small (%lld < %lld); prepare not run?",
                           (long long)c->scratch_elems, (long long)q.scratch);
    if (q.mode == CONV_WINO) {
        hp_cpu_wino_run(c, &q.wq, x, wt, bias, &a->act, out);
        return HP_OK;
    }
    int64_t ncol = q.mode == CONV_SHIFT ? q.rows * q.P : 0, ldt = q.TR * q.P;
    if (ncol > INT32_MAX || ldt > INT32_MAX || (q.mode == CONV_SHIFT && q.OW > q.P))
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "convolution too large for 32-bit BLAS indices");
    conv_job jb = {c, &q, x, out, w->p, bias, &a->act, pre, wt};
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
