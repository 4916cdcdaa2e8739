/* 3x3 stride-1 convolution by Winograd F(4x4, 3x3).
 *
 * Each 4x4 block of output pixels ("tile") is computed from its 6x6 input patch d and each
 * 3x3 kernel g as Y = A^T [ (G g G^T) .* (B^T d B) ] A: the products in the 6x6 transform
 * domain are 36 independent channel sums, i.e. 36 GEMMs U[k] (M x C) x V[k] (C x tiles), which
 * do 36/(9*16) = 1/4 of the multiplications of the direct (shifted-GEMM) form.
 *
 * F(4x4) rather than F(2x2) because it halves the GEMM work again while its float32 error stays
 * near 1e-6 of the output's magnitude (its transform constants are small: 4, 5, 8, 1/6, 1/24);
 * F(6x6)'s constants reach 1/720 and 10^2, and its error grows by about two orders of magnitude.
 *
 * The weights are transformed once at prepare, in double. Tiles of all batch items are numbered
 * item-major and cut into blocks of `tb` tiles; a work unit is one block: gather and transform its
 * input patches into scratch, 36 SGEMMs, then the output transform fused with bias and
 * activation, written straight into the (possibly strided) output. Blocks depend only on the
 * shapes, so any thread count computes the same bytes, and scratch is bounded by `tb` whatever
 * the batch size. */
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "kernels/cpu/cpu_internal.h"

/* Tiles transformed together, one per SIMD lane (a 16-float AVX-512 vector). */
#define L 16
/* Transformed input of one block (floats): its 36 C x tb matrices are streamed through by the
 * GEMMs, so they should sit in the 2 MiB L2 together with the output block. */
#define HP_WINO_V_ELEMS (1 << 18)
/* Blocks we try to have per convolution, so small planes (7x7 at batch 8: 32 tiles) still spread
 * over a few cores. */
#define HP_WINO_MIN_UNITS 16
/* Below these channel counts the transforms outweigh the GEMM savings. */
#define HP_WINO_MIN_C 16
#define HP_WINO_MIN_M 8

static int64_t ceil_div(int64_t a, int64_t b)
{
    return (a + b - 1) / b;
}

static int64_t round_lanes(int64_t n)
{
    return (n + L - 1) / L * L;
}

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
    q->th = ceil_div(OH, 4);
    q->tw = ceil_div(OW, 4);
    q->tiles = N * q->th * q->tw;
    int64_t tb = HP_WINO_V_ELEMS / (36 * C) / L * L;
    if (tb < L)
        tb = L;
    if (tb > 256)
        tb = 256;
    if (ceil_div(q->tiles, tb) < HP_WINO_MIN_UNITS) {
        int64_t t2 = round_lanes(ceil_div(q->tiles, HP_WINO_MIN_UNITS));
        if (t2 < tb)
            tb = t2;
    }
    if (tb > round_lanes(q->tiles))
        tb = round_lanes(q->tiles);
    q->tb = tb;
    q->nblk = ceil_div(q->tiles, tb);
    q->scratch = 36 * (C + M) * tb;
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

/* Where tile t's patch starts: its item and the input/output corner. */
typedef struct {
    int64_t n, oy, ox;
    int valid;
} tile_pos;

static void tile_at(const hp_wino_geom *q, int64_t t, tile_pos *p)
{
    if (t >= q->tiles) {
        p->valid = 0;
        return;
    }
    int64_t per = q->th * q->tw, r = t % per;
    p->n = t / per;
    p->oy = r / q->tw * 4;
    p->ox = r % q->tw * 4;
    p->valid = 1;
}

/* 1-D B^T d over 6 rows of L lanes; `s` is the stride (in floats) between the 6 inputs/outputs. */
#define BT_1D(in, out, s)                                                                         \
    for (int l = 0; l < L; l++) {                                                                 \
        float d0 = in[0 * s + l], d1 = in[1 * s + l], d2 = in[2 * s + l], d3 = in[3 * s + l];    \
        float d4 = in[4 * s + l], d5 = in[5 * s + l];                                             \
        out[0 * s + l] = 4.0f * d0 - 5.0f * d2 + d4;                                              \
        out[1 * s + l] = -4.0f * d1 - 4.0f * d2 + d3 + d4;                                        \
        out[2 * s + l] = 4.0f * d1 - 4.0f * d2 - d3 + d4;                                         \
        out[3 * s + l] = -2.0f * d1 - d2 + 2.0f * d3 + d4;                                        \
        out[4 * s + l] = 2.0f * d1 - d2 - 2.0f * d3 + d4;                                         \
        out[5 * s + l] = 4.0f * d1 - 5.0f * d3 + d5;                                              \
    }

