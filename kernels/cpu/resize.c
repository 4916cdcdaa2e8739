/* Resize, 4-D, on H and W only (ONNX Resize as the loader resolved it). Nearest with the four
 * rounding modes, or bilinear, under the half_pixel, pytorch_half_pixel, align_corners and
 * asymmetric coordinate maps. Linear clamps the source coordinate into [0, in-1], which is what
 * ONNX's reference gets by padding the input with its edge values. */
#include <stdlib.h>

#include "kernels/cpu/cpu_internal.h"

/* Source coordinate of output position o (in float, as ONNX's reference computes it). */
static float src_coord(const hp_resize_attr *a, float scale, int64_t o, int64_t in, int64_t out)
{
    switch (a->coord) {
    case HP_CT_PYTORCH_HALF_PIXEL:
        if (out <= 1)
            return 0.0f;
        return ((float)o + 0.5f) / scale - 0.5f;
    case HP_CT_ALIGN_CORNERS: {
        /* ONNX divides by the resized length in * scale (not rounded down), which differs from
         * out - 1 when scales, not sizes, were given. */
        float len = (float)in * scale;
        if (out <= 1 || len <= 1.0f)
            return 0.0f;
        return (float)o * (float)(in - 1) / (len - 1.0f);
    }
    case HP_CT_ASYMMETRIC:
        return (float)o / scale;
    case HP_CT_HALF_PIXEL:
    default:
        return ((float)o + 0.5f) / scale - 0.5f;
    }
}

static int64_t nearest_index(const hp_resize_attr *a, float x, int64_t in)
{
    float r;
    switch (a->nearest) {
    case HP_NEAREST_FLOOR:
        r = floorf(x);
        break;
    case HP_NEAREST_CEIL:
        r = ceilf(x);
        break;
    case HP_NEAREST_ROUND_PREFER_CEIL:
        r = (x == floorf(x) + 0.5f) ? ceilf(x) : roundf(x);
        break;
    case HP_NEAREST_ROUND_PREFER_FLOOR:
    default:
        r = (x == floorf(x) + 0.5f) ? floorf(x) : roundf(x);
        break;
    }
    if (!(r >= 0.0f)) /* also NaN */
        return 0;
    if (r > (float)(in - 1))
        return in - 1;
    return (int64_t)r;
}

/* Linear taps of position o: i0, i1 and the weight of i1. */
static void linear_taps(const hp_resize_attr *a, float scale, int64_t o, int64_t in, int64_t out,
                        int64_t *i0, int64_t *i1, float *w1)
{
    float x = src_coord(a, scale, o, in, out);
    if (!(x >= 0.0f))
        x = 0.0f;
    if (x > (float)(in - 1))
        x = (float)(in - 1);
    int64_t f = (int64_t)floorf(x);
    *i0 = f;
    *i1 = f + 1 < in ? f + 1 : in - 1;
    *w1 = x - (float)f;
}

typedef struct {
    const hp_resize_attr *a;
    const float *x;
    float *y;
    int64_t H, W, OH, OW;
    /* precomputed per output column / row */
    int64_t *cx0, *cx1, *ry0, *ry1;
    float *wx, *wy;
} rs_job;

static void rs_task(void *arg, int64_t plane, int tid)
{
    (void)tid;
    const rs_job *j = arg;
    const float *x = j->x + plane * j->H * j->W;
    float *y = j->y + plane * j->OH * j->OW;
    for (int64_t oh = 0; oh < j->OH; oh++) {
        float *yr = y + oh * j->OW;
        if (j->a->mode == HP_RESIZE_NEAREST) {
            const float *xr = x + j->ry0[oh] * j->W;
            for (int64_t ow = 0; ow < j->OW; ow++)
                yr[ow] = xr[j->cx0[ow]];
        } else {
            const float *r0 = x + j->ry0[oh] * j->W, *r1 = x + j->ry1[oh] * j->W;
            float wy = j->wy[oh];
            for (int64_t ow = 0; ow < j->OW; ow++) {
                float wx = j->wx[ow];
                float top = r0[j->cx0[ow]] * (1.0f - wx) + r0[j->cx1[ow]] * wx;
                float bot = r1[j->cx0[ow]] * (1.0f - wx) + r1[j->cx1[ow]] * wx;
                yr[ow] = top * (1.0f - wy) + bot * wy;
            }
        }
    }
}

