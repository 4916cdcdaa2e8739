/* Shape inference and load-time folding, for one batch size.
 *
 * Walks the nodes in order. Each node either becomes a backend op with resolved output dims and
 * attributes (auto_pad, ceil_mode, Resize scales, Pad pads, Clip bounds), or is folded into a
 * constant (the Shape → Gather → Unsqueeze → Concat chains PyTorch emits around flatten and
 * reshape), or becomes a storage alias (Reshape, Flatten, Squeeze, Identity...). Anything that
 * cannot be resolved is refused with the node named. */
#include "models/infer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/onnx_ops.h"
#include "models/tensor_convert.h"

typedef struct {
    hp_graph *g;
    hp_error *err;
    int k; /* current node */
} ictx;

static hp_status fail(ictx *c, hp_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static hp_status fail(ictx *c, hp_status code, const char *fmt, ...)
{
    char why[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const hp_node *n = &c->g->nodes[c->k];
    return hp_error_set(c->err, code, "%s: node %d '%s' (%s): %s", c->g->source ? c->g->source : "model",
                        c->k, n->name, n->op_type, why);
}

static hp_value *in_v(ictx *c, int i)
{
    const hp_node *n = &c->g->nodes[c->k];
    return (i < n->n_in && n->in[i] >= 0) ? &c->g->values[n->in[i]] : NULL;
}

static hp_value *out_v(ictx *c)
{
    return &c->g->values[c->g->nodes[c->k].out[0]];
}

static int is_const(const hp_value *v)
{
    return v && v->kind == HP_VAL_CONST;
}

static void set_dims(hp_value *v, int ndim, const int64_t *dims)
{
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        v->dims[i] = dims[i];
    v->dtype = HP_DT_FLOAT;
}

/* A constant's elements as int64 (from int64 or float data). */
static hp_status const_ints(ictx *c, const hp_value *v, const char *what, int64_t *out, int max, int *n)
{
    if (!is_const(v))
        return fail(c, HP_ERR_UNSUPPORTED, "%s must be a constant (computed at load time)", what);
    int64_t cnt = hp_value_numel(v);
    if (cnt > max)
        return fail(c, HP_ERR_INVALID, "%s has %lld values (at most %d)", what, (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++)
        out[i] = v->dtype == HP_DT_INT64 ? ((const int64_t *)v->data)[i]
                                         : (int64_t)((const float *)v->data)[i];
    *n = (int)cnt;
    return HP_OK;
}

/* Product of dims, 0 when it would exceed HP_MAX_TENSOR_ELEMS (no overflow on the way). */
static int numel_checked(int ndim, const int64_t *dims, int64_t *out)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || (dims[i] > 0 && n > HP_MAX_TENSOR_ELEMS / dims[i]))
            return 0;
        n *= dims[i];
    }
    *out = n;
    return 1;
}

static hp_status require_float(ictx *c, const hp_value *v, const char *what)
{
    if (v && v->dtype != HP_DT_FLOAT)
        return fail(c, HP_ERR_UNSUPPORTED, "%s '%s' has data type %s; only float32 runs", what,
                    v->name, hp_dtype_name(v->dtype));
    return HP_OK;
}

static hp_status require_rank(ictx *c, const hp_value *v, int rank, const char *what)
{
    if (v->ndim != rank)
        return fail(c, HP_ERR_UNSUPPORTED, "%s '%s' has rank %d; only rank %d (2-D images, NCHW) is supported",
                    what, v->name, v->ndim, rank);
    return HP_OK;
}

static int norm_axis(int axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank)
        return 0;
    *out = axis < 0 ? axis + rank : axis;
    return 1;
}

/* Numpy multidirectional broadcast of a and b into out; 0 when incompatible. */
static int broadcast(const hp_value *a, const hp_value *b, int *ndim, int64_t *out)
{
    int r = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return 0;
        out[i] = da == 1 ? db : da;
    }
    *ndim = r;
    return 1;
}

/* Output becomes a constant sharing (or copying) data; node dead. */
static hp_status fold_share(ictx *c, const hp_value *src, int ndim, const int64_t *dims)
{
    hp_value *o = out_v(c);
    if (o->owns_data)
        free(o->data);
    o->kind = HP_VAL_CONST;
    o->dtype = src->dtype;
    o->data = src->data;
    o->owns_data = 0;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        o->dims[i] = dims[i];
    c->g->nodes[c->k].dead = 1;
    return HP_OK;
}

static hp_status fold_new(ictx *c, hp_dtype dt, int ndim, const int64_t *dims, const void *data)
{
    hp_value *o = out_v(c);
    hp_status st = hp_value_set_const(o, dt, ndim, dims, data, c->err);
    if (st)
        return st;
    c->g->nodes[c->k].dead = 1;
    return HP_OK;
}

/* The output shares the input's storage with new dims (Reshape and friends). */
static hp_status make_alias(ictx *c, const hp_value *x, int ndim, const int64_t *dims)
{
    int64_t n = -1;
    if (!numel_checked(ndim, dims, &n) || n != hp_value_numel(x))
        return fail(c, HP_ERR_INVALID, "cannot reshape %lld elements into %lld", (long long)hp_value_numel(x),
                    (long long)n);
    if (is_const(x))
        return fold_share(c, x, ndim, dims);
    hp_node *node = &c->g->nodes[c->k];
    node->op = HP_OP_ALIAS;
    node->n_in = 1; /* shape/axes inputs are consumed at load */
    set_dims(out_v(c), ndim, dims);
    return HP_OK;
}

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

