/* 3x3 stride-1 convolution by Winograd F(4x4, 3x3).
 *
 * Each 4x4 block of output pixels ("tile") is computed from its 6x6 input patch d and each
 * 3x3 kernel g as Y = A^T [ (G g G^T) .* (B^T d B) ] A: the products in the 6x6 transform
 * domain are 36 independent channel sums, i.e. 36 GEMMs U[k] (M x C) x V[k] (C x tiles), which
 * do 36/(9*16) = 1/4 of the multiplications of the direct (shifted-GEMM) form.
 *
 * F(4x4) rather than F(2x2) because it halves the GEMM work again while its float32 error stays
 * small (transform constants 4, 5, 8, 1/6, 1/24): about 1e-5 of the largest output on unnormalized
 * random data with a few hundred channels, and DenseNet-121/169/201 end within 5e-7 of PyTorch.
 * F(6x6)'s larger constants cost one to two more orders of magnitude.
 *
 * The weights are transformed once at prepare, in double. Each row of tiles is cut into segments
 * (HP_WINO_SEG_MAX tiles at most); segments of all batch items, numbered item-major, are taken a
 * fixed number at a time: a work unit is one such block: transform its input patches into
 * scratch, 36 SGEMMs, then the output transform fused with bias and activation, written straight
 * into the (possibly strided) output. Blocks depend only on the shapes, so any thread count
 * computes the same bytes, and scratch is bounded by the block whatever the batch size. */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

/* Longest run of tiles handled as one segment of a tile row: bounds the per-thread workspace
 * and the block size whatever the image width. */
#define HP_WINO_SEG_MAX 64
/* Transformed input of one block (floats): its 36 C x tb matrices are streamed through by the
 * GEMMs, so they should sit in the 2 MiB L2 together with the output block. */
#define HP_WINO_V_ELEMS (1 << 18)
/* Smallest GEMM width (tiles per block) worth a block of its own. */
#define HP_WINO_MIN_TILES 16
/* Blocks we try to have per convolution, so small planes still spread over a few cores. */
#define HP_WINO_MIN_UNITS 16
/* Below these channel counts the transforms outweigh the GEMM savings. */
#define HP_WINO_MIN_C 16
#define HP_WINO_MIN_M 8
/* Channels transformed together: the workspace is about 44 x (chunk x block width) floats. */
#define HP_WINO_CHUNK 8
/* Most segments in one block (a stack array of the task). */
#define HP_WINO_MAX_RS 256

int hp_cpu_wino_plan(hp_wino_geom *q, int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int64_t OH,
                     int64_t OW, int64_t pt, int64_t pl)
{
    memset(q, 0, sizeof *q);
    if (C < HP_WINO_MIN_C || M < HP_WINO_MIN_M || N < 1 || OH < 1 || OW < 1 || H < 1 || W < 1)
        return 0;
    if (C > INT32_MAX / 36 || M > INT32_MAX / 36)
        return 0;
    q->N = N;
    q->C = C;
    q->H = H;
    q->W = W;
    q->M = M;
    q->OH = OH;
    q->OW = OW;
    q->pt = pt;
    q->pl = pl;
    q->th = hp_cpu_ceil_div(OH, 4);
    q->tw = hp_cpu_ceil_div(OW, 4);
    int64_t nseg = hp_cpu_ceil_div(q->tw, HP_WINO_SEG_MAX);
    q->sl = hp_cpu_ceil_div(q->tw, nseg);
    q->nseg = nseg;
    q->segs = N * q->th * nseg;
    /* R segments per block: as many as the L2 budget allows, fewer if that leaves too few
     * blocks, but never a GEMM narrower than HP_WINO_MIN_TILES when the shape has that many. */
    int64_t want = HP_WINO_V_ELEMS / (36 * C);
    int64_t R = want / q->sl, rmin = hp_cpu_ceil_div(HP_WINO_MIN_TILES, q->sl);
    if (R < 1)
        R = 1;
    if (hp_cpu_ceil_div(q->segs, R) < HP_WINO_MIN_UNITS)
        R = hp_cpu_ceil_div(q->segs, HP_WINO_MIN_UNITS);
    if (R < rmin)
        R = rmin;
    if (R > q->segs)
        R = q->segs;
    if (R > HP_WINO_MAX_RS)
        R = HP_WINO_MAX_RS;
    q->rs = R;
    q->tb = R * (q->sl + 1);
    q->nblk = hp_cpu_ceil_div(q->segs, R);
    /* input: row 4F, phases 4(F + 1), horizontal transform 36F; output (less): 24F + 16F */
    int64_t F = HP_WINO_CHUNK * q->tb;
    q->ws = 44 * F + 4 + 16;
    q->scratch = 36 * (C + M) * q->tb + q->ws;
    return 1;
}

