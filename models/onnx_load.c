/* ONNX file → hp_graph. Parses the protobuf with protobuf-c (code generated at build time from
 * Debian's onnx.proto), converts initializers to host arrays, and records each node's op and
 * attributes. Shapes are resolved later, per batch size, by models/infer.c.
 *
 * Everything read from the file is untrusted: sizes are checked against the bytes actually
 * present before anything is allocated or copied, and every refusal names the file, the node
 * and the reason. */
#include "models/onnx_load.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/onnx_ops.h"
#include "models/tensor_convert.h"
#include "onnx/onnx.pb-c.h"

#define HP_MAX_MODEL_BYTES ((int64_t)4 << 30)
/* Opset 6 is what ONNX's pytorch-converted tests and older exporters use; the only semantic
 * difference for the supported operators is the legacy broadcast attribute of Add/Sub/Mul/Div. */
#define HP_MIN_OPSET 6
#define HP_MAX_OPSET 18

typedef struct {
    hp_graph *g;
    const char *path;
    char *dir; /* folder of the model file, for external data */
    hp_error *err;
} load_ctx;

static hp_status read_file(const char *path, uint8_t **buf, size_t *len, hp_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return hp_error_set(err, HP_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size <= 0) {
        fclose(f);
        return hp_error_set(err, HP_ERR_INVALID, "%s: empty file, not an ONNX model", path);
    }
    if ((int64_t)st.st_size > HP_MAX_MODEL_BYTES) {
        fclose(f);
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: %lld bytes; models over 4 GiB need external data files", path,
                            (long long)st.st_size);
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len);
    if (!*buf) {
        fclose(f);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, *len);
    }
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    if (got != *len) {
        free(*buf);
        *buf = NULL;
        return hp_error_set(err, HP_ERR_IO, "%s: short read", path);
    }
    return HP_OK;
}

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *np, const char *name)
{
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && strcmp(np->attribute[i]->name, name) == 0)
            return np->attribute[i];
    return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *np, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = find_attr(np, name);
    return (a && a->has_i) ? a->i : dflt;
}

static float attr_float(const Onnx__NodeProto *np, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = find_attr(np, name);
    return (a && a->has_f) ? a->f : dflt;
}

/* A string attribute copied into buf ("" when absent); strings are bytes, not NUL-terminated. */
static const char *attr_str(const Onnx__NodeProto *np, const char *name, const char *dflt,
                            char *buf, size_t cap)
{
    const Onnx__AttributeProto *a = find_attr(np, name);
    if (!a || !a->has_s)
        return dflt;
    size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
    memcpy(buf, a->s.data, n);
    buf[n] = '\0';
    return buf;
}

/* Copies an ints attribute of at most `max` entries; returns the count, -1 when absent,
 * -2 when too long. */
static int attr_ints(const Onnx__NodeProto *np, const char *name, int64_t *out, int max)
{
    const Onnx__AttributeProto *a = find_attr(np, name);
    if (!a)
        return -1;
    if (a->n_ints > (size_t)max)
        return -2;
    for (size_t i = 0; i < a->n_ints; i++)
        out[i] = a->ints[i];
    return (int)a->n_ints;
}

#define NODE_FAIL(ctx, code, np, idx, ...)                                                   \
    node_fail((ctx), (code), (np), (idx), __VA_ARGS__)

static hp_status node_fail(load_ctx *c, hp_status code, const Onnx__NodeProto *np, int idx,
                           const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static hp_status node_fail(load_ctx *c, hp_status code, const Onnx__NodeProto *np, int idx,
                           const char *fmt, ...)
{
    char why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    const char *name = (np->name && *np->name) ? np->name : "";
    return hp_error_set(c->err, code, "%s: node %d '%s' (%s): %s", c->path, idx, name,
                        np->op_type ? np->op_type : "?", why);
}

/* Reads a spatial ints attribute (strides, dilations, kernel_shape) for 2-D ops. */
static hp_status spatial2(load_ctx *c, const Onnx__NodeProto *np, int idx, const char *name,
                          int out[2], int dflt, int64_t lo)
{
    int64_t v[HP_MAX_DIMS];
    int n = attr_ints(np, name, v, HP_MAX_DIMS);
    out[0] = out[1] = dflt;
    if (n == -1)
        return HP_OK;
    if (n != 2)
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx,
                         "only 2-D windows are supported; attribute %s has %d values", name, n);
    for (int i = 0; i < 2; i++) {
        if (v[i] < lo || v[i] > 65536)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "attribute %s[%d] = %lld is out of range",
                             name, i, (long long)v[i]);
        out[i] = (int)v[i];
    }
    return HP_OK;
}