static hp_status infer_conv(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0), *w = in_v(c, 1), *b = in_v(c, 2);
    hp_status st;
    if (!x || !w)
        return fail(c, HP_ERR_INVALID, "Conv needs X and W");
    if ((st = require_float(c, x, "input")) || (st = require_float(c, w, "weight")) ||
        (st = require_float(c, b, "bias")) || (st = require_rank(c, x, 4, "input")) ||
        (st = require_rank(c, w, 4, "weight")))
        return st;
    hp_conv_attr *a = &n->attr.conv;
    if (n->load.has_kernel && (a->kh != w->dims[2] || a->kw != w->dims[3]))
        return fail(c, HP_ERR_INVALID, "kernel_shape %dx%d does not match the weight's %lldx%lld", a->kh,
                    a->kw, (long long)w->dims[2], (long long)w->dims[3]);
    a->kh = (int)w->dims[2];
    a->kw = (int)w->dims[3];
    int64_t M = w->dims[0];
    if (x->dims[1] != w->dims[1] * a->group || M % a->group != 0 || M == 0)
        return fail(c, HP_ERR_INVALID, "input has %lld channels, weight %lldx%lld with group %d",
                    (long long)x->dims[1], (long long)M, (long long)w->dims[1], a->group);
    if (b && (b->ndim != 1 || b->dims[0] != M))
        return fail(c, HP_ERR_INVALID, "bias must have %lld values", (long long)M);
    resolve_auto_pad(n->load.auto_pad, x->dims[2], a->kh, a->dil[0], a->stride[0], &a->pad[0], &a->pad[2]);
    resolve_auto_pad(n->load.auto_pad, x->dims[3], a->kw, a->dil[1], a->stride[1], &a->pad[1], &a->pad[3]);
    int64_t oh = window_out(x->dims[2], a->kh, a->dil[0], a->stride[0], a->pad[0], a->pad[2], 0);
    int64_t ow = window_out(x->dims[3], a->kw, a->dil[1], a->stride[1], a->pad[1], a->pad[3], 0);
    if (oh <= 0 || ow <= 0)
        return fail(c, HP_ERR_INVALID, "the %dx%d kernel does not fit the %lldx%lld input", a->kh, a->kw,
                    (long long)x->dims[2], (long long)x->dims[3]);
    int64_t d[4] = {x->dims[0], M, oh, ow};
    set_dims(out_v(c), 4, d);
    n->op = HP_OP_CONV;
    return HP_OK;
}

static hp_status infer_pool(ictx *c, hp_node *n, hp_op op)
{
    hp_value *x = in_v(c, 0);
    hp_status st;
    if ((st = require_float(c, x, "input")) || (st = require_rank(c, x, 4, "input")))
        return st;
    hp_pool_attr *a = &n->attr.pool;
    resolve_auto_pad(n->load.auto_pad, x->dims[2], a->kh, a->dil[0], a->stride[0], &a->pad[0], &a->pad[2]);
    resolve_auto_pad(n->load.auto_pad, x->dims[3], a->kw, a->dil[1], a->stride[1], &a->pad[1], &a->pad[3]);
    if (a->pad[0] >= a->kh || a->pad[2] >= a->kh || a->pad[1] >= a->kw || a->pad[3] >= a->kw) {
        if (n->load.auto_pad == 0)
            return fail(c, HP_ERR_INVALID, "pads must be smaller than the kernel");
    }
    int64_t oh = window_out(x->dims[2], a->kh, a->dil[0], a->stride[0], a->pad[0], a->pad[2], n->load.ceil_mode);
    int64_t ow = window_out(x->dims[3], a->kw, a->dil[1], a->stride[1], a->pad[1], a->pad[3], n->load.ceil_mode);
    if (oh <= 0 || ow <= 0)
        return fail(c, HP_ERR_INVALID, "the %dx%d window does not fit the %lldx%lld input", a->kh, a->kw,
                    (long long)x->dims[2], (long long)x->dims[3]);
    int64_t d[4] = {x->dims[0], x->dims[1], oh, ow};
    set_dims(out_v(c), 4, d);
    n->op = op;
    return HP_OK;
}

static hp_status infer_unary(ictx *c, hp_node *n, hp_act_kind kind)
{
    hp_value *x = in_v(c, 0);
    hp_status st = require_float(c, x, "input");
    if (st)
        return st;
    float alpha = n->attr.act.alpha;
    n->attr.act = (hp_act){.kind = kind, .alpha = alpha, .lo = -INFINITY, .hi = INFINITY};
    if (kind == HP_ACT_CLIP) {
        if (n->load.has_clip_min)
            n->attr.act.lo = n->load.clip_min;
        if (n->load.has_clip_max)
            n->attr.act.hi = n->load.clip_max;
        for (int i = 1; i <= 2; i++) {
            hp_value *b = in_v(c, i);
            if (!b)
                continue;
            if (!is_const(b) || hp_value_numel(b) != 1)
                return fail(c, HP_ERR_UNSUPPORTED, "Clip bounds must be constant scalars");
            float v = b->dtype == HP_DT_FLOAT ? *(float *)b->data : (float)*(int64_t *)b->data;
            if (i == 1)
                n->attr.act.lo = v;
            else
                n->attr.act.hi = v;
        }
        n->n_in = 1;
    }
    set_dims(out_v(c), x->ndim, x->dims);
    n->op = HP_OP_UNARY;
    return HP_OK;
}

/* Replaces constant input `slot` by a view of the same data with `trailing` dims of 1 appended. */
static hp_status view_with_trailing_ones(ictx *c, int slot, int trailing, hp_value **out)
{
    int nv = hp_graph_add_value(c->g, "");
    if (nv < 0)
        return fail(c, HP_ERR_NOMEM, "out of memory");
    const hp_value *b = &c->g->values[c->g->nodes[c->k].in[slot]]; /* values may have moved */
    if (b->ndim + trailing > HP_MAX_DIMS)
        return fail(c, HP_ERR_UNSUPPORTED, "rank above %d", HP_MAX_DIMS);
    hp_value *v = &c->g->values[nv];
    v->kind = HP_VAL_CONST;
    v->dtype = b->dtype;
    v->data = b->data;
    v->ndim = b->ndim + trailing;
    memcpy(v->dims, b->dims, sizeof(int64_t) * (size_t)b->ndim);
    for (int i = b->ndim; i < v->ndim; i++)
        v->dims[i] = 1;
    c->g->nodes[c->k].in[slot] = nv;
    *out = v;
    return HP_OK;
}

