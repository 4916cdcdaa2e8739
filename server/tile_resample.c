/* server/tile_resample.h: Pillow's Reduce.c and Resample.c (8 bits per channel), restated. */
#include "server/tile_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

/* Pillow compares floor and ceil by how far each leaves the aspect ratio; the first wins ties. */
static int round_aspect_w(double v, double aspect, double y)
{
    double f = floor(v), c = ceil(v);
    double df = fabs(aspect - f / y), dc = fabs(aspect - c / y);
    int r = (int)(dc < df ? c : f);
    return r < 1 ? 1 : r;
}

static int round_aspect_h(double v, double aspect, double x)
{
    double f = floor(v), c = ceil(v);
    double df = f == 0 ? 0 : fabs(aspect - x / f), dc = c == 0 ? 0 : fabs(aspect - x / c);
    int r = (int)(dc < df ? c : f);
    return r < 1 ? 1 : r;
}

void hp_resample_thumbnail_size(int src_w, int src_h, int want_w, int want_h, int *out_w,
                                int *out_h)
{
    int x = want_w, y = want_h;
    if (x >= src_w && y >= src_h) {
        *out_w = src_w, *out_h = src_h;
        return;
    }
    double aspect = (double)src_w / src_h;
    if ((double)x / y >= aspect)
        x = round_aspect_w(y * aspect, aspect, y);
    else
        y = round_aspect_h(x / aspect, aspect, x);
    *out_w = x, *out_h = y;
}

/* Image.reduce: each output pixel is the mean of its factor block (partial at the right and
 * bottom edges), rounded as Pillow's fixed-point division does. */
static void reduce_box(const uint8_t *src, int sw, int sh, int ch, int fx, int fy, uint8_t *dst,
                       int dw, int dh)
{
    for (int y = 0; y < dh; y++) {
        int y0 = y * fy, y1 = y0 + fy < sh ? y0 + fy : sh;
        for (int x = 0; x < dw; x++) {
            int x0 = x * fx, x1 = x0 + fx < sw ? x0 + fx : sw;
            uint32_t n = (uint32_t)((y1 - y0) * (x1 - x0));
            uint32_t mult = (uint32_t)(4294967296.0 / (256.0 * n));
            for (int c = 0; c < ch; c++) {
                uint32_t ss = 0;
                for (int yy = y0; yy < y1; yy++)
                    for (int xx = x0; xx < x1; xx++)
                        ss += src[((size_t)yy * sw + xx) * ch + c];
                dst[((size_t)y * dw + x) * ch + c] =
                    (uint8_t)(((uint64_t)(ss + n / 2) * mult) >> 24);
            }
        }
    }
}

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc. Returns ksize; *bounds gets (xmin, n)
 * per output pixel and *kk the fixed-point weights (ksize per output pixel). */