static hp_status parse_auto_pad(load_ctx *c, const Onnx__NodeProto *np, int idx, hp_load_attr *la)
{
    char buf[32];
    const char *s = attr_str(np, "auto_pad", "NOTSET", buf, sizeof buf);
    if (!strcmp(s, "NOTSET") || !*s)
        la->auto_pad = 0;
    else if (!strcmp(s, "SAME_UPPER"))
        la->auto_pad = 1;
    else if (!strcmp(s, "SAME_LOWER"))
        la->auto_pad = 2;
    else if (!strcmp(s, "VALID"))
        la->auto_pad = 3;
    else
        return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "unknown auto_pad '%s'", s);
    return HP_OK;
}

static hp_status parse_pads4(load_ctx *c, const Onnx__NodeProto *np, int idx, int pad[4],
                             hp_load_attr *la)
{
    int64_t p[2 * HP_MAX_DIMS];
    int n = attr_ints(np, "pads", p, 2 * HP_MAX_DIMS);
    pad[0] = pad[1] = pad[2] = pad[3] = 0;
    if (n == -1)
        return HP_OK;
    if (n != 4)
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx,
                         "only 2-D windows are supported; pads has %d values", n);
    for (int i = 0; i < 4; i++)
        if (p[i] < 0 || p[i] > 65536)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "pads[%d] = %lld is out of range", i,
                             (long long)p[i]);
    /* ONNX: [top, left, bottom, right] = [x1_begin, x2_begin, x1_end, x2_end] */
    pad[0] = (int)p[0];
    pad[1] = (int)p[1];
    pad[2] = (int)p[2];
    pad[3] = (int)p[3];
    la->has_pads = 1;
    return HP_OK;
}

static hp_status parse_conv(load_ctx *c, const Onnx__NodeProto *np, int idx, hp_node *n)
{
    hp_conv_attr *a = &n->attr.conv;
    int k[2];
    hp_status st;
    if ((st = spatial2(c, np, idx, "strides", a->stride, 1, 1)) ||
        (st = spatial2(c, np, idx, "dilations", a->dil, 1, 1)) ||
        (st = spatial2(c, np, idx, "kernel_shape", k, 0, 1)) ||
        (st = parse_pads4(c, np, idx, a->pad, &n->load)) || (st = parse_auto_pad(c, np, idx, &n->load)))
        return st;
    n->load.has_kernel = k[0] > 0;
    a->kh = k[0];
    a->kw = k[1];
    int64_t group = attr_int(np, "group", 1);
    if (group < 1 || group > 1 << 20)
        return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "group = %lld is out of range", (long long)group);
    a->group = (int)group;
    return HP_OK;
}

static hp_status parse_pool(load_ctx *c, const Onnx__NodeProto *np, int idx, hp_node *n)
{
    hp_pool_attr *a = &n->attr.pool;
    int k[2];
    hp_status st;
    if ((st = spatial2(c, np, idx, "kernel_shape", k, 0, 1)) ||
        (st = spatial2(c, np, idx, "strides", a->stride, 1, 1)) ||
        (st = spatial2(c, np, idx, "dilations", a->dil, 1, 1)) ||
        (st = parse_pads4(c, np, idx, a->pad, &n->load)) || (st = parse_auto_pad(c, np, idx, &n->load)))
        return st;
    if (k[0] <= 0)
        return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "kernel_shape is required");
    a->kh = k[0];
    a->kw = k[1];
    n->load.ceil_mode = (int)attr_int(np, "ceil_mode", 0);
    a->count_include_pad = (int)attr_int(np, "count_include_pad", 0);
    if (attr_int(np, "storage_order", 0) != 0 && np->n_output > 1)
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "storage_order for the Indices output");
    if (np->n_output > 1 && np->output[1] && *np->output[1])
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "the Indices output of MaxPool");
    return HP_OK;
}