/* Opset < 7: B broadcasts to A only with broadcast=1, its dims aligned at `axis` (numpy aligns
 * at the end). A constant B is re-viewed with trailing ones so numpy rules then apply. */
static hp_status legacy_broadcast(ictx *c, hp_node *n, hp_value **pb)
{
    hp_value *a = in_v(c, 0), *b = *pb;
    if (n->load.ints[0] == 0) {
        if (a->ndim != b->ndim || memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
            return fail(c, HP_ERR_INVALID, "shapes differ and broadcast = 0");
        return HP_OK;
    }
    if (!n->load.has_start)
        return HP_OK;
    int axis = n->load.axis < 0 ? n->load.axis + a->ndim : n->load.axis;
    int trailing = a->ndim - axis - b->ndim;
    if (axis < 0 || trailing < 0)
        return fail(c, HP_ERR_INVALID, "axis %d does not fit B of rank %d", n->load.axis, b->ndim);
    if (trailing == 0)
        return HP_OK;
    if (!is_const(b))
        return fail(c, HP_ERR_UNSUPPORTED, "legacy broadcast (axis) of a runtime operand");
    return view_with_trailing_ones(c, 1, trailing, pb);
}

static hp_status infer_binary(ictx *c, hp_node *n, hp_binary_kind kind)
{
    hp_value *a = in_v(c, 0), *b = in_v(c, 1);
    if (!a || !b)
        return fail(c, HP_ERR_INVALID, "needs two inputs");
    if (c->g->opset < 7) {
        hp_status st = legacy_broadcast(c, n, &b);
        if (st)
            return st;
        a = in_v(c, 0);
    }
    int nd;
    int64_t d[HP_MAX_DIMS];
    if (!broadcast(a, b, &nd, d))
        return fail(c, HP_ERR_INVALID, "shapes of '%s' and '%s' do not broadcast", a->name, b->name);
    if (is_const(a) && is_const(b) && a->dtype == HP_DT_INT64 && b->dtype == HP_DT_INT64) {
        /* Shape arithmetic: fold. */
        int64_t numel = 1;
        for (int i = 0; i < nd; i++)
            numel *= d[i];
        if (numel > 4096)
            return fail(c, HP_ERR_UNSUPPORTED, "integer arithmetic on large tensors");
        int64_t *r = malloc(sizeof(int64_t) * (size_t)(numel ? numel : 1));
        if (!r)
            return fail(c, HP_ERR_NOMEM, "out of memory");
        const int64_t *pa = a->data, *pb = b->data;
        for (int64_t i = 0; i < numel; i++) {
            /* Index into each broadcast operand. */
            int64_t ia = 0, ib = 0, rem = i, sa = 1, sb = 1;
            for (int j = nd - 1; j >= 0; j--) {
                int64_t coord = rem % d[j];
                rem /= d[j];
                int ja = j - (nd - a->ndim), jb = j - (nd - b->ndim);
                if (ja >= 0) {
                    ia += (a->dims[ja] == 1 ? 0 : coord) * sa;
                    sa *= a->dims[ja];
                }
                if (jb >= 0) {
                    ib += (b->dims[jb] == 1 ? 0 : coord) * sb;
                    sb *= b->dims[jb];
                }
            }
            int64_t x = pa[ia], y = pb[ib];
            r[i] = kind == HP_BIN_ADD ? x + y : kind == HP_BIN_SUB ? x - y : kind == HP_BIN_MUL ? x * y
                                                                          : (y ? x / y : 0);
        }
        hp_status st = fold_new(c, HP_DT_INT64, nd, d, r);
        free(r);
        return st;
    }
    hp_status st;
    if ((st = require_float(c, a, "operand")) || (st = require_float(c, b, "operand")))
        return st;
    set_dims(out_v(c), nd, d);
    n->op = HP_OP_BINARY;
    n->attr.binary = kind;
    return HP_OK;
}

static hp_status infer_concat(ictx *c, hp_node *n)
{
    hp_value *first = NULL;
    int all_const = 1, live = 0;
    for (int i = 0; i < n->n_in; i++) {
        hp_value *v = in_v(c, i);
        if (!v)
            return fail(c, HP_ERR_INVALID, "input %d is empty", i);
        live++;
        if (!first)
            first = v;
        all_const &= is_const(v);
    }
    if (!first)
        return fail(c, HP_ERR_INVALID, "Concat without inputs");
    int axis;
    if (!norm_axis(n->load.axis, first->ndim, &axis))
        return fail(c, HP_ERR_INVALID, "axis %d out of range for rank %d", n->load.axis, first->ndim);
    int64_t d[HP_MAX_DIMS];
    memcpy(d, first->dims, sizeof d);
    d[axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        hp_value *v = in_v(c, i);
        if (!v)
            continue;
        if (v->ndim != first->ndim || v->dtype != first->dtype)
            return fail(c, HP_ERR_INVALID, "inputs differ in rank or type");
        for (int j = 0; j < v->ndim; j++)
            if (j != axis && v->dims[j] != first->dims[j])
                return fail(c, HP_ERR_INVALID, "input '%s' dim %d is %lld, expected %lld", v->name, j,
                            (long long)v->dims[j], (long long)first->dims[j]);
        d[axis] += v->dims[axis];
    }
    n->attr.axis = axis;
    if (all_const) {
        int64_t outer = 1, total = 1;
        for (int j = 0; j < axis; j++)
            outer *= d[j];
        for (int j = 0; j < first->ndim; j++)
            total *= d[j];
        size_t es = first->dtype == HP_DT_INT64 ? 8 : 4;
        char *buf = malloc((size_t)(total ? total : 1) * es);
        if (!buf)
            return fail(c, HP_ERR_NOMEM, "out of memory");
        int64_t inner_out = outer ? total / outer : 0, off = 0;
        for (int i = 0; i < n->n_in; i++) {
            hp_value *v = in_v(c, i);
            if (!v)
                continue;
            int64_t inner = outer ? hp_value_numel(v) / outer : 0;
            for (int64_t o = 0; o < outer; o++)
                memcpy(buf + (size_t)(o * inner_out + off) * es, (char *)v->data + (size_t)(o * inner) * es,
                       (size_t)inner * es);
            off += inner;
        }
        hp_status st = fold_new(c, first->dtype, first->ndim, d, buf);
        free(buf);
        return st;
    }
    for (int i = 0; i < n->n_in; i++) {
        hp_status st = require_float(c, in_v(c, i), "input");
        if (st)
            return st;
    }
    (void)live;
    set_dims(out_v(c), first->ndim, d);
    n->op = HP_OP_CONCAT;
    return HP_OK;
}

static hp_status infer_reshape(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0);
    int64_t shape[HP_MAX_DIMS];
    int ns;
    if (!in_v(c, 1))
        return fail(c, HP_ERR_INVALID, "Reshape needs a shape input");
    hp_status st = const_ints(c, in_v(c, 1), "the target shape", shape, HP_MAX_DIMS, &ns);
    if (st)
        return st;
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < ns; i++) {
        if (shape[i] == 0 && !n->load.allowzero) {
            if (i >= x->ndim)
                return fail(c, HP_ERR_INVALID, "shape[%d] = 0 copies a dim the input lacks", i);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            if (infer_at >= 0)
                return fail(c, HP_ERR_INVALID, "more than one -1 in the target shape");
            infer_at = i;
        } else if (shape[i] < 0) {
            return fail(c, HP_ERR_INVALID, "negative dim %lld in the target shape", (long long)shape[i]);
        } else if (shape[i] > 0 && known > HP_MAX_TENSOR_ELEMS / shape[i]) {
            return fail(c, HP_ERR_INVALID, "the target shape holds more than %lld elements",
                        (long long)HP_MAX_TENSOR_ELEMS);
        } else {
            known *= shape[i];
        }
    }
    if (infer_at >= 0) {
        if (known == 0 || hp_value_numel(x) % known != 0)
            return fail(c, HP_ERR_INVALID, "cannot reshape %lld elements with -1", (long long)hp_value_numel(x));
        shape[infer_at] = hp_value_numel(x) / known;
    }
    return make_alias(c, x, ns, shape);
}