void hp_cpu_wino_weights(const float *w, int64_t M, int64_t C, float *u)
{
    static const double G[6][3] = {
        {1.0 / 4, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6},
        {1.0 / 24, -1.0 / 12, 1.0 / 6},
        {0, 0, 1},
    };
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = w + (m * C + c) * 9;
            double t[6][3]; /* G g */
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++)
                    t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) /* (G g) G^T */
                    u[((int64_t)(i * 6 + j) * M + m) * C + c] =
                        (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
        }
}

/* One segment of a tile row: item n, tile row ty, tiles [tx0, tx0 + len). */
typedef struct {
    int64_t n, ty, tx0, len;
} seg;

static seg seg_at(const hp_wino_geom *q, int64_t i)
{
    seg s;
    int64_t k = i % q->nseg, row = i / q->nseg;
    s.n = row / q->th;
    s.ty = row % q->th;
    s.tx0 = k * q->sl;
    s.len = q->tw - s.tx0 < q->sl ? q->tw - s.tx0 : q->sl;
    return s;
}

/* 1-D B^T d over n lanes: o_j[f] = (B^T (d0..d5)[f])_j. One loop computing all six outputs, so
 * that it vectorizes (a per-output loop would branch on j inside). */
static inline void bt_lanes(int64_t n, const float *restrict d0, const float *restrict d1,
                            const float *restrict d2, const float *restrict d3, const float *restrict d4,
                            const float *restrict d5, float *restrict o0, float *restrict o1,
                            float *restrict o2, float *restrict o3, float *restrict o4, float *restrict o5)
{
    for (int64_t f = 0; f < n; f++) {
        float a0 = d0[f], a1 = d1[f], a2 = d2[f], a3 = d3[f], a4 = d4[f], a5 = d5[f];
        o0[f] = 4.0f * a0 - 5.0f * a2 + a4;
        o1[f] = -4.0f * a1 - 4.0f * a2 + a3 + a4;
        o2[f] = 4.0f * a1 - 4.0f * a2 - a3 + a4;
        o3[f] = -2.0f * a1 - a2 + 2.0f * a3 + a4;
        o4[f] = 2.0f * a1 - a2 - 2.0f * a3 + a4;
        o5[f] = 4.0f * a1 - 5.0f * a3 + a5;
    }
}

/* Where a block's segments read: per segment, its item's input plane offset of the patch
 * column origin, the first input row, and the columns [lo, hi) of its padded row span
 * (4 (sl + 1) wide) that lie inside the input. */
typedef struct {
    int64_t base, iy0, lo, hi;
} seg_src;

/* Input transform of a block of segments, HP_WINO_CHUNK channels at a time. Along a row the
 * 6-wide patches of consecutive tiles overlap by 2, so each padded input row span is split into
 * its 4 phases (p_k[t] = row[4t + k]; tile t's patch row is p0..p3[t], p0[t+1], p1[t+1]). With
 * every (channel, segment) row span 4 (sl + 1) long, "(channel, segment, tile)" flattens to one
 * index f, and every step is one long unit-stride loop over f, whatever the plane size; the
 * extra tile per span (t = sl) is computed and dropped. */
