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

#include "models/infer_internal.h"
#include "models/onnx_ops.h"
#include "models/tensor_convert.h"

static hp_status infer_unary(ictx *c, hp_node *n, hp_act_kind kind)
{
    hp_value *x = hp_infer_input(c, 0);
    hp_status st = hp_infer_require_float(c, x, "input");
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
            hp_value *b = hp_infer_input(c, i);
            if (!b)
                continue;
            if (!hp_infer_is_const(b) || hp_value_numel(b) != 1)
                return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "Clip bounds must be constant scalars");
            float v = b->dtype == HP_DT_FLOAT ? *(float *)b->data : (float)*(int64_t *)b->data;
            if (i == 1)
                n->attr.act.lo = v;
            else
                n->attr.act.hi = v;
        }
        n->n_in = 1;
    }
    hp_infer_set_dims(hp_infer_output(c), x->ndim, x->dims);
    n->op = HP_OP_UNARY;
    return HP_OK;
}

/* Opset < 7: B broadcasts to A only with broadcast=1, its dims aligned at `axis` (numpy aligns
 * at the end). A constant B is re-viewed with trailing ones so numpy rules then apply. */
static hp_status legacy_broadcast(ictx *c, hp_node *n, hp_value **pb)
{
    hp_value *a = hp_infer_input(c, 0), *b = *pb;
    if (n->load.ints[0] == 0) {
        if (a->ndim != b->ndim || memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
            return hp_infer_fail(c, HP_ERR_INVALID, "shapes differ and broadcast = 0");
        return HP_OK;
    }
    if (!n->load.has_start)
        return HP_OK;
    int axis = n->load.axis < 0 ? n->load.axis + a->ndim : n->load.axis;
    int trailing = a->ndim - axis - b->ndim;
    if (axis < 0 || trailing < 0)
        return hp_infer_fail(c, HP_ERR_INVALID, "axis %d does not fit B of rank %d", n->load.axis, b->ndim);
    if (trailing == 0)
        return HP_OK;
    if (!hp_infer_is_const(b))
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "legacy broadcast (axis) of a runtime operand");
    return hp_infer_view_with_trailing_ones(c, 1, trailing, pb);
}

static hp_status infer_binary(ictx *c, hp_node *n, hp_binary_kind kind)
{
    hp_value *a = hp_infer_input(c, 0), *b = hp_infer_input(c, 1);
    if (!a || !b)
        return hp_infer_fail(c, HP_ERR_INVALID, "needs two inputs");
    if (c->g->opset < 7) {
        hp_status st = legacy_broadcast(c, n, &b);
        if (st)
            return st;
        a = hp_infer_input(c, 0);
    }
    int nd;
    int64_t d[HP_MAX_DIMS];
    if (!hp_infer_broadcast(a, b, &nd, d))
        return hp_infer_fail(c, HP_ERR_INVALID, "shapes of '%s' and '%s' do not broadcast", a->name, b->name);
    if (hp_infer_is_const(a) && hp_infer_is_const(b) && a->dtype == HP_DT_INT64 && b->dtype == HP_DT_INT64) {
        /* Shape arithmetic: fold. */
        int64_t numel = 1;
        for (int i = 0; i < nd; i++)
            numel *= d[i];
        if (numel > 4096)
            return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "integer arithmetic on large tensors");
        int64_t *r = malloc(sizeof(int64_t) * (size_t)(numel ? numel : 1));
        if (!r)
            return hp_infer_fail(c, HP_ERR_NOMEM, "out of memory");
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
            int64_t x = pa[ia], y = pb[ib], v = 0;
            int overflow = 0;
            switch (kind) {
            case HP_BIN_ADD: overflow = __builtin_add_overflow(x, y, &v); break;
            case HP_BIN_SUB: overflow = __builtin_sub_overflow(x, y, &v); break;
            case HP_BIN_MUL: overflow = __builtin_mul_overflow(x, y, &v); break;
            case HP_BIN_DIV: overflow = y == 0 || (x == INT64_MIN && y == -1); v = overflow ? 0 : x / y; break;
            }
            if (overflow) {
                free(r);
                return hp_infer_fail(c, HP_ERR_INVALID, "integer arithmetic on %lld and %lld overflows or divides by zero",
                                     (long long)x, (long long)y);
            }
            r[i] = v;
        }
        hp_status st = hp_infer_fold_new(c, HP_DT_INT64, nd, d, r);
        free(r);
        return st;
    }
    hp_status st;
    if ((st = hp_infer_require_float(c, a, "operand")) || (st = hp_infer_require_float(c, b, "operand")))
        return st;
    hp_infer_set_dims(hp_infer_output(c), nd, d);
    n->op = HP_OP_BINARY;
    n->attr.binary = kind;
    return HP_OK;
}