static hp_status infer_flatten(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0);
    int axis = n->load.axis < 0 ? n->load.axis + x->ndim : n->load.axis;
    if (axis < 0 || axis > x->ndim)
        return fail(c, HP_ERR_INVALID, "axis %d out of range for rank %d", n->load.axis, x->ndim);
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->ndim; i++)
        d[i < axis ? 0 : 1] *= x->dims[i];
    return make_alias(c, x, 2, d);
}

static hp_status infer_squeeze(ictx *c, hp_node *n, int unsqueeze)
{
    hp_value *x = in_v(c, 0);
    int64_t axes[HP_MAX_DIMS];
    int na = n->load.n_ints;
    if (in_v(c, 1)) {
        hp_status st = const_ints(c, in_v(c, 1), "axes", axes, HP_MAX_DIMS, &na);
        if (st)
            return st;
    } else if (na > 0) {
        memcpy(axes, n->load.ints, sizeof(int64_t) * (size_t)na);
    }
    int64_t d[HP_MAX_DIMS];
    int nd = 0;
    if (unsqueeze) {
        int r = x->ndim + na;
        if (na <= 0 || r > HP_MAX_DIMS)
            return fail(c, HP_ERR_INVALID, "Unsqueeze needs axes, result rank at most %d", HP_MAX_DIMS);
        int mark[HP_MAX_DIMS] = {0};
        for (int i = 0; i < na; i++) {
            int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
            if (a < 0 || a >= r || mark[a])
                return fail(c, HP_ERR_INVALID, "axis %lld invalid", (long long)axes[i]);
            mark[a] = 1;
        }
        for (int i = 0, j = 0; i < r; i++)
            d[i] = mark[i] ? 1 : x->dims[j++];
        nd = r;
    } else {
        int drop[HP_MAX_DIMS] = {0};
        if (na <= 0) {
            for (int i = 0; i < x->ndim; i++)
                drop[i] = x->dims[i] == 1;
        } else {
            for (int i = 0; i < na; i++) {
                int64_t a = axes[i] < 0 ? axes[i] + x->ndim : axes[i];
                if (a < 0 || a >= x->ndim || x->dims[a] != 1)
                    return fail(c, HP_ERR_INVALID, "cannot squeeze axis %lld", (long long)axes[i]);
                drop[a] = 1;
            }
        }
        for (int i = 0; i < x->ndim; i++)
            if (!drop[i])
                d[nd++] = x->dims[i];
    }
    return make_alias(c, x, nd, d);
}

static hp_status infer_transpose(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0);
    hp_status st = require_float(c, x, "input");
    if (st)
        return st;
    int used[HP_MAX_DIMS] = {0};
    int64_t d[HP_MAX_DIMS];
    if (n->load.n_ints >= 0 && n->load.n_ints != x->ndim)
        return fail(c, HP_ERR_INVALID, "perm has %d entries for rank %d", n->load.n_ints, x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        int64_t p = n->load.n_ints >= 0 ? n->load.ints[i] : x->ndim - 1 - i;
        if (p < 0 || p >= x->ndim || used[p])
            return fail(c, HP_ERR_INVALID, "perm is not a permutation");
        used[p] = 1;
        n->attr.perm[i] = (int)p;
        d[i] = x->dims[p];
    }
    set_dims(out_v(c), x->ndim, d);
    n->op = HP_OP_TRANSPOSE;
    return HP_OK;
}