static hp_status parse_resize(load_ctx *c, const Onnx__NodeProto *np, int idx, hp_node *n,
                              int64_t opset, int upsample)
{
    hp_resize_attr *a = &n->attr.resize;
    char buf[64];
    const char *mode = attr_str(np, "mode", "nearest", buf, sizeof buf);
    if (!strcmp(mode, "nearest"))
        a->mode = HP_RESIZE_NEAREST;
    else if (!strcmp(mode, "linear") || !strcmp(mode, "bilinear"))
        a->mode = HP_RESIZE_LINEAR;
    else
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "mode '%s' (nearest and linear only)", mode);
    if (upsample || opset < 11) {
        /* Upsample and Resize-10 map output to input as x / scale and pick floor for nearest. */
        a->coord = HP_CT_ASYMMETRIC;
        a->nearest = HP_NEAREST_FLOOR;
        if (upsample && opset < 9) {
            const Onnx__AttributeProto *sa = find_attr(np, "scales");
            if (!sa || sa->n_floats < 1 || sa->n_floats > HP_MAX_DIMS)
                return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "attribute scales is missing");
            n->load.n_scales = (int)sa->n_floats;
            for (size_t i = 0; i < sa->n_floats; i++)
                n->load.scales[i] = sa->floats[i];
        }
        return HP_OK;
    }
    const char *ct = attr_str(np, "coordinate_transformation_mode", "half_pixel", buf, sizeof buf);
    if (!strcmp(ct, "half_pixel"))
        a->coord = HP_CT_HALF_PIXEL;
    else if (!strcmp(ct, "pytorch_half_pixel"))
        a->coord = HP_CT_PYTORCH_HALF_PIXEL;
    else if (!strcmp(ct, "align_corners"))
        a->coord = HP_CT_ALIGN_CORNERS;
    else if (!strcmp(ct, "asymmetric"))
        a->coord = HP_CT_ASYMMETRIC;
    else
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "coordinate_transformation_mode '%s'", ct);
    const char *nm = attr_str(np, "nearest_mode", "round_prefer_floor", buf, sizeof buf);
    if (!strcmp(nm, "round_prefer_floor"))
        a->nearest = HP_NEAREST_ROUND_PREFER_FLOOR;
    else if (!strcmp(nm, "round_prefer_ceil"))
        a->nearest = HP_NEAREST_ROUND_PREFER_CEIL;
    else if (!strcmp(nm, "floor"))
        a->nearest = HP_NEAREST_FLOOR;
    else if (!strcmp(nm, "ceil"))
        a->nearest = HP_NEAREST_CEIL;
    else
        return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "nearest_mode '%s'", nm);
    if (attr_int(np, "exclude_outside", 0) != 0)
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "attribute exclude_outside = 1");
    if (attr_int(np, "antialias", 0) != 0)
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "attribute antialias = 1");
    if (find_attr(np, "axes"))
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "attribute axes");
    const char *kp = attr_str(np, "keep_aspect_ratio_policy", "stretch", buf, sizeof buf);
    if (strcmp(kp, "stretch") != 0)
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "keep_aspect_ratio_policy '%s'", kp);
    return HP_OK;
}

static hp_status parse_pad(load_ctx *c, const Onnx__NodeProto *np, int idx, hp_node *n,
                           int64_t opset)
{
    char buf[32];
    const char *mode = attr_str(np, "mode", "constant", buf, sizeof buf);
    if (!strcmp(mode, "constant"))
        n->attr.pad.mode = HP_PAD_CONSTANT;
    else if (!strcmp(mode, "reflect"))
        n->attr.pad.mode = HP_PAD_REFLECT;
    else if (!strcmp(mode, "edge"))
        n->attr.pad.mode = HP_PAD_EDGE;
    else
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "mode '%s'", mode);
    if (opset < 11) {
        int cnt = attr_ints(np, "pads", n->load.ints, 2 * HP_MAX_DIMS);
        if (cnt < 0)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "attribute pads is missing or too long");
        n->load.n_ints = cnt;
        n->load.has_pads = 1;
        n->attr.pad.value = attr_float(np, "value", 0.0f);
    }
    return HP_OK;
}

