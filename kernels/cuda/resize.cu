/* Resize on H and W of a 4-D NCHW tensor: nearest (with nearest_mode) or bilinear, with the
 * half_pixel / pytorch_half_pixel / align_corners / asymmetric coordinate maps, using the
 * scales in attr.resize. Bilinear clamps source coordinates into [0, in-1]. */
#include "kernels/cuda/cuda_internal.h"

typedef struct {
    int mode, coord, nearest;
    float scale_h, scale_w;
} resize_geom;

__device__ __forceinline__ float src_coord(int64_t o, int64_t in_len, int64_t out_len,
                                           float scale, int coord)
{
    float x = (float)o;
    switch (coord) {
    case HP_CT_HALF_PIXEL: return (x + 0.5f) / scale - 0.5f;
    case HP_CT_PYTORCH_HALF_PIXEL: return out_len > 1 ? (x + 0.5f) / scale - 0.5f : 0.f;
    case HP_CT_ALIGN_CORNERS: {
        /* As ONNX: divided by the resized length in * scale, not rounded down (CPU alike). */
        float len = (float)in_len * scale;
        return (out_len > 1 && len > 1.f) ? x * (float)(in_len - 1) / (len - 1.f) : 0.f;
    }
    default: return x / scale; /* asymmetric */
    }
}

/* As the CPU reference: ties by the nearest mode, clamped into the input (NaN -> 0). */
__device__ __forceinline__ int64_t nearest_index(float x, int mode, int64_t len)
{
    float r;
    switch (mode) {
    case HP_NEAREST_FLOOR: r = floorf(x); break;
    case HP_NEAREST_CEIL: r = ceilf(x); break;
    case HP_NEAREST_ROUND_PREFER_CEIL: r = (x == floorf(x) + 0.5f) ? ceilf(x) : roundf(x); break;
    default: r = (x == floorf(x) + 0.5f) ? floorf(x) : roundf(x); break;
    }
    if (!(r >= 0.f))
        return 0;
    if (r > (float)(len - 1))
        return len - 1;
    return (int64_t)r;
}

template <typename T>
__global__ void k_resize(const void *x, int xf32, void *y, int yf32, int64_t H, int64_t W,
                         int64_t OH, int64_t OW, resize_geom g, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t ow = i % OW, t = i / OW;
        int64_t oh = t % OH, plane = t / OH;
        const int64_t base = plane * H * W;
        float sy = src_coord(oh, H, OH, g.scale_h, g.coord);
        float sx = src_coord(ow, W, OW, g.scale_w, g.coord);
        float v;
        if (g.mode == HP_RESIZE_NEAREST) {
            v = hp_ld<T>(x, xf32,
                         base + nearest_index(sy, g.nearest, H) * W + nearest_index(sx, g.nearest, W));
        } else {
            sy = !(sy >= 0.f) ? 0.f : (sy > (float)(H - 1) ? (float)(H - 1) : sy);
            sx = !(sx >= 0.f) ? 0.f : (sx > (float)(W - 1) ? (float)(W - 1) : sx);
            int64_t y0 = (int64_t)floorf(sy), x0 = (int64_t)floorf(sx);
            int64_t y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
            float ly = sy - (float)y0, lx = sx - (float)x0;
            float a = hp_ld<T>(x, xf32, base + y0 * W + x0), bq = hp_ld<T>(x, xf32, base + y0 * W + x1);
            float c = hp_ld<T>(x, xf32, base + y1 * W + x0), d = hp_ld<T>(x, xf32, base + y1 * W + x1);
            v = (a * (1.f - lx) + bq * lx) * (1.f - ly) + (c * (1.f - lx) + d * lx) * ly;
        }
        hp_st<T>(y, yf32, i, v);
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    const hp_resize_attr *a = &n->attr.resize;
    if (x.ndim != 4 || y.ndim != 4 || x.dims[0] != y.dims[0] || x.dims[1] != y.dims[1])
        return hp_error_set(&b->base.err, HP_ERR_UNSUPPORTED,
                            "cuda: resize '%s': only H and W of a 4-D tensor may be resized",
                            n->name);
    if (!(a->scale_h > 0.f) || !(a->scale_w > 0.f))
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: resize '%s': scales must be positive", n->name);
    if (y.numel == 0)
        return HP_OK;
    if (x.numel == 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: resize '%s' of an empty input",
                            n->name);
    resize_geom gm = {(int)a->mode, (int)a->coord, (int)a->nearest, a->scale_h, a->scale_w};
    k_resize<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, y.p, y.f32, x.dims[2], x.dims[3], y.dims[2], y.dims[3], gm, y.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_resize_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: resize '%s' needs an input",
                            n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