static hp_status infer_transpose(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0);
    hp_status st = hp_infer_require_float(c, x, "input");
    if (st)
        return st;
    int used[HP_MAX_DIMS] = {0};
    int64_t d[HP_MAX_DIMS];
    if (n->load.n_ints >= 0 && n->load.n_ints != x->ndim)
        return hp_infer_fail(c, HP_ERR_INVALID, "perm has %d entries for rank %d", n->load.n_ints, x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        int64_t p = n->load.n_ints >= 0 ? n->load.ints[i] : x->ndim - 1 - i;
        if (p < 0 || p >= x->ndim || used[p])
            return hp_infer_fail(c, HP_ERR_INVALID, "perm is not a permutation");
        used[p] = 1;
        n->attr.perm[i] = (int)p;
        d[i] = x->dims[p];
    }
    hp_infer_set_dims(hp_infer_output(c), x->ndim, d);
    n->op = HP_OP_TRANSPOSE;
    return HP_OK;
}

static hp_status infer_gemm(ictx *c, hp_node *n)
{
    hp_value *a = hp_infer_input(c, 0), *b = hp_infer_input(c, 1), *cc = hp_infer_input(c, 2);
    hp_status st;
    if (!a || !b)
        return hp_infer_fail(c, HP_ERR_INVALID, "Gemm needs A and B");
    if ((st = hp_infer_require_float(c, a, "A")) || (st = hp_infer_require_float(c, b, "B")) ||
        (st = hp_infer_require_float(c, cc, "C")))
        return st;
    if (a->ndim != 2 || b->ndim != 2)
        return hp_infer_fail(c, HP_ERR_INVALID, "A and B must be 2-D");
    hp_gemm_attr *g = &n->attr.gemm;
    int64_t M = g->trans_a ? a->dims[1] : a->dims[0], K = g->trans_a ? a->dims[0] : a->dims[1];
    int64_t Kb = g->trans_b ? b->dims[1] : b->dims[0], N = g->trans_b ? b->dims[0] : b->dims[1];
    if (K != Kb)
        return hp_infer_fail(c, HP_ERR_INVALID, "inner dimensions %lld and %lld differ", (long long)K, (long long)Kb);
    if (cc) {
        if (cc->ndim > 2 || (cc->ndim >= 1 && cc->dims[cc->ndim - 1] != N && cc->dims[cc->ndim - 1] != 1) ||
            (cc->ndim == 2 && cc->dims[0] != M && cc->dims[0] != 1))
            return hp_infer_fail(c, HP_ERR_INVALID, "C does not broadcast to %lldx%lld", (long long)M, (long long)N);
    }
    int64_t d[2] = {M, N};
    hp_infer_set_dims(hp_infer_output(c), 2, d);
    n->op = HP_OP_GEMM;
    return HP_OK;
}

static hp_status infer_matmul(ictx *c, hp_node *n)
{
    hp_value *a = hp_infer_input(c, 0), *b = hp_infer_input(c, 1);
    hp_status st;
    if (!a || !b)
        return hp_infer_fail(c, HP_ERR_INVALID, "MatMul needs two inputs");
    if ((st = hp_infer_require_float(c, a, "A")) || (st = hp_infer_require_float(c, b, "B")))
        return st;
    if (a->ndim < 1 || b->ndim < 1)
        return hp_infer_fail(c, HP_ERR_INVALID, "scalars cannot be multiplied as matrices");
    int64_t ka = a->dims[a->ndim - 1];
    int64_t kb = b->ndim == 1 ? b->dims[0] : b->dims[b->ndim - 2];
    if (ka != kb)
        return hp_infer_fail(c, HP_ERR_INVALID, "inner dimensions %lld and %lld differ", (long long)ka, (long long)kb);
    /* Batch dims broadcast; 1-D operands are promoted and the added dim removed. */
    hp_value ba = {0}, bb = {0};
    ba.ndim = a->ndim > 2 ? a->ndim - 2 : 0;
    bb.ndim = b->ndim > 2 ? b->ndim - 2 : 0;
    memcpy(ba.dims, a->dims, sizeof(int64_t) * (size_t)ba.ndim);
    memcpy(bb.dims, b->dims, sizeof(int64_t) * (size_t)bb.ndim);
    int nd;
    int64_t d[HP_MAX_DIMS];
    if (!hp_infer_broadcast(&ba, &bb, &nd, d))
        return hp_infer_fail(c, HP_ERR_INVALID, "batch dimensions do not broadcast");
    if (a->ndim >= 2)
        d[nd++] = a->dims[a->ndim - 2];
    if (b->ndim >= 2)
        d[nd++] = b->dims[b->ndim - 1];
    hp_infer_set_dims(hp_infer_output(c), nd, d);
    n->op = HP_OP_MATMUL;
    return HP_OK;
}

