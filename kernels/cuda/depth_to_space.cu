/* DepthToSpace, DCR (ONNX default) or CRD (attr.d2s.crd), 4-D NCHW. */
#include "kernels/cuda/cuda_internal.h"

template <typename T>
__global__ void k_d2s(const void *x, int xf32, void *y, int yf32, int64_t C, int64_t H,
                      int64_t W, int bs, int crd, int64_t total)
{
    /* y: N x C x (H*bs) x (W*bs); x: N x (C*bs*bs) x H x W */
    const int64_t OH = H * bs, OW = W * bs;
    HP_CU_LOOP(i, total)
    {
        int64_t ow = i % OW, t = i / OW;
        int64_t oh = t % OH;
        t /= OH;
        int64_t c = t % C, nn = t / C;
        int64_t h = oh / bs, bh = oh % bs, w = ow / bs, bw = ow % bs;
        int64_t ic = crd ? (c * bs + bh) * bs + bw : (bh * bs + bw) * C + c;
        int64_t at = ((nn * C * bs * bs + ic) * H + h) * W + w;
        hp_st<T>(y, yf32, i, hp_ld<T>(x, xf32, at));
    }
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor x, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &x));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    int bs = n->attr.d2s.blocksize;
    if (x.ndim != 4 || y.ndim != 4 || bs < 1 || x.dims[1] % ((int64_t)bs * bs) != 0 ||
        y.dims[1] != x.dims[1] / ((int64_t)bs * bs) || y.dims[2] != x.dims[2] * bs ||
        y.dims[3] != x.dims[3] * bs || y.dims[0] != x.dims[0])
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: depth-to-space '%s': shapes and blocksize %d disagree", n->name,
                            bs);
    if (y.numel == 0)
        return HP_OK;
    k_d2s<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(
        x.p, x.f32, y.p, y.f32, y.dims[1], x.dims[2], x.dims[3], bs, n->attr.d2s.crd, y.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_depth_to_space_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 1 || n->n_out < 1 || n->in[0] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: depth-to-space '%s' needs an input", n->name);
    HP_CU_DISPATCH(b, launch, b, n);
}