hp_status hp_cpu_resize(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    const hp_resize_attr *a = &n->attr.resize;
    if (x->ndim != 4 || out->ndim != 4)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "only 4-D Resize is supported");
    if (out->dims[0] != x->dims[0] || out->dims[1] != x->dims[1])
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "Resize may only scale H and W");
    if (a->mode != HP_RESIZE_NEAREST && a->mode != HP_RESIZE_LINEAR)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "unknown resize mode %d", (int)a->mode);
    int64_t H = x->dims[2], W = x->dims[3], OH = out->dims[2], OW = out->dims[3];
    int64_t planes = x->dims[0] * x->dims[1];
    if (planes == 0 || OH == 0 || OW == 0)
        return HP_OK;
    if (H == 0 || W == 0)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "cannot resize an empty image to a non-empty one");
    /* A missing scale (0) means the sizes were given: the map uses out/in. */
    float sh = a->scale_h > 0.0f ? a->scale_h : (float)OH / (float)H;
    float sw = a->scale_w > 0.0f ? a->scale_w : (float)OW / (float)W;
    if (c->reference) {
        for (int64_t p = 0; p < planes; p++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    const float *xp = x->p + p * H * W;
                    float v;
                    if (a->mode == HP_RESIZE_NEAREST) {
                        int64_t ih = nearest_index(a, src_coord(a, sh, oh, H, OH), H);
                        int64_t iw = nearest_index(a, src_coord(a, sw, ow, W, OW), W);
                        v = xp[ih * W + iw];
                    } else {
                        int64_t y0, y1, x0, x1;
                        float wy, wx;
                        linear_taps(a, sh, oh, H, OH, &y0, &y1, &wy);
                        linear_taps(a, sw, ow, W, OW, &x0, &x1, &wx);
                        float top = xp[y0 * W + x0] * (1.0f - wx) + xp[y0 * W + x1] * wx;
                        float bot = xp[y1 * W + x0] * (1.0f - wx) + xp[y1 * W + x1] * wx;
                        v = top * (1.0f - wy) + bot * wy;
                    }
                    out->p[(p * OH + oh) * OW + ow] = v;
                }
        return HP_OK;
    }
    rs_job j = {a, x->p, out->p, H, W, OH, OW, NULL, NULL, NULL, NULL, NULL, NULL};
    j.cx0 = malloc(sizeof(int64_t) * (size_t)OW * 2);
    j.ry0 = malloc(sizeof(int64_t) * (size_t)OH * 2);
    j.wx = malloc(sizeof(float) * (size_t)OW);
    j.wy = malloc(sizeof(float) * (size_t)OH);
    hp_status st = HP_OK;
    if (!j.cx0 || !j.ry0 || !j.wx || !j.wy) {
        st = hp_cpu_fail(c, n, HP_ERR_NOMEM, "out of memory for %lldx%lld resize tables", (long long)OH,
                         (long long)OW);
        goto done;
    }
    j.cx1 = j.cx0 + OW;
    j.ry1 = j.ry0 + OH;
    for (int64_t o = 0; o < OW; o++) {
        if (a->mode == HP_RESIZE_NEAREST)
            j.cx0[o] = nearest_index(a, src_coord(a, sw, o, W, OW), W);
        else
            linear_taps(a, sw, o, W, OW, &j.cx0[o], &j.cx1[o], &j.wx[o]);
    }
    for (int64_t o = 0; o < OH; o++) {
        if (a->mode == HP_RESIZE_NEAREST)
            j.ry0[o] = nearest_index(a, src_coord(a, sh, o, H, OH), H);
        else
            linear_taps(a, sh, o, H, OH, &j.ry0[o], &j.ry1[o], &j.wy[o]);
    }
    hp_pool_run(c->pool, planes, rs_task, &j);
done:
    free(j.cx0);
    free(j.ry0);
    free(j.wx);
    free(j.wy);
    return st;
}