static hp_status infer_node(ictx *c, hp_node *n)
{
    for (int i = 0; i < n->n_in; i++) {
        hp_value *v = hp_infer_input(c, i);
        if (v && v->kind == HP_VAL_RUNTIME && v->producer < 0 && !hp_infer_is_const(v))
            return hp_infer_fail(c, HP_ERR_INVALID, "input '%s' is never computed", v->name);
    }
    hp_value *x = hp_infer_input(c, 0);
    switch ((hp_onnx_op)n->load.kind) {
    case HP_ONNX_CONV: return hp_infer_conv(c, n);
    case HP_ONNX_BATCHNORM: {
        hp_status st;
        if ((st = hp_infer_require_float(c, x, "input")))
            return st;
        if (x->ndim < 2)
            return hp_infer_fail(c, HP_ERR_INVALID, "input rank %d (at least 2)", x->ndim);
        for (int i = 1; i <= 4; i++) {
            hp_value *p = hp_infer_input(c, i);
            if (!p || p->ndim != 1 || p->dims[0] != x->dims[1])
                return hp_infer_fail(c, HP_ERR_INVALID, "parameter %d must have %lld values", i, (long long)x->dims[1]);
            if ((st = hp_infer_require_float(c, p, "parameter")))
                return st;
        }
        n->n_in = 5;
        hp_infer_set_dims(hp_infer_output(c), x->ndim, x->dims);
        n->op = HP_OP_BATCHNORM;
        return HP_OK;
    }
    case HP_ONNX_RELU: return infer_unary(c, n, HP_ACT_RELU);
    case HP_ONNX_LEAKY_RELU: return infer_unary(c, n, HP_ACT_LEAKY_RELU);
    case HP_ONNX_SIGMOID: return infer_unary(c, n, HP_ACT_SIGMOID);
    case HP_ONNX_TANH: return infer_unary(c, n, HP_ACT_TANH);
    case HP_ONNX_CLIP: return infer_unary(c, n, HP_ACT_CLIP);
    case HP_ONNX_PRELU: {
        hp_value *s = hp_infer_input(c, 1);
        hp_status st;
        if (!s)
            return hp_infer_fail(c, HP_ERR_INVALID, "PRelu needs a slope");
        if ((st = hp_infer_require_float(c, x, "input")) || (st = hp_infer_require_float(c, s, "slope")))
            return st;
        if (c->g->opset < 7 && s->ndim == 1 && x->ndim > 2 && s->dims[0] == x->dims[1] && hp_infer_is_const(s)) {
            /* PRelu-6: a 1-D slope is per channel; view it as [C, 1, ...] for numpy rules. */
            st = hp_infer_view_with_trailing_ones(c, 1, x->ndim - 2, &s);
            if (st)
                return st;
            x = hp_infer_input(c, 0);
        }
        int nd;
        int64_t d[HP_MAX_DIMS];
        if (!hp_infer_broadcast(x, s, &nd, d) || nd != x->ndim)
            return hp_infer_fail(c, HP_ERR_INVALID, "slope does not broadcast to the input");
        for (int i = 0; i < nd; i++)
            if (d[i] != x->dims[i])
                return hp_infer_fail(c, HP_ERR_INVALID, "slope does not broadcast to the input");
        hp_infer_set_dims(hp_infer_output(c), x->ndim, x->dims);
        n->op = HP_OP_PRELU;
        return HP_OK;
    }
    case HP_ONNX_ADD: return infer_binary(c, n, HP_BIN_ADD);
    case HP_ONNX_SUB: return infer_binary(c, n, HP_BIN_SUB);
    case HP_ONNX_MUL: return infer_binary(c, n, HP_BIN_MUL);
    case HP_ONNX_DIV: return infer_binary(c, n, HP_BIN_DIV);
    case HP_ONNX_MAXPOOL: return hp_infer_pool(c, n, HP_OP_MAXPOOL);
    case HP_ONNX_AVGPOOL: return hp_infer_pool(c, n, HP_OP_AVGPOOL);
    case HP_ONNX_GLOBAL_AVGPOOL:
    case HP_ONNX_GLOBAL_MAXPOOL: {
        hp_status st;
        if ((st = hp_infer_require_float(c, x, "input")))
            return st;
        if (x->ndim < 3)
            return hp_infer_fail(c, HP_ERR_INVALID, "input rank %d (at least 3)", x->ndim);
        int64_t d[HP_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++)
            d[i] = i < 2 ? x->dims[i] : 1;
        hp_infer_set_dims(hp_infer_output(c), x->ndim, d);
        n->op = n->load.kind == HP_ONNX_GLOBAL_AVGPOOL ? HP_OP_GLOBAL_AVGPOOL : HP_OP_GLOBAL_MAXPOOL;
        return HP_OK;
    }
    case HP_ONNX_CONCAT: return hp_infer_concat(c, n);
    case HP_ONNX_FLATTEN: return hp_infer_flatten(c, n);
    case HP_ONNX_RESHAPE: return hp_infer_reshape(c, n);
    case HP_ONNX_TRANSPOSE: return infer_transpose(c, n);
    case HP_ONNX_GEMM: return infer_gemm(c, n);
    case HP_ONNX_MATMUL: return infer_matmul(c, n);
    case HP_ONNX_SOFTMAX: {
        hp_status st;
        if ((st = hp_infer_require_float(c, x, "input")))
            return st;
        int axis;
        if (!hp_infer_norm_axis(n->load.axis, x->ndim, &axis))
            return hp_infer_fail(c, HP_ERR_INVALID, "axis %d out of range for rank %d", n->load.axis, x->ndim);
        n->attr.softmax.axis = axis;
        hp_infer_set_dims(hp_infer_output(c), x->ndim, x->dims);
        n->op = HP_OP_SOFTMAX;
        return HP_OK;
    }
    case HP_ONNX_DEPTH_TO_SPACE: {
        hp_status st;
        if ((st = hp_infer_require_float(c, x, "input")) || (st = hp_infer_require_rank(c, x, 4, "input")))
            return st;
        int64_t bs = n->attr.d2s.blocksize;
        if (x->dims[1] % (bs * bs) != 0)
            return hp_infer_fail(c, HP_ERR_INVALID, "%lld channels are not divisible by blocksize^2 = %lld",
                        (long long)x->dims[1], (long long)(bs * bs));
        int64_t d[4] = {x->dims[0], x->dims[1] / (bs * bs), x->dims[2] * bs, x->dims[3] * bs};
        hp_infer_set_dims(hp_infer_output(c), 4, d);
        n->op = HP_OP_DEPTH_TO_SPACE;
        return HP_OK;
    }
    case HP_ONNX_RESIZE: return hp_infer_resize(c, n, 0);
    case HP_ONNX_UPSAMPLE: return hp_infer_resize(c, n, 1);
    case HP_ONNX_PAD: return hp_infer_pad(c, n);
    case HP_ONNX_IDENTITY:
    case HP_ONNX_DROPOUT: return hp_infer_make_alias(c, x, x->ndim, x->dims);
    case HP_ONNX_SHAPE: return hp_infer_shape(c, n);
    case HP_ONNX_GATHER: return hp_infer_gather(c, n);
    case HP_ONNX_UNSQUEEZE: return hp_infer_squeeze(c, n, 1);
    case HP_ONNX_SQUEEZE: return hp_infer_squeeze(c, n, 0);
    case HP_ONNX_CAST: return hp_infer_cast(c, n);
    case HP_ONNX_CONSTANT_OF_SHAPE: return hp_infer_constant_of_shape(c, n);
    case HP_ONNX_CONSTANT: return HP_OK;
    case HP_ONNX_UNKNOWN: break;
    }
    return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "unsupported operator %s", n->op_type);
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
        /* The loader admits int64 inputs only as data to bind (shapes, pads, indices): one left
         * unbound is a caller's omission, not a model histoplan cannot run. */
        if (v->dtype == HP_DT_INT64)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: input '%s' is int64 data (a shape, pads, axes or indices): give "
                                "its values (hp_model_bind_constant; model run --input %s=FILE.npy)",
                                g->source, v->name, v->name);
        if (v->dtype != HP_DT_FLOAT)
            return hp_error_set(err, HP_ERR_UNSUPPORTED,
                                "%s: input '%s' has data type %s; histoplan runs float32 tensors",
                                g->source, v->name, hp_dtype_name(v->dtype));
        if (v->ndim > 0 && v->dims[0] < 0)
            v->dims[0] = batch;
        for (int d = 1; d < v->ndim; d++)
            if (v->dims[d] < 0)
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: input '%s' dim %d is symbolic and its size was not given "
                                    "(hp_model_set_input_shape; model run takes it from the .npy)",
                                    g->source, v->name, d);
        int64_t numel;
        if (!hp_dims_valid(v->ndim, v->dims, &numel))
            return hp_error_set(err, HP_ERR_INVALID, "%s: input '%s' would hold more than %lld elements",
                                g->source, v->name, (long long)HP_MAX_TENSOR_ELEMS);
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
            if (!hp_dims_valid(o->ndim, o->dims, &numel))
                return hp_infer_fail(&c, HP_ERR_INVALID, "output '%s' would hold more than %lld elements", o->name,
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