static hp_status parse_attrs(load_ctx *c, const Onnx__NodeProto *np, int idx, hp_node *n,
                             int64_t opset)
{
    hp_load_attr *la = &n->load;
    char buf[32];
    switch ((hp_onnx_op)la->kind) {
    case HP_ONNX_CONV: return parse_conv(c, np, idx, n);
    case HP_ONNX_MAXPOOL:
    case HP_ONNX_AVGPOOL: return parse_pool(c, np, idx, n);
    case HP_ONNX_BATCHNORM:
        n->attr.bn_epsilon = attr_float(np, "epsilon", 1e-5f);
        if (attr_int(np, "training_mode", 0) != 0)
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "training_mode = 1 (inference only)");
        if (attr_int(np, "spatial", 1) != 1)
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "spatial = 0");
        for (size_t i = 1; i < np->n_output; i++)
            if (np->output[i] && *np->output[i])
                return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx,
                                 "training outputs (running mean/var); inference only");
        return HP_OK;
    case HP_ONNX_ADD:
    case HP_ONNX_SUB:
    case HP_ONNX_MUL:
    case HP_ONNX_DIV:
        if (opset < 7) {
            la->n_ints = 1;
            la->ints[0] = attr_int(np, "broadcast", 0); /* legacy broadcasting, opset < 7 */
            la->has_start = find_attr(np, "axis") != NULL;
            la->axis = (int)attr_int(np, "axis", 0);
        }
        return HP_OK;
    case HP_ONNX_LEAKY_RELU:
        n->attr.act.alpha = attr_float(np, "alpha", 0.01f);
        return HP_OK;
    case HP_ONNX_CLIP:
        if (opset < 11) {
            const Onnx__AttributeProto *a;
            if ((a = find_attr(np, "min")) && a->has_f) {
                la->has_clip_min = 1;
                la->clip_min = a->f;
            }
            if ((a = find_attr(np, "max")) && a->has_f) {
                la->has_clip_max = 1;
                la->clip_max = a->f;
            }
        }
        return HP_OK;
    case HP_ONNX_GEMM:
        n->attr.gemm.alpha = attr_float(np, "alpha", 1.0f);
        n->attr.gemm.beta = attr_float(np, "beta", 1.0f);
        n->attr.gemm.trans_a = attr_int(np, "transA", 0) != 0;
        n->attr.gemm.trans_b = attr_int(np, "transB", 0) != 0;
        return HP_OK;
    case HP_ONNX_SOFTMAX:
        la->axis = (int)attr_int(np, "axis", opset < 13 ? 1 : -1);
        n->attr.softmax.legacy = opset < 13;
        return HP_OK;
    case HP_ONNX_CONCAT: {
        const Onnx__AttributeProto *a = find_attr(np, "axis");
        if (!a || !a->has_i)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "attribute axis is required");
        la->axis = (int)a->i;
        return HP_OK;
    }
    case HP_ONNX_FLATTEN: la->axis = (int)attr_int(np, "axis", 1); return HP_OK;
    case HP_ONNX_GATHER: la->axis = (int)attr_int(np, "axis", 0); return HP_OK;
    case HP_ONNX_RESHAPE: la->allowzero = (int)attr_int(np, "allowzero", 0); return HP_OK;
    case HP_ONNX_TRANSPOSE: {
        int cnt = attr_ints(np, "perm", la->ints, HP_MAX_DIMS);
        if (cnt == -2)
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "perm longer than %d", HP_MAX_DIMS);
        la->n_ints = cnt; /* -1: reverse the dims */
        return HP_OK;
    }
    case HP_ONNX_DEPTH_TO_SPACE: {
        int64_t bs = attr_int(np, "blocksize", 0);
        if (bs < 1 || bs > 1024)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "blocksize = %lld", (long long)bs);
        n->attr.d2s.blocksize = (int)bs;
        const char *m = attr_str(np, "mode", "DCR", buf, sizeof buf);
        if (!strcmp(m, "DCR"))
            n->attr.d2s.crd = 0;
        else if (!strcmp(m, "CRD"))
            n->attr.d2s.crd = 1;
        else
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "mode '%s'", m);
        return HP_OK;
    }
    case HP_ONNX_RESIZE: return parse_resize(c, np, idx, n, opset, 0);
    case HP_ONNX_UPSAMPLE: return parse_resize(c, np, idx, n, opset, 1);
    case HP_ONNX_PAD: return parse_pad(c, np, idx, n, opset);
    case HP_ONNX_UNSQUEEZE:
    case HP_ONNX_SQUEEZE: {
        int cnt = attr_ints(np, "axes", la->ints, HP_MAX_DIMS);
        if (cnt == -2)
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "more than %d axes", HP_MAX_DIMS);
        la->n_ints = cnt;
        return HP_OK;
    }
    case HP_ONNX_CAST: la->to = (int)attr_int(np, "to", 0); return HP_OK;
    case HP_ONNX_SHAPE: {
        const Onnx__AttributeProto *a;
        if ((a = find_attr(np, "start")) && a->has_i) {
            la->has_start = 1;
            la->start = a->i;
        }
        if ((a = find_attr(np, "end")) && a->has_i) {
            la->has_end = 1;
            la->end = a->i;
        }
        return HP_OK;
    }
    case HP_ONNX_DROPOUT:
        if (np->n_output > 1 && np->output[1] && *np->output[1])
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "the mask output of Dropout");
        return HP_OK;
    default: return HP_OK;
    }
}