/* Input transform of one lane group for every channel: v[(k*C + c)*tb + l] = (B^T d B)[k]. */
HP_CPU_CLONES
static void input_group(const hp_wino_geom *q, const hp_cpu_tensor *x, const tile_pos *pos, float *v)
{
    float d[36 * L], t[36 * L];
    int inside[L];
    int64_t base[L];
    for (int l = 0; l < L; l++) {
        int64_t iy = pos[l].oy - q->pt, ix = pos[l].ox - q->pl;
        inside[l] = pos[l].valid && iy >= 0 && ix >= 0 && iy + 6 <= q->H && ix + 6 <= q->W;
        base[l] = pos[l].valid ? pos[l].n * x->bstride + iy * q->W + ix : 0;
    }
    for (int64_t c = 0; c < q->C; c++) {
        const float *xc = x->p + c * q->H * q->W;
        for (int l = 0; l < L; l++) {
            if (inside[l]) {
                const float *s = xc + base[l];
                for (int r = 0; r < 6; r++)
                    for (int k = 0; k < 6; k++)
                        d[(r * 6 + k) * L + l] = s[r * q->W + k];
                continue;
            }
            /* Border or past the last tile: zero outside the input. */
            int64_t iy = pos[l].oy - q->pt, ix = pos[l].ox - q->pl;
            for (int r = 0; r < 6; r++)
                for (int k = 0; k < 6; k++) {
                    int64_t yy = iy + r, xx = ix + k;
                    int in = pos[l].valid && yy >= 0 && yy < q->H && xx >= 0 && xx < q->W;
                    d[(r * 6 + k) * L + l] = in ? xc[pos[l].n * x->bstride + yy * q->W + xx] : 0.0f;
                }
        }
        /* Columns: t[r][k] = sum over rows of B^T; then rows: out[r][k] = sum over columns. */
        for (int k = 0; k < 6; k++) {
            const float *in = d + k * L;
            float *out = t + k * L;
            BT_1D(in, out, 6 * L)
        }
        float o[36 * L];
        for (int r = 0; r < 6; r++) {
            const float *in = t + r * 6 * L;
            float *out = o + r * 6 * L;
            BT_1D(in, out, L)
        }
        for (int k = 0; k < 36; k++)
            memcpy(v + (k * q->C + c) * q->tb, o + k * L, sizeof(float) * L);
    }
}

/* 1-D A^T m: 6 inputs (stride si) to 4 outputs (stride so), L lanes. */
#define AT_1D(in, out, si, so)                                                                    \
    for (int l = 0; l < L; l++) {                                                                 \
        float m0 = in[0 * si + l], m1 = in[1 * si + l], m2 = in[2 * si + l], m3 = in[3 * si + l]; \
        float m4 = in[4 * si + l], m5 = in[5 * si + l];                                           \
        float a = m1 + m2, b = m1 - m2, e = m3 + m4, f = m3 - m4;                                 \
        out[0 * so + l] = m0 + a + e;                                                             \
        out[1 * so + l] = b + 2.0f * f;                                                           \
        out[2 * so + l] = a + 4.0f * e;                                                           \
        out[3 * so + l] = b + 8.0f * f + m5;                                                      \
    }

/* Output transform of one lane group for every output channel, with bias and activation. */
HP_CPU_CLONES
static void output_group(const hp_wino_geom *q, const float *o, const tile_pos *pos, const float *bias,
                         const hp_act *act, const hp_cpu_tensor *y)
{
    float s[36 * L], t[24 * L], r[16 * L];
    int64_t HWo = q->OH * q->OW;
    for (int64_t m = 0; m < q->M; m++) {
        for (int k = 0; k < 36; k++)
            memcpy(s + k * L, o + (k * q->M + m) * q->tb, sizeof(float) * L);
        /* Columns: t[i][k] (4 x 6), then rows: r[i][j] (4 x 4). */
        for (int k = 0; k < 6; k++) {
            const float *in = s + k * L;
            float *out = t + k * L;
            AT_1D(in, out, 6 * L, 6 * L)
        }
        for (int i = 0; i < 4; i++) {
            const float *in = t + i * 6 * L;
            float *out = r + i * 4 * L;
            AT_1D(in, out, L, L)
        }
        float b = bias ? bias[m] : 0.0f;
        for (int l = 0; l < L; l++) {
            if (!pos[l].valid)
                continue;
            float *ym = y->p + pos[l].n * y->bstride + m * HWo;
            int64_t ny = q->OH - pos[l].oy < 4 ? q->OH - pos[l].oy : 4;
            int64_t nx = q->OW - pos[l].ox < 4 ? q->OW - pos[l].ox : 4;
            for (int64_t i = 0; i < ny; i++) {
                float *row = ym + (pos[l].oy + i) * q->OW + pos[l].ox;
                for (int64_t j = 0; j < nx; j++)
                    row[j] = hp_cpu_act1(act, r[(i * 4 + j) * L + l] + b);
            }
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
    int64_t t0 = blk * q->tb, nt = q->tiles - t0 < q->tb ? q->tiles - t0 : q->tb, ntp = round_lanes(nt);
    float *v = jb->c->scratch[tid], *o = v + 36 * q->C * q->tb;
    tile_pos pos[L];
    for (int64_t g = 0; g < ntp; g += L) {
        for (int l = 0; l < L; l++)
            tile_at(q, t0 + g + l, &pos[l]);
        input_group(q, jb->x, pos, v + g);
    }
    for (int k = 0; k < 36; k++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)q->M, (int)ntp, (int)q->C, 1.0f,
                    jb->u + (int64_t)k * q->M * q->C, (int)q->C, v + (int64_t)k * q->C * q->tb, (int)q->tb, 0.0f,
                    o + (int64_t)k * q->M * q->tb, (int)q->tb);
    for (int64_t g = 0; g < ntp; g += L) {
        for (int l = 0; l < L; l++)
            tile_at(q, t0 + g + l, &pos[l]);
        output_group(q, o + g, pos, jb->bias, jb->act, jb->y);
    }
}

void hp_cpu_wino_run(hp_cpu_ctx *c, const hp_wino_geom *q, const hp_cpu_tensor *x, const float *u,
                     const float *bias, const hp_act *act, const hp_cpu_tensor *y)
{
    wino_job jb = {c, q, x, y, u, bias, act};
    hp_pool_run(c->pool, q->nblk, wino_task, &jb);
}