static int coeffs(int in_size, double in0, double in1, int out_size, int **bounds, int **kk)
{
    double scale = (in1 - in0) / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 3.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *pre = calloc((size_t)out_size * ksize, sizeof *pre);
    *bounds = malloc((size_t)out_size * 2 * sizeof **bounds);
    *kk = malloc((size_t)out_size * ksize * sizeof **kk);
    if (!pre || !*bounds || !*kk) {
        free(pre);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double *k = pre + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            k[x] = lanczos((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        (*bounds)[xx * 2] = xmin;
        (*bounds)[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * ksize; i++)
        (*kk)[i] = pre[i] < 0 ? (int)(-0.5 + pre[i] * (1 << PRECISION_BITS))
                              : (int)(0.5 + pre[i] * (1 << PRECISION_BITS));
    free(pre);
    return ksize;
}

static uint8_t clip8(int v)
{
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Image.resize(size, LANCZOS, box) without the reduce step: horizontal then vertical. */
static hp_status lanczos_box(const uint8_t *src, int sw, int sh, int ch, const double box[4],
                             uint8_t *dst, int dw, int dh)
{
    int *bh = NULL, *kh = NULL, *bv = NULL, *kv = NULL;
    uint8_t *tmp = NULL;
    int *acc = NULL;
    hp_status st = HP_ERR_NOMEM;
    int ksh = coeffs(sw, box[0], box[2], dw, &bh, &kh);
    int ksv = coeffs(sh, box[1], box[3], dh, &bv, &kv);
    if (ksh < 0 || ksv < 0)
        goto fail;
    int need_h = dw != sw || box[0] != 0 || box[2] != dw;
    int need_v = dh != sh || box[1] != 0 || box[3] != dh;
    int y_first = bv[0], y_last = bv[dh * 2 - 2] + bv[dh * 2 - 1];
    const uint8_t *in = src;
    int in_w = sw;
    if (need_h) {
        int th = y_last - y_first;
        if (!(tmp = malloc((size_t)dw * th * ch)))
            goto fail;
        for (int y = 0; y < th; y++) {
            const uint8_t *row = src + (size_t)(y + y_first) * sw * ch;
            for (int x = 0; x < dw; x++) {
                int xmin = bh[x * 2], n = bh[x * 2 + 1];
                const int *k = kh + (size_t)x * ksh;
                uint8_t *o = tmp + ((size_t)y * dw + x) * ch;
                if (ch == 3) { /* the common case, three sums in one pass */
                    int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                    const uint8_t *p = row + xmin * 3;
                    for (int i = 0; i < n; i++, p += 3)
                        s0 += p[0] * k[i], s1 += p[1] * k[i], s2 += p[2] * k[i];
                    o[0] = clip8(s0), o[1] = clip8(s1), o[2] = clip8(s2);
                    continue;
                }
                for (int c = 0; c < ch; c++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int i = 0; i < n; i++)
                        ss += row[(xmin + i) * ch + c] * k[i];
                    o[c] = clip8(ss);
                }
            }
        }
        for (int i = 0; i < dh; i++)
            bv[i * 2] -= y_first;
        in = tmp, in_w = dw;
    }
    if (need_v) {
        if (!(acc = malloc((size_t)dw * ch * sizeof *acc)))
            goto fail;
        for (int y = 0; y < dh; y++) {
            int ymin = bv[y * 2], n = bv[y * 2 + 1];
            const int *k = kv + (size_t)y * ksv;
            /* Row by row into wide sums, so the inner loop runs along memory. */
            for (int j = 0; j < dw * ch; j++)
                acc[j] = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < n; i++) {
                const uint8_t *p = in + (size_t)(ymin + i) * in_w * ch;
                int kv_i = k[i];
                for (int j = 0; j < dw * ch; j++)
                    acc[j] += p[j] * kv_i;
            }
            for (int j = 0; j < dw * ch; j++)
                dst[(size_t)y * dw * ch + j] = clip8(acc[j]);
        }
    } else {
        memcpy(dst, in, (size_t)dw * dh * ch);
    }
    st = HP_OK;
fail:
    free(bh), free(kh), free(bv), free(kv), free(tmp), free(acc);
    return st;
}

hp_status hp_resample_thumbnail(const uint8_t *src, int sw, int sh, int ch, uint8_t *dst, int dw,
                                int dh)
{
    if (sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || (ch != 1 && ch != 3))
        return HP_ERR_INVALID;
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * ch);
        return HP_OK;
    }
    double box[4] = {0, 0, sw, sh};
    int fx = (int)((double)sw / dw / 2.0), fy = (int)((double)sh / dh / 2.0);
    if (fx < 1)
        fx = 1;
    if (fy < 1)
        fy = 1;
    if (fx == 1 && fy == 1)
        return lanczos_box(src, sw, sh, ch, box, dst, dw, dh);
    /* The Lanczos support reaches past the whole image, so Pillow reduces all of it. */
    int rw = (sw + fx - 1) / fx, rh = (sh + fy - 1) / fy;
    uint8_t *red = malloc((size_t)rw * rh * ch);
    if (!red)
        return HP_ERR_NOMEM;
    reduce_box(src, sw, sh, ch, fx, fy, red, rw, rh);
    double rbox[4] = {0, 0, (double)sw / fx, (double)sh / fy};
    hp_status st = lanczos_box(red, rw, rh, ch, rbox, dst, dw, dh);
    free(red);
    return st;
}