static hp_status infer_gemm(ictx *c, hp_node *n)
{
    hp_value *a = in_v(c, 0), *b = in_v(c, 1), *cc = in_v(c, 2);
    hp_status st;
    if (!a || !b)
        return fail(c, HP_ERR_INVALID, "Gemm needs A and B");
    if ((st = require_float(c, a, "A")) || (st = require_float(c, b, "B")) || (st = require_float(c, cc, "C")))
        return st;
    if (a->ndim != 2 || b->ndim != 2)
        return fail(c, HP_ERR_INVALID, "A and B must be 2-D");
    hp_gemm_attr *g = &n->attr.gemm;
    int64_t M = g->trans_a ? a->dims[1] : a->dims[0], K = g->trans_a ? a->dims[0] : a->dims[1];
    int64_t Kb = g->trans_b ? b->dims[1] : b->dims[0], N = g->trans_b ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return fail(c, HP_ERR_INVALID, "inner dimensions %lld and %lld differ", (long long)K, (long long)Kb);
    if (cc) {
        if (cc->ndim > 2 || (cc->ndim >= 1 && cc->dims[cc->ndim - 1] != N && cc->dims[cc->ndim - 1] != 1) ||
            (cc->ndim == 2 && cc->dims[0] != M && cc->dims[0] != 1))
            return fail(c, HP_ERR_INVALID, "C does not broadcast to %lldx%lld", (long long)M, (long long)N);
    }
    int64_t d[2] = {M, N};
    set_dims(out_v(c), 2, d);
    n->op = HP_OP_GEMM;
    return HP_OK;
}

static hp_status infer_matmul(ictx *c, hp_node *n)
{
    hp_value *a = in_v(c, 0), *b = in_v(c, 1);
    hp_status st;
    if (!a || !b)
        return fail(c, HP_ERR_INVALID, "MatMul needs two inputs");
    if ((st = require_float(c, a, "A")) || (st = require_float(c, b, "B")))
        return st;
    if (a->ndim < 1 || b->ndim < 1)
        return fail(c, HP_ERR_INVALID, "scalars cannot be multiplied as matrices");
    int64_t ka = a->dims[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->dims[0] : b->dims[b->ndim - 2];
    if (ka != kb)
        return fail(c, HP_ERR_INVALID, "inner dimensions %lld and %lld differ", (long long)ka, (long long)kb);
    /* Batch dims broadcast; 1-D operands are promoted and the added dim removed. */
    hp_value ba = {0}, bb = {0};
    ba.ndim = a->ndim > 2 ? a->ndim - 2 : 0;
    bb.ndim = b->ndim > 2 ? b->ndim - 2 : 0;
    memcpy(ba.dims, a->dims, sizeof(int64_t) * (size_t)ba.ndim);
    memcpy(bb.dims, b->dims, sizeof(int64_t) * (size_t)bb.ndim);
    int nd;
    int64_t d[HP_MAX_DIMS];
    if (!broadcast(&ba, &bb, &nd, d))
        return fail(c, HP_ERR_INVALID, "batch dimensions do not broadcast");
    if (a->ndim >= 2)
        d[nd++] = a->dims[a->ndim - 2];
    if (b->ndim >= 2)
        d[nd++] = b->dims[b->ndim - 1];
    set_dims(out_v(c), nd, d);
    n->op = HP_OP_MATMUL;
    return HP_OK;
}

static hp_status infer_resize(ictx *c, hp_node *n, int upsample)
{
    hp_value *x = in_v(c, 0);
    hp_status st;
    if ((st = require_float(c, x, "input")) || (st = require_rank(c, x, 4, "input")))
        return st;
    float scales[HP_MAX_DIMS];
    int64_t sizes[HP_MAX_DIMS];
    int have_scales = 0, have_sizes = 0;
    hp_value *sv = NULL, *zv = NULL;
    if (upsample) {
        if (c->g->opset >= 9)
            sv = in_v(c, 1);
    } else if (c->g->opset < 11) {
        sv = in_v(c, 1);
    } else {
        sv = in_v(c, 2);
        zv = in_v(c, 3);
    }
    if (sv && hp_value_numel(sv) > 0) {
        if (!is_const(sv) || sv->dtype != HP_DT_FLOAT || hp_value_numel(sv) != 4)
            return fail(c, HP_ERR_UNSUPPORTED, "scales must be a constant with 4 floats");
        memcpy(scales, sv->data, sizeof(float) * 4);
        have_scales = 1;
    } else if (upsample && n->load.n_scales == 4) {
        memcpy(scales, n->load.scales, sizeof(float) * 4);
        have_scales = 1;
    }
    if (zv && hp_value_numel(zv) > 0) {
        int nz;
        if ((st = const_ints(c, zv, "sizes", sizes, HP_MAX_DIMS, &nz)))
            return st;
        if (nz != 4)
            return fail(c, HP_ERR_INVALID, "sizes must have 4 values");
        have_sizes = 1;
    }
    if (have_scales == have_sizes)
        return fail(c, HP_ERR_INVALID, "exactly one of scales and sizes must be given");
    int64_t d[4];
    if (have_scales) {
        for (int i = 0; i < 4; i++) {
            if (!(scales[i] > 0) || scales[i] > 1024)
                return fail(c, HP_ERR_INVALID, "scale %g out of range", (double)scales[i]);
            d[i] = (int64_t)floor((double)x->dims[i] * scales[i]);
        }
    } else {
        for (int i = 0; i < 4; i++)
            d[i] = sizes[i];
        for (int i = 0; i < 4; i++)
            scales[i] = x->dims[i] ? (float)d[i] / (float)x->dims[i] : 1.0f;
    }
    if (d[0] != x->dims[0] || d[1] != x->dims[1])
        return fail(c, HP_ERR_UNSUPPORTED, "resizing the batch or channel dimensions");
    if (d[2] <= 0 || d[3] <= 0 || d[2] > 65536 || d[3] > 65536)
        return fail(c, HP_ERR_INVALID, "output size %lldx%lld is out of range", (long long)d[2], (long long)d[3]);
    n->attr.resize.scale_h = scales[2];
    n->attr.resize.scale_w = scales[3];
    set_dims(out_v(c), 4, d);
    n->op = HP_OP_RESIZE;
    n->n_in = 1;
    return HP_OK;
}

static hp_status infer_pad(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0);
    hp_status st = require_float(c, x, "input");
    if (st)
        return st;
    int64_t pads[2 * HP_MAX_DIMS];
    int np = n->load.n_ints;
    if (c->g->opset >= 11) {
        if (!in_v(c, 1))
            return fail(c, HP_ERR_INVALID, "Pad needs pads");
        if ((st = const_ints(c, in_v(c, 1), "pads", pads, 2 * HP_MAX_DIMS, &np)))
            return st;
        hp_value *cv = in_v(c, 2);
        if (cv && hp_value_numel(cv) > 0) {
            if (!is_const(cv) || hp_value_numel(cv) != 1)
                return fail(c, HP_ERR_UNSUPPORTED, "constant_value must be a constant scalar");
            n->attr.pad.value = cv->dtype == HP_DT_FLOAT ? *(float *)cv->data : (float)*(int64_t *)cv->data;
        }
        if (in_v(c, 3))
            return fail(c, HP_ERR_UNSUPPORTED, "the axes input of Pad");
    } else {
        memcpy(pads, n->load.ints, sizeof(int64_t) * (size_t)(np > 0 ? np : 0));
    }
    if (np != 2 * x->ndim)
        return fail(c, HP_ERR_INVALID, "pads has %d values for rank %d", np, x->ndim);
    int64_t d[HP_MAX_DIMS];
    for (int i = 0; i < np; i++)
        if (pads[i] > HP_MAX_TENSOR_ELEMS || pads[i] < -HP_MAX_TENSOR_ELEMS)
            return fail(c, HP_ERR_INVALID, "pads[%d] = %lld is absurd", i, (long long)pads[i]);
    for (int i = 0; i < x->ndim; i++) {
        d[i] = x->dims[i] + pads[i] + pads[i + x->ndim];
        if (d[i] < 0)
            return fail(c, HP_ERR_INVALID, "pads crop dim %d below zero", i);
        if (n->attr.pad.mode == HP_PAD_REFLECT &&
            (pads[i] >= x->dims[i] || pads[i + x->ndim] >= x->dims[i]) &&
            (pads[i] > 0 || pads[i + x->ndim] > 0))
            return fail(c, HP_ERR_UNSUPPORTED, "reflect padding wider than dim %d", i);
        if (n->attr.pad.mode != HP_PAD_CONSTANT && x->dims[i] == 0 && d[i] > 0)
            return fail(c, HP_ERR_INVALID, "cannot %s-pad an empty dim",
                        n->attr.pad.mode == HP_PAD_EDGE ? "edge" : "reflect");
    }
    int all_zero = 1;
    for (int i = 0; i < np; i++)
        all_zero &= pads[i] == 0;
    if (all_zero) /* PyTorch puts a zero Pad before every AveragePool: no work, no copy */
        return make_alias(c, x, x->ndim, x->dims);
    memcpy(n->attr.pad.pads, pads, sizeof(int64_t) * (size_t)np);
    set_dims(out_v(c), x->ndim, d);
    n->op = HP_OP_PAD;
    n->n_in = 1;
    return HP_OK;
}