/* Constant and ConstantOfShape carry tensors in attributes: make them constant values. */
static hp_status load_constant_node(load_ctx *c, const Onnx__NodeProto *np, int idx, int out)
{
    hp_value *v = &c->g->values[out];
    for (size_t i = 0; i < np->n_attribute; i++) {
        const Onnx__AttributeProto *a = np->attribute[i];
        const char *an = a->name ? a->name : "";
        char where[256];
        snprintf(where, sizeof where, "node %d '%s' (Constant)", idx, np->name ? np->name : "");
        if (!strcmp(an, "value") && a->t)
            return hp_tensor_from_proto(a->t, c->dir, c->path, where, v, c->err);
        if (!strcmp(an, "value_float") && a->has_f)
            return hp_value_set_const(v, HP_DT_FLOAT, 0, NULL, &a->f, c->err);
        if (!strcmp(an, "value_floats")) {
            int64_t d = (int64_t)a->n_floats;
            return hp_value_set_const(v, HP_DT_FLOAT, 1, &d, a->floats, c->err);
        }
        if (!strcmp(an, "value_int") && a->has_i)
            return hp_value_set_const(v, HP_DT_INT64, 0, NULL, &a->i, c->err);
        if (!strcmp(an, "value_ints")) {
            int64_t d = (int64_t)a->n_ints;
            return hp_value_set_const(v, HP_DT_INT64, 1, &d, a->ints, c->err);
        }
        return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "constant attribute '%s'", an);
    }
    return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "Constant without a value");
}

static hp_status add_graph_input(load_ctx *c, const Onnx__ValueInfoProto *vi, int *is_runtime)
{
    const char *name = vi->name ? vi->name : "";
    *is_runtime = 0;
    if (hp_graph_find_value(c->g, name) >= 0)
        return HP_OK; /* an initializer listed as an input (older exporters): a constant */
    *is_runtime = 1;
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "%s: input '%s' is not a tensor", c->path,
                            name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    int vi_idx = hp_graph_add_value(c->g, name);
    if (vi_idx < 0)
        return hp_error_set(c->err, HP_ERR_NOMEM, "%s: out of memory", c->path);
    hp_value *v = &c->g->values[vi_idx];
    v->kind = HP_VAL_INPUT;
    v->dtype = (hp_dtype)(tt->has_elem_type ? tt->elem_type : 0);
    if (!tt->shape)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "%s: input '%s' has no shape", c->path, name);
    if (tt->shape->n_dim > HP_MAX_DIMS)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "%s: input '%s' has rank %zu (at most %d)",
                            c->path, name, tt->shape->n_dim, HP_MAX_DIMS);
    v->ndim = (int)tt->shape->n_dim;
    for (int i = 0; i < v->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0 || d->dim_value > (1 << 24))
                return hp_error_set(c->err, HP_ERR_INVALID, "%s: input '%s' dim %d = %lld is absurd",
                                    c->path, name, i, (long long)d->dim_value);
            v->dims[i] = d->dim_value;
        } else {
            /* Symbolic (or unknown): the first dim is the batch, sized at instantiation; others
             * (a fully convolutional export's height and width) take the size the caller gives
             * (hp_model_set_input_shape). */
            v->dims[i] = -1;
        }
    }
    if (v->dtype != HP_DT_FLOAT && v->dtype != HP_DT_INT64)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED,
                            "%s: input '%s' has data type %s; histoplan runs float32 tensors",
                            c->path, name, hp_dtype_name(v->dtype));
    return HP_OK;
}

