/* Shape inference for windowed and resampling ops: Conv and pooling (auto_pad, ceil_mode),
 * Resize / Upsample (scales or sizes from constants), Pad (pads from attributes or constants). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/infer_internal.h"
#include "models/onnx_ops.h"
#include "models/tensor_convert.h"

/* Output size of a sliding window; 0 when it does not fit. */
static int64_t window_out(int64_t in, int k, int dil, int stride, int pb, int pe, int ceil_mode)
{
    int64_t span = (int64_t)(k - 1) * dil + 1;
    int64_t avail = in + pb + pe - span;
    if (avail < 0)
        return 0;
    int64_t out = ceil_mode ? (avail + stride - 1) / stride + 1 : avail / stride + 1;
    /* The last window must start inside the input or its leading padding (PyTorch and ONNX). */
    if (ceil_mode && (out - 1) * stride >= in + pb)
        out--;
    return out;
}

static void resolve_auto_pad(int auto_pad, int64_t in, int k, int dil, int stride, int *pb, int *pe)
{
    if (auto_pad == 3) {
        *pb = *pe = 0;
    } else if (auto_pad == 1 || auto_pad == 2) {
        int64_t out = (in + stride - 1) / stride;
        int64_t total = (out - 1) * stride + (int64_t)(k - 1) * dil + 1 - in;
        if (total < 0)
            total = 0;
        int small = (int)(total / 2), big = (int)(total - total / 2);
        *pb = auto_pad == 1 ? small : big;
        *pe = auto_pad == 1 ? big : small;
    }
}

hp_status hp_infer_conv(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0), *w = hp_infer_input(c, 1), *b = hp_infer_input(c, 2);
    hp_status st;
    if (!x || !w)
        return hp_infer_fail(c, HP_ERR_INVALID, "Conv needs X and W");
    if ((st = hp_infer_require_float(c, x, "input")) || (st = hp_infer_require_float(c, w, "weight")) ||
        (st = hp_infer_require_float(c, b, "bias")) || (st = hp_infer_require_rank(c, x, 4, "input")) ||
        (st = hp_infer_require_rank(c, w, 4, "weight")))
        return st;
    hp_conv_attr *a = &n->attr.conv;
    if (n->load.has_kernel && (a->kh != w->dims[2] || a->kw != w->dims[3]))
        return hp_infer_fail(c, HP_ERR_INVALID, "kernel_shape %dx%d does not match the weight's %lldx%lld", a->kh,
                    a->kw, (long long)w->dims[2], (long long)w->dims[3]);
    a->kh = (int)w->dims[2];
    a->kw = (int)w->dims[3];
    int64_t M = w->dims[0];
    if (x->dims[1] != w->dims[1] * a->group || M % a->group != 0 || M == 0)
        return hp_infer_fail(c, HP_ERR_INVALID, "input has %lld channels, weight %lldx%lld with group %d",
                    (long long)x->dims[1], (long long)M, (long long)w->dims[1], a->group);
    if (b && (b->ndim != 1 || b->dims[0] != M))
        return hp_infer_fail(c, HP_ERR_INVALID, "bias must have %lld values", (long long)M);
    resolve_auto_pad(n->load.auto_pad, x->dims[2], a->kh, a->dil[0], a->stride[0], &a->pad[0], &a->pad[2]);
    resolve_auto_pad(n->load.auto_pad, x->dims[3], a->kw, a->dil[1], a->stride[1], &a->pad[1], &a->pad[3]);
    int64_t oh = window_out(x->dims[2], a->kh, a->dil[0], a->stride[0], a->pad[0], a->pad[2], 0);
    int64_t ow = window_out(x->dims[3], a->kw, a->dil[1], a->stride[1], a->pad[1], a->pad[3], 0);
    if (oh <= 0 || ow <= 0)
        return hp_infer_fail(c, HP_ERR_INVALID, "the %dx%d kernel does not fit the %lldx%lld input", a->kh, a->kw,
                    (long long)x->dims[2], (long long)x->dims[3]);
    int64_t d[4] = {x->dims[0], M, oh, ow};
    hp_infer_set_dims(hp_infer_output(c), 4, d);
    n->op = HP_OP_CONV;
    return HP_OK;
}