static hp_status infer_gather(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0), *idx = in_v(c, 1);
    if (!x || !idx)
        return fail(c, HP_ERR_INVALID, "Gather needs data and indices");
    if (!is_const(x) || !is_const(idx))
        return fail(c, HP_ERR_UNSUPPORTED,
                    "Gather on runtime data (only the shape chains PyTorch emits, folded at load time)");
    int axis;
    if (!norm_axis(n->load.axis, x->ndim, &axis))
        return fail(c, HP_ERR_INVALID, "axis %d out of range", n->load.axis);
    if (x->ndim + idx->ndim - 1 > HP_MAX_DIMS)
        return fail(c, HP_ERR_UNSUPPORTED, "result rank too large");
    int64_t d[HP_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < axis; i++)
        d[nd++] = x->dims[i];
    for (int i = 0; i < idx->ndim; i++)
        d[nd++] = idx->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        d[nd++] = x->dims[i];
    int64_t outer = 1, inner = 1, ni = hp_value_numel(idx), len = x->dims[axis];
    for (int i = 0; i < axis; i++)
        outer *= x->dims[i];
    for (int i = axis + 1; i < x->ndim; i++)
        inner *= x->dims[i];
    if (outer * ni * inner > (1 << 24))
        return fail(c, HP_ERR_UNSUPPORTED, "constant Gather too large to fold");
    size_t es = x->dtype == HP_DT_INT64 ? 8 : 4;
    char *buf = malloc((size_t)(outer * ni * inner + 1) * es);
    if (!buf)
        return fail(c, HP_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            int64_t k = idx->dtype == HP_DT_INT64 ? ((int64_t *)idx->data)[j] : (int64_t)((float *)idx->data)[j];
            if (k < 0)
                k += len;
            if (k < 0 || k >= len) {
                free(buf);
                return fail(c, HP_ERR_INVALID, "index %lld out of range", (long long)k);
            }
            memcpy(buf + (size_t)((o * ni + j) * inner) * es, (char *)x->data + (size_t)((o * len + k) * inner) * es,
                   (size_t)inner * es);
        }
    hp_status st = fold_new(c, x->dtype, nd, d, buf);
    free(buf);
    return st;
}

static hp_status infer_shape(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0);
    int64_t r = x->ndim, s = n->load.has_start ? n->load.start : 0, e = n->load.has_end ? n->load.end : r;
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t len = e > s ? e - s : 0;
    return fold_new(c, HP_DT_INT64, 1, &len, x->dims + s);
}