HP_CPU_CLONES
static void input_block(const hp_wino_geom *q, const hp_cpu_tensor *x, const seg_src *src, int64_t ns, float *v,
                        float *ws)
{
    const int64_t sp = q->sl + 1, span = 4 * sp, ld = ns * sp;
    for (int64_t c0 = 0; c0 < q->C; c0 += HP_WINO_CHUNK) {
        int64_t cc = q->C - c0 < HP_WINO_CHUNK ? q->C - c0 : HP_WINO_CHUNK, F = cc * ld;
        float *row = ws;           /* [cc][ns][span] one input row of every span */
        float *ph = row + 4 * F;   /* [4 phases][F + 1] of that row */
        float *h = ph + 4 * F + 4; /* [6 rows][6 outputs][F] horizontal transform */
        for (int r = 0; r < 6; r++) {
            memset(row, 0, sizeof(float) * (size_t)(4 * F));
            for (int64_t c = 0; c < cc; c++) {
                const float *xc = x->p + (c0 + c) * q->H * q->W;
                for (int64_t i = 0; i < ns; i++) {
                    int64_t iy = src[i].iy0 + r;
                    if (iy < 0 || iy >= q->H || src[i].hi <= src[i].lo)
                        continue;
                    /* Short spans (a few floats on small planes): a loop, not a memcpy call. */
                    float *d = row + (c * ns + i) * span;
                    const float *sx = xc + src[i].base + iy * q->W;
                    for (int64_t k = src[i].lo; k < src[i].hi; k++)
                        d[k] = sx[k];
                }
            }
            float *p0 = ph, *p1 = ph + (F + 1), *p2 = ph + 2 * (F + 1), *p3 = ph + 3 * (F + 1);
            for (int64_t f = 0; f < F; f++) {
                p0[f] = row[4 * f];
                p1[f] = row[4 * f + 1];
                p2[f] = row[4 * f + 2];
                p3[f] = row[4 * f + 3];
            }
            /* The last f has no f + 1: it is an extra tile, so it reads zero. */
            p0[F] = p1[F] = 0.0f;
            float *hr = h + r * 6 * F;
            bt_lanes(F, p0, p1, p2, p3, p0 + 1, p1 + 1, hr, hr + F, hr + 2 * F, hr + 3 * F, hr + 4 * F, hr + 5 * F);
        }
        /* Vertical transform straight into V[k][c][ld]: chunk rows are consecutive there. */
        for (int j = 0; j < 6; j++) {
            const float *e = h + j * F; /* row r, output j at e + r * 6F */
            float *vj = v + ((int64_t)j * q->C + c0) * ld;
            int64_t st = 6 * q->C * ld; /* V[k + 6] - V[k] */
            bt_lanes(F, e, e + 6 * F, e + 12 * F, e + 18 * F, e + 24 * F, e + 30 * F, vj, vj + st, vj + 2 * st,
                     vj + 3 * st, vj + 4 * st, vj + 5 * st);
        }
    }
}

/* 1-D A^T m over n lanes: 6 inputs to 4 outputs. */
static inline void at_lanes(int64_t n, const float *restrict m0, const float *restrict m1,
                            const float *restrict m2, const float *restrict m3, const float *restrict m4,
                            const float *restrict m5, float *restrict o0, float *restrict o1,
                            float *restrict o2, float *restrict o3)
{
    for (int64_t f = 0; f < n; f++) {
        float a = m1[f] + m2[f], b = m1[f] - m2[f], e = m3[f] + m4[f], g = m3[f] - m4[f];
        o0[f] = m0[f] + a + e;
        o1[f] = b + 2.0f * g;
        o2[f] = a + 4.0f * e;
        o3[f] = b + 8.0f * g + m5[f];
    }
}

/* Output transform of a block, HP_WINO_CHUNK output channels at a time (flattened with the
 * block's columns into one long loop, as for the input), then bias and activation while writing
 * each segment's 4 rows into y. o: O[k][M][ld]. */