static hp_status load_graph(load_ctx *c, const Onnx__ModelProto *mp)
{
    const Onnx__GraphProto *gp = mp->graph;
    hp_graph *g = c->g;
    if (!gp)
        return hp_error_set(c->err, HP_ERR_INVALID, "%s: the model has no graph", c->path);

    /* Opset of the default domain; nodes of other domains are refused below. */
    g->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (!o->domain || !*o->domain || !strcmp(o->domain, "ai.onnx"))
            g->opset = o->has_version ? o->version : 1;
    }
    if (g->opset < 0)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED,
                            "%s: the model imports no opset of the default ONNX domain (only other domains)",
                            c->path);
    if (g->opset < HP_MIN_OPSET || g->opset > HP_MAX_OPSET)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "%s: opset %lld (supported: %d to %d)", c->path,
                            (long long)g->opset, HP_MIN_OPSET, HP_MAX_OPSET);
    if (gp->n_sparse_initializer > 0)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "%s: sparse initializers", c->path);

    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        const char *name = t->name ? t->name : "";
        if (hp_graph_find_value(g, name) >= 0)
            return hp_error_set(c->err, HP_ERR_INVALID, "%s: initializer '%s' defined twice", c->path,
                                name);
        int vi = hp_graph_add_value(g, name);
        if (vi < 0)
            return hp_error_set(c->err, HP_ERR_NOMEM, "%s: out of memory", c->path);
        char where[300];
        snprintf(where, sizeof where, "initializer '%s'", name);
        hp_status st = hp_tensor_from_proto(t, c->dir, c->path, where, &g->values[vi], c->err);
        if (st)
            return st;
    }

    int n_rt = 0;
    g->inputs = calloc(gp->n_input + 1, sizeof(int));
    g->outputs = calloc(gp->n_output + 1, sizeof(int));
    if (!g->inputs || !g->outputs)
        return hp_error_set(c->err, HP_ERR_NOMEM, "%s: out of memory", c->path);
    for (size_t i = 0; i < gp->n_input; i++) {
        int rt;
        hp_status st = add_graph_input(c, gp->input[i], &rt);
        if (st)
            return st;
        if (rt)
            g->inputs[n_rt++] = g->n_values - 1;
    }
    g->n_inputs = n_rt;
    if (n_rt == 0)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED,
                            "%s: the graph has no runtime input (histoplan runs models on input tensors)", c->path);

    for (size_t k = 0; k < gp->n_node; k++) {
        const Onnx__NodeProto *np = gp->node[k];
        int idx = (int)k;
        if (!np->op_type)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "no op type");
        if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0)
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "operator %s of domain '%s'",
                             np->op_type, np->domain);
        hp_onnx_op op = hp_onnx_op_lookup(np->op_type);
        if (op == HP_ONNX_UNKNOWN)
            return NODE_FAIL(c, HP_ERR_UNSUPPORTED, np, idx, "unsupported operator %s", np->op_type);
        if (np->n_input > 64 * 1024 || np->n_output > 16)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "%zu inputs, %zu outputs", np->n_input,
                             np->n_output);
        int need = hp_onnx_min_inputs(op);
        for (int i = 0; i < need; i++)
            if ((size_t)i >= np->n_input || !np->input[i] || !*np->input[i])
                return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "input %d is missing (%s takes at least %d)", i,
                                 np->op_type, need);
        if (np->n_output < 1 || !np->output[0] || !*np->output[0])
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "no output");
        char autoname[64];
        snprintf(autoname, sizeof autoname, "%s#%d", np->op_type, idx);
        int ni = hp_graph_add_node(g, np->op_type, (np->name && *np->name) ? np->name : autoname,
                                   (int)np->n_input, 1);
        if (ni < 0)
            return hp_error_set(c->err, HP_ERR_NOMEM, "%s: out of memory", c->path);
        hp_node *n = &g->nodes[ni];
        n->load.kind = op;
        for (size_t i = 0; i < np->n_input; i++) {
            const char *in = np->input[i];
            if (!in || !*in)
                continue; /* an absent optional input */
            int vi = hp_graph_find_value(g, in);
            if (vi < 0)
                return NODE_FAIL(c, HP_ERR_INVALID, np, idx,
                                 "input '%s' is not produced by any earlier node, initializer or "
                                 "graph input",
                                 in);
            g->nodes[ni].in[i] = vi;
        }
        if (hp_graph_find_value(g, np->output[0]) >= 0)
            return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "output '%s' is defined twice", np->output[0]);
        int vo = hp_graph_add_value(g, np->output[0]);
        if (vo < 0)
            return hp_error_set(c->err, HP_ERR_NOMEM, "%s: out of memory", c->path);
        n = &g->nodes[ni];
        n->out[0] = vo;
        hp_status st = parse_attrs(c, np, idx, n, g->opset);
        if (st)
            return st;
        if (op == HP_ONNX_CONSTANT) {
            st = load_constant_node(c, np, idx, vo);
            if (st)
                return st;
            n->dead = 1; /* the value itself is the constant */
        } else if (op == HP_ONNX_CONSTANT_OF_SHAPE) {
            const Onnx__AttributeProto *a = find_attr(np, "value");
            hp_value tmp = {0};
            float zero = 0.0f;
            if (a && a->t) {
                st = hp_tensor_from_proto(a->t, c->dir, c->path, "ConstantOfShape value", &tmp, c->err);
                if (st)
                    return st;
                if (hp_value_numel(&tmp) != 1) {
                    if (tmp.owns_data)
                        free(tmp.data);
                    return NODE_FAIL(c, HP_ERR_INVALID, np, idx, "value must hold one element");
                }
                /* Kept on the output value as a 1-element template until the shape is known. */
                st = hp_value_set_const(&g->values[vo], tmp.dtype, 0, NULL, tmp.data, c->err);
                if (tmp.owns_data)
                    free(tmp.data);
            } else {
                st = hp_value_set_const(&g->values[vo], HP_DT_FLOAT, 0, NULL, &zero, c->err);
            }
            if (st)
                return st;
            g->values[vo].kind = HP_VAL_RUNTIME; /* becomes a constant at inference */
        }
    }

    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        int v = hp_graph_find_value(g, vi->name ? vi->name : "");
        if (v < 0)
            return hp_error_set(c->err, HP_ERR_INVALID, "%s: output '%s' is not produced by any node",
                                c->path, vi->name ? vi->name : "");
        if (vi->type && vi->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE &&
            vi->type->tensor_type && vi->type->tensor_type->has_elem_type &&
            vi->type->tensor_type->elem_type != HP_DT_FLOAT)
            return hp_error_set(c->err, HP_ERR_UNSUPPORTED,
                                "%s: output '%s' has data type %s; histoplan produces float32 outputs",
                                c->path, vi->name, hp_dtype_name((hp_dtype)vi->type->tensor_type->elem_type));
        g->values[v].is_output = 1;
        g->outputs[g->n_outputs++] = v;
    }
    if (g->n_outputs == 0)
        return hp_error_set(c->err, HP_ERR_INVALID, "%s: the graph has no output", c->path);
    hp_graph_recount(g);
    return HP_OK;
}

hp_status hp_onnx_load(const char *path, hp_graph **out, hp_error *err)
{
    *out = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    hp_status st = read_file(path, &buf, &len, err);
    if (st)
        return st;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!mp)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: not an ONNX model (the protobuf does not parse; truncated or another "
                            "file type)",
                            path);
    load_ctx c = {.path = path, .err = err};
    c.g = calloc(1, sizeof *c.g);
    const char *slash = strrchr(path, '/');
    c.dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
    if (!c.g || !c.dir) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    c.g->source = strdup(path);
    if (!c.g->source) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    st = load_graph(&c, mp);
    if (st)
        goto fail;
    onnx__model_proto__free_unpacked(mp, NULL);
    free(c.dir);
    *out = c.g;
    return HP_OK;
fail:
    onnx__model_proto__free_unpacked(mp, NULL);
    free(c.dir);
    hp_graph_destroy(c.g);
    return st;
}