static hp_status infer_cast(ictx *c, hp_node *n)
{
    hp_value *x = in_v(c, 0);
    int to = n->load.to;
    int to_float = to == HP_DT_FLOAT || to == HP_DT_FLOAT16 || to == HP_DT_BFLOAT16 || to == 11;
    int to_int = (to >= 2 && to <= 7) || to == 9 || to == 12 || to == 13;
    if (!to_float && !to_int)
        return fail(c, HP_ERR_UNSUPPORTED, "Cast to %s", hp_dtype_name((hp_dtype)to));
    if (!is_const(x)) {
        if (to != HP_DT_FLOAT || x->dtype != HP_DT_FLOAT)
            return fail(c, HP_ERR_UNSUPPORTED, "Cast of runtime data to %s", hp_dtype_name((hp_dtype)to));
        return make_alias(c, x, x->ndim, x->dims);
    }
    int64_t cnt = hp_value_numel(x);
    hp_dtype dt = to_float ? HP_DT_FLOAT : HP_DT_INT64;
    void *buf = malloc((size_t)(cnt + 1) * 8);
    if (!buf)
        return fail(c, HP_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < cnt; i++) {
        double v = x->dtype == HP_DT_INT64 ? (double)((int64_t *)x->data)[i] : ((float *)x->data)[i];
        if (dt == HP_DT_FLOAT)
            ((float *)buf)[i] = (float)v;
        else
            ((int64_t *)buf)[i] = (int64_t)v;
    }
    hp_status st = fold_new(c, dt, x->ndim, x->dims, buf);
    free(buf);
    return st;
}

static hp_status infer_constant_of_shape(ictx *c, hp_node *n)
{
    hp_value *o = out_v(c);
    int64_t d[HP_MAX_DIMS];
    int nd;
    hp_status st = const_ints(c, in_v(c, 0), "the shape", d, HP_MAX_DIMS, &nd);
    if (st)
        return st;
    int64_t cnt = 1;
    for (int i = 0; i < nd; i++) {
        if (d[i] < 0 || d[i] > (1 << 24))
            return fail(c, HP_ERR_INVALID, "dim %lld out of range", (long long)d[i]);
        cnt *= d[i];
    }
    if (cnt > (1 << 24))
        return fail(c, HP_ERR_UNSUPPORTED, "constant too large");
    hp_dtype dt = o->dtype;
    size_t es = dt == HP_DT_INT64 ? 8 : 4;
    char *buf = malloc((size_t)(cnt + 1) * es);
    if (!buf)
        return fail(c, HP_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < cnt; i++)
        memcpy(buf + (size_t)i * es, o->data, es);
    st = fold_new(c, dt, nd, d, buf);
    free(buf);
    (void)n;
    return st;
}

static hp_status infer_node(ictx *c, hp_node *n)
{
    for (int i = 0; i < n->n_in; i++) {
        hp_value *v = in_v(c, i);
        if (v && v->kind == HP_VAL_RUNTIME && v->producer < 0 && !is_const(v))
            return fail(c, HP_ERR_INVALID, "input '%s' is never computed", v->name);
    }
    hp_value *x = in_v(c, 0);
    switch ((hp_onnx_op)n->load.kind) {
    case HP_ONNX_CONV: return infer_conv(c, n);
    case HP_ONNX_BATCHNORM: {
        hp_status st;
        if ((st = require_float(c, x, "input")))
            return st;
        if (x->ndim < 2)
            return fail(c, HP_ERR_INVALID, "input rank %d (at least 2)", x->ndim);
        for (int i = 1; i <= 4; i++) {
            hp_value *p = in_v(c, i);
            if (!p || p->ndim != 1 || p->dims[0] != x->dims[1])
                return fail(c, HP_ERR_INVALID, "parameter %d must have %lld values", i, (long long)x->dims[1]);
            if ((st = require_float(c, p, "parameter")))
                return st;
        }
        n->n_in = 5;
        set_dims(out_v(c), x->ndim, x->dims);
        n->op = HP_OP_BATCHNORM;
        return HP_OK;
    }
    case HP_ONNX_RELU: return infer_unary(c, n, HP_ACT_RELU);
    case HP_ONNX_LEAKY_RELU: return infer_unary(c, n, HP_ACT_LEAKY_RELU);
    case HP_ONNX_SIGMOID: return infer_unary(c, n, HP_ACT_SIGMOID);
    case HP_ONNX_TANH: return infer_unary(c, n, HP_ACT_TANH);
    case HP_ONNX_CLIP: return infer_unary(c, n, HP_ACT_CLIP);
    case HP_ONNX_PRELU: {
        hp_value *s = in_v(c, 1);
        hp_status st;
        if (!s)
            return fail(c, HP_ERR_INVALID, "PRelu needs a slope");
        if ((st = require_float(c, x, "input")) || (st = require_float(c, s, "slope")))
            return st;
        if (c->g->opset < 7 && s->ndim == 1 && x->ndim > 2 && s->dims[0] == x->dims[1] && is_const(s)) {
            /* PRelu-6: a 1-D slope is per channel; view it as [C, 1, ...] for numpy rules. */
            st = view_with_trailing_ones(c, 1, x->ndim - 2, &s);
            if (st)
                return st;
            x = in_v(c, 0);
        }
        int nd;
        int64_t d[HP_MAX_DIMS];
        if (!broadcast(x, s, &nd, d) || nd != x->ndim)
            return fail(c, HP_ERR_INVALID, "slope does not broadcast to the input");
        for (int i = 0; i < nd; i++)
            if (d[i] != x->dims[i])
                return fail(c, HP_ERR_INVALID, "slope does not broadcast to the input");
        set_dims(out_v(c), x->ndim, x->dims);
        n->op = HP_OP_PRELU;
        return HP_OK;
    }
    case HP_ONNX_ADD: return infer_binary(c, n, HP_BIN_ADD);
    case HP_ONNX_SUB: return infer_binary(c, n, HP_BIN_SUB);
    case HP_ONNX_MUL: return infer_binary(c, n, HP_BIN_MUL);
    case HP_ONNX_DIV: return infer_binary(c, n, HP_BIN_DIV);
    case HP_ONNX_MAXPOOL: return infer_pool(c, n, HP_OP_MAXPOOL);
    case HP_ONNX_AVGPOOL: return infer_pool(c, n, HP_OP_AVGPOOL);
    case HP_ONNX_GLOBAL_AVGPOOL:
    case HP_ONNX_GLOBAL_MAXPOOL: {
        hp_status st;
        if ((st = require_float(c, x, "input")))
            return st;
        if (x->ndim < 3)
            return fail(c, HP_ERR_INVALID, "input rank %d (at least 3)", x->ndim);
        int64_t d[HP_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++)
            d[i] = i < 2 ? x->dims[i] : 1;
        set_dims(out_v(c), x->ndim, d);
        n->op = n->load.kind == HP_ONNX_GLOBAL_AVGPOOL ? HP_OP_GLOBAL_AVGPOOL : HP_OP_GLOBAL_MAXPOOL;
        return HP_OK;
    }
    case HP_ONNX_CONCAT: return infer_concat(c, n);
    case HP_ONNX_FLATTEN: return infer_flatten(c, n);
    case HP_ONNX_RESHAPE: return infer_reshape(c, n);
    case HP_ONNX_TRANSPOSE: return infer_transpose(c, n);
    case HP_ONNX_GEMM: return infer_gemm(c, n);
    case HP_ONNX_MATMUL: return infer_matmul(c, n);
    case HP_ONNX_SOFTMAX: {
        hp_status st;
        if ((st = require_float(c, x, "input")))
            return st;
        int axis;
        if (!norm_axis(n->load.axis, x->ndim, &axis))
            return fail(c, HP_ERR_INVALID, "axis %d out of range for rank %d", n->load.axis, x->ndim);
        n->attr.softmax.axis = axis;
        set_dims(out_v(c), x->ndim, x->dims);
        n->op = HP_OP_SOFTMAX;
        return HP_OK;
    }
    case HP_ONNX_DEPTH_TO_SPACE: {
        hp_status st;
        if ((st = require_float(c, x, "input")) || (st = require_rank(c, x, 4, "input")))
            return st;
        int64_t bs = n->attr.d2s.blocksize;
        if (x->dims[1] % (bs * bs) != 0)
            return fail(c, HP_ERR_INVALID, "%lld channels are not divisible by blocksize^2 = %lld",
                        (long long)x->dims[1], (long long)(bs * bs));
        int64_t d[4] = {x->dims[0], x->dims[1] / (bs * bs), x->dims[2] * bs, x->dims[3] * bs};
        set_dims(out_v(c), 4, d);
        n->op = HP_OP_DEPTH_TO_SPACE;
        return HP_OK;
    }
    case HP_ONNX_RESIZE: return infer_resize(c, n, 0);
    case HP_ONNX_UPSAMPLE: return infer_resize(c, n, 1);
    case HP_ONNX_PAD: return infer_pad(c, n);
    case HP_ONNX_IDENTITY:
    case HP_ONNX_DROPOUT: return make_alias(c, x, x->ndim, x->dims);
    case HP_ONNX_SHAPE: return infer_shape(c, n);
    case HP_ONNX_GATHER: return infer_gather(c, n);
    case HP_ONNX_UNSQUEEZE: return infer_squeeze(c, n, 1);
    case HP_ONNX_SQUEEZE: return infer_squeeze(c, n, 0);
    case HP_ONNX_CAST: return infer_cast(c, n);
    case HP_ONNX_CONSTANT_OF_SHAPE: return infer_constant_of_shape(c, n);
    case HP_ONNX_CONSTANT: return HP_OK;
    case HP_ONNX_UNKNOWN: break;
    }
    return fail(c, HP_ERR_UNSUPPORTED, "unsupported operator %s", n->op_type);
}