HP_CPU_CLONES
static void output_block(const hp_wino_geom *q, const float *o, int64_t s0, int64_t ns, const float *bias,
                         const hp_act *act, const hp_cpu_tensor *y, float *ws)
{
    const int64_t sp = q->sl + 1, ld = ns * sp, HWo = q->OH * q->OW;
    for (int64_t m0 = 0; m0 < q->M; m0 += HP_WINO_CHUNK) {
        int64_t mc = q->M - m0 < HP_WINO_CHUNK ? q->M - m0 : HP_WINO_CHUNK, F = mc * ld;
        float *tv = ws;            /* [4][6][F] vertical transform */
        float *stage = ws + 24 * F; /* [4 rows][F tiles][4] output rows */
        const float *ob = o + m0 * ld;
        int64_t st = 6 * q->M * ld;
        for (int j = 0; j < 6; j++) {
            const float *mj = ob + (int64_t)j * q->M * ld;
            at_lanes(F, mj, mj + st, mj + 2 * st, mj + 3 * st, mj + 4 * st, mj + 5 * st, tv + j * F,
                     tv + (6 + j) * F, tv + (12 + j) * F, tv + (18 + j) * F);
        }
        for (int i = 0; i < 4; i++) {
            const float *u = tv + i * 6 * F;
            float *sr = stage + i * 4 * F;
            for (int64_t f = 0; f < F; f++) {
                float a = u[F + f] + u[2 * F + f], b = u[F + f] - u[2 * F + f];
                float e = u[3 * F + f] + u[4 * F + f], g = u[3 * F + f] - u[4 * F + f];
                sr[4 * f] = u[f] + a + e;
                sr[4 * f + 1] = b + 2.0f * g;
                sr[4 * f + 2] = a + 4.0f * e;
                sr[4 * f + 3] = b + 8.0f * g + u[5 * F + f];
            }
        }
        for (int64_t k = 0; k < ns; k++) {
            seg sg = seg_at(q, s0 + k);
            int64_t oy = sg.ty * 4, ox = sg.tx0 * 4;
            int64_t ny = q->OH - oy < 4 ? q->OH - oy : 4, nx = q->OW - ox < 4 * sg.len ? q->OW - ox : 4 * sg.len;
            for (int64_t m = 0; m < mc; m++)
                hp_cpu_bias_act_plane(act, stage + (m * ld + k * sp) * 4, 4 * F,
                                      y->p + sg.n * y->bstride + (m0 + m) * HWo + oy * q->OW + ox, q->OW, ny, nx,
                                      bias ? bias[m0 + m] : 0.0f);
        }
    }
}

typedef struct {
    hp_cpu_ctx *c;
    const hp_wino_geom *q;
    const hp_cpu_tensor *x, *y;
    const float *u, *bias;
    const hp_act *act;
} wino_job;

static void wino_task(void *arg, int64_t blk, int tid)
{
    const wino_job *jb = arg;
    const hp_wino_geom *q = jb->q;
    int64_t s0 = blk * q->rs, ns = q->segs - s0 < q->rs ? q->segs - s0 : q->rs, ld = ns * (q->sl + 1);
    float *v = jb->c->scratch[tid], *o = v + 36 * q->C * q->tb, *ws = o + 36 * q->M * q->tb;
    seg_src src[HP_WINO_MAX_RS];
    for (int64_t i = 0; i < ns; i++) {
        seg sg = seg_at(q, s0 + i);
        int64_t ix0 = sg.tx0 * 4 - q->pl, span = 4 * (q->sl + 1);
        int64_t lo = ix0 < 0 ? -ix0 : 0, hi = q->W - ix0 < span ? q->W - ix0 : span;
        /* A short segment's patches end at its last tile: read no further. */
        if (hi > 4 * sg.len + 2)
            hi = 4 * sg.len + 2;
        src[i] = (seg_src){sg.n * jb->x->bstride + ix0, sg.ty * 4 - q->pt, lo, hi};
    }
    input_block(q, jb->x, src, ns, v, ws);
    /* Each segment carries one extra tile (see input_block): computed, never written out. */
    for (int k = 0; k < 36; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q->M, (int)ld, (int)q->C, 1.0f,
                    jb->u + (int64_t)k * q->M * q->C, (int)q->C, v + (int64_t)k * q->C * ld, (int)ld, 0.0f,
                    o + (int64_t)k * q->M * ld, (int)ld);
    output_block(q, o, s0, ns, jb->bias, jb->act, jb->y, ws);
}

void hp_cpu_wino_run(hp_cpu_ctx *c, const hp_wino_geom *q, const hp_cpu_tensor *x, const float *u,
                     const float *bias, const hp_act *act, const hp_cpu_tensor *y)
{
    wino_job jb = {c, q, x, y, u, bias, act};
    hp_pool_run(c->pool, q->nblk, wino_task, &jb);
}