hp_status hp_infer_pool(ictx *c, hp_node *n, hp_op op)
{
    hp_value *x = hp_infer_input(c, 0);
    hp_status st;
    if ((st = hp_infer_require_float(c, x, "input")) || (st = hp_infer_require_rank(c, x, 4, "input")))
        return st;
    hp_pool_attr *a = &n->attr.pool;
    resolve_auto_pad(n->load.auto_pad, x->dims[2], a->kh, a->dil[0], a->stride[0], &a->pad[0], &a->pad[2]);
    resolve_auto_pad(n->load.auto_pad, x->dims[3], a->kw, a->dil[1], a->stride[1], &a->pad[1], &a->pad[3]);
    if (a->pad[0] >= a->kh || a->pad[2] >= a->kh || a->pad[1] >= a->kw || a->pad[3] >= a->kw) {
        if (n->load.auto_pad == 0)
            return hp_infer_fail(c, HP_ERR_INVALID, "pads must be smaller than the kernel");
    }
    int64_t oh = window_out(x->dims[2], a->kh, a->dil[0], a->stride[0], a->pad[0], a->pad[2], n->load.ceil_mode);
    int64_t ow = window_out(x->dims[3], a->kw, a->dil[1], a->stride[1], a->pad[1], a->pad[3], n->load.ceil_mode);
    if (oh <= 0 || ow <= 0)
        return hp_infer_fail(c, HP_ERR_INVALID, "the %dx%d window does not fit the %lldx%lld input", a->kh, a->kw,
                    (long long)x->dims[2], (long long)x->dims[3]);
    int64_t d[4] = {x->dims[0], x->dims[1], oh, ow};
    hp_infer_set_dims(hp_infer_output(c), 4, d);
    n->op = op;
    return HP_OK;
}

hp_status hp_infer_resize(ictx *c, hp_node *n, int upsample)
{
    hp_value *x = hp_infer_input(c, 0);
    hp_status st;
    if ((st = hp_infer_require_float(c, x, "input")) || (st = hp_infer_require_rank(c, x, 4, "input")))
        return st;
    float scales[HP_MAX_DIMS];
    int64_t sizes[HP_MAX_DIMS];
    int have_scales = 0, have_sizes = 0;
    hp_value *sv = NULL, *zv = NULL;
    if (upsample) {
        if (c->g->opset >= 9)
            sv = hp_infer_input(c, 1);
    } else if (c->g->opset < 11) {
        sv = hp_infer_input(c, 1);
    } else {
        sv = hp_infer_input(c, 2);
        zv = hp_infer_input(c, 3);
    }
    if (sv && hp_value_numel(sv) > 0) {
        if (!hp_infer_is_const(sv) || sv->dtype != HP_DT_FLOAT || hp_value_numel(sv) != 4)
            return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "scales must be a constant with 4 floats");
        memcpy(scales, sv->data, sizeof(float) * 4);
        have_scales = 1;
    } else if (upsample && n->load.n_scales == 4) {
        memcpy(scales, n->load.scales, sizeof(float) * 4);
        have_scales = 1;
    }
    if (zv && hp_value_numel(zv) > 0) {
        int nz;
        if ((st = hp_infer_const_ints(c, zv, "sizes", sizes, HP_MAX_DIMS, &nz)))
            return st;
        if (nz != 4)
            return hp_infer_fail(c, HP_ERR_INVALID, "sizes must have 4 values");
        have_sizes = 1;
    }
    if (have_scales == have_sizes)
        return hp_infer_fail(c, HP_ERR_INVALID, "exactly one of scales and sizes must be given");
    int64_t d[4];
    if (have_scales) {
        for (int i = 0; i < 4; i++) {
            if (!(scales[i] > 0) || scales[i] > 1024)
                return hp_infer_fail(c, HP_ERR_INVALID, "scale %g out of range", (double)scales[i]);
            d[i] = (int64_t)floor((double)x->dims[i] * scales[i]);
        }
    } else {
        for (int i = 0; i < 4; i++)
            d[i] = sizes[i];
        for (int i = 0; i < 4; i++)
            scales[i] = x->dims[i] ? (float)d[i] / (float)x->dims[i] : 1.0f;
    }
    if (d[0] != x->dims[0] || d[1] != x->dims[1])
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "resizing the batch or channel dimensions");
    if (d[2] <= 0 || d[3] <= 0 || d[2] > 65536 || d[3] > 65536)
        return hp_infer_fail(c, HP_ERR_INVALID, "output size %lldx%lld is out of range", (long long)d[2], (long long)d[3]);
    n->attr.resize.scale_h = scales[2];
    n->attr.resize.scale_w = scales[3];
    hp_infer_set_dims(hp_infer_output(c), 4, d);
    n->op = HP_OP_RESIZE;
    n->n_in = 1;
    return HP_OK;
}