hp_status hp_graph_infer(hp_graph *g, int batch, hp_error *err)
{
    if (batch < 0)
        return hp_error_set(err, HP_ERR_INVALID, "batch size %d", batch);
    for (int i = 0; i < g->n_inputs && batch == 0; i++) {
        const hp_value *v = &g->values[g->inputs[i]];
        if (v->kind == HP_VAL_INPUT && v->ndim > 0 && v->dims[0] < 0)
            return hp_error_set(err, HP_ERR_INVALID, "batch size 0 for input '%s'", v->name);
    }
    for (int i = 0; i < g->n_inputs; i++) {
        hp_value *v = &g->values[g->inputs[i]];
        if (v->kind != HP_VAL_INPUT)
            continue; /* bound as a constant */
        if (v->dtype != HP_DT_FLOAT)
            return hp_error_set(err, HP_ERR_UNSUPPORTED,
                                "%s: input '%s' has data type %s; histoplan runs float32 tensors",
                                g->source, v->name, hp_dtype_name(v->dtype));
        if (v->ndim > 0 && v->dims[0] < 0)
            v->dims[0] = batch;
    }
    /* Inputs bound as constants leave the list of runtime inputs. */
    int nr = 0;
    for (int i = 0; i < g->n_inputs; i++)
        if (g->values[g->inputs[i]].kind == HP_VAL_INPUT)
            g->inputs[nr++] = g->inputs[i];
    g->n_inputs = nr;
    if (nr == 0)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: every input is bound as a constant; histoplan runs models on input tensors",
                            g->source);

    ictx c = {.g = g, .err = err};
    for (int k = 0; k < g->n_nodes; k++) {
        hp_node *n = &g->nodes[k];
        if (n->dead)
            continue;
        c.k = k;
        hp_status st = infer_node(&c, n);
        if (st)
            return st;
        if (!n->dead) {
            hp_value *o = &g->values[n->out[0]];
            o->producer = k;
            int64_t numel;
            if (!numel_checked(o->ndim, o->dims, &numel))
                return fail(&c, HP_ERR_INVALID, "output '%s' would hold more than %lld elements", o->name,
                            (long long)HP_MAX_TENSOR_ELEMS);
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const hp_value *v = &g->values[g->outputs[i]];
        if (v->dtype != HP_DT_FLOAT)
            return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: output '%s' has data type %s; histoplan produces float32",
                                g->source, v->name, hp_dtype_name(v->dtype));
    }
    hp_graph_recount(g);
    return HP_OK;
}