hp_status hp_infer_pad(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0);
    hp_status st = hp_infer_require_float(c, x, "input");
    if (st)
        return st;
    int64_t pads[2 * HP_MAX_DIMS];
    int np = n->load.n_ints;
    if (c->g->opset >= 11) {
        if (!hp_infer_input(c, 1))
            return hp_infer_fail(c, HP_ERR_INVALID, "Pad needs pads");
        if ((st = hp_infer_const_ints(c, hp_infer_input(c, 1), "pads", pads, 2 * HP_MAX_DIMS, &np)))
            return st;
        hp_value *cv = hp_infer_input(c, 2);
        if (cv && hp_value_numel(cv) > 0) {
            if (!hp_infer_is_const(cv) || hp_value_numel(cv) != 1)
                return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "constant_value must be a constant scalar");
            n->attr.pad.value = cv->dtype == HP_DT_FLOAT ? *(float *)cv->data : (float)*(int64_t *)cv->data;
        }
        if (hp_infer_input(c, 3))
            return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "the axes input of Pad");
    } else {
        memcpy(pads, n->load.ints, sizeof(int64_t) * (size_t)(np > 0 ? np : 0));
    }
    if (np != 2 * x->ndim)
        return hp_infer_fail(c, HP_ERR_INVALID, "pads has %d values for rank %d", np, x->ndim);
    int64_t d[HP_MAX_DIMS];
    for (int i = 0; i < np; i++)
        if (pads[i] > HP_MAX_TENSOR_ELEMS || pads[i] < -HP_MAX_TENSOR_ELEMS)
            return hp_infer_fail(c, HP_ERR_INVALID, "pads[%d] = %lld is absurd", i, (long long)pads[i]);
    for (int i = 0; i < x->ndim; i++) {
        d[i] = x->dims[i] + pads[i] + pads[i + x->ndim];
        if (d[i] < 0)
            return hp_infer_fail(c, HP_ERR_INVALID, "pads crop dim %d below zero", i);
        if (n->attr.pad.mode == HP_PAD_REFLECT &&
            (pads[i] >= x->dims[i] || pads[i + x->ndim] >= x->dims[i]) &&
            (pads[i] > 0 || pads[i + x->ndim] > 0))
            return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "reflect padding wider than dim %d", i);
        if (n->attr.pad.mode != HP_PAD_CONSTANT && x->dims[i] == 0 && d[i] > 0)
            return hp_infer_fail(c, HP_ERR_INVALID, "cannot %s-pad an empty dim",
                        n->attr.pad.mode == HP_PAD_EDGE ? "edge" : "reflect");
    }
    int all_zero = 1;
    for (int i = 0; i < np; i++)
        all_zero &= pads[i] == 0;
    if (all_zero) /* PyTorch puts a zero Pad before every AveragePool: no work, no copy */
        return hp_infer_make_alias(c, x, x->ndim, x->dims);
    memcpy(n->attr.pad.pads, pads, sizeof(int64_t) * (size_t)np);
    hp_infer_set_dims(hp_infer_output(c), x->ndim, d);
    n->op = HP_OP_PAD;
    n->n_in = 1;
    return HP_OK;
}

