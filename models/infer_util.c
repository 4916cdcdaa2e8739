/* Helpers shared by the shape-inference files: errors naming the node, input access, checks,
 * and the three ways a node resolves besides a backend op (fold to a constant, share a constant,
 * alias the input's storage). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/infer_internal.h"
#include "models/onnx_ops.h"
#include "models/tensor_convert.h"

hp_status hp_infer_fail(ictx *c, hp_status code, const char *fmt, ...)
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

hp_value *hp_infer_input(ictx *c, int i)
{
    const hp_node *n = &c->g->nodes[c->k];
    return (i < n->n_in && n->in[i] >= 0) ? &c->g->values[n->in[i]] : NULL;
}

hp_value *hp_infer_output(ictx *c)
{
    return &c->g->values[c->g->nodes[c->k].out[0]];
}

int hp_infer_is_const(const hp_value *v)
{
    return v && v->kind == HP_VAL_CONST;
}

void hp_infer_set_dims(hp_value *v, int ndim, const int64_t *dims)
{
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        v->dims[i] = dims[i];
    v->dtype = HP_DT_FLOAT;
}

/* A constant's elements as int64 (from int64 or float data). */
hp_status hp_infer_const_ints(ictx *c, const hp_value *v, const char *what, int64_t *out, int max, int *n)
{
    if (!hp_infer_is_const(v))
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "%s must be a constant (computed at load time)", what);
    int64_t cnt = hp_value_numel(v);
    if (cnt > max)
        return hp_infer_fail(c, HP_ERR_INVALID, "%s has %lld values (at most %d)", what, (long long)cnt, max);
    for (int64_t i = 0; i < cnt; i++) {
        if (v->dtype == HP_DT_INT64) {
            out[i] = ((const int64_t *)v->data)[i];
            continue;
        }
        float f = ((const float *)v->data)[i];
        if (!(f > -9.2e18f && f < 9.2e18f)) /* NaN, Inf or beyond int64: no integer meaning */
            return hp_infer_fail(c, HP_ERR_INVALID, "%s holds %g, not an integer", what, (double)f);
        out[i] = (int64_t)f;
    }
    *n = (int)cnt;
    return HP_OK;
}

hp_status hp_infer_require_float(ictx *c, const hp_value *v, const char *what)
{
    if (v && v->dtype != HP_DT_FLOAT)
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "%s '%s' has data type %s; only float32 runs", what,
                    v->name, hp_dtype_name(v->dtype));
    return HP_OK;
}

hp_status hp_infer_require_rank(ictx *c, const hp_value *v, int rank, const char *what)
{
    if (v->ndim != rank)
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "%s '%s' has rank %d; only rank %d (2-D images, NCHW) is supported",
                    what, v->name, v->ndim, rank);
    return HP_OK;
}

int hp_infer_norm_axis(int axis, int rank, int *out)
{
    if (axis < -rank || axis >= rank)
        return 0;
    *out = axis < 0 ? axis + rank : axis;
    return 1;
}

/* Numpy multidirectional broadcast of a and b into out; 0 when incompatible. */
int hp_infer_broadcast(const hp_value *a, const hp_value *b, int *ndim, int64_t *out)
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
hp_status hp_infer_fold_share(ictx *c, const hp_value *src, int ndim, const int64_t *dims)
{
    hp_value *o = hp_infer_output(c);
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

hp_status hp_infer_fold_new(ictx *c, hp_dtype dt, int ndim, const int64_t *dims, const void *data)
{
    hp_value *o = hp_infer_output(c);
    hp_status st = hp_value_set_const(o, dt, ndim, dims, data, c->err);
    if (st)
        return st;
    c->g->nodes[c->k].dead = 1;
    return HP_OK;
}

/* The output shares the input's storage with new dims (Reshape and friends). */
hp_status hp_infer_make_alias(ictx *c, const hp_value *x, int ndim, const int64_t *dims)
{
    int64_t n = -1;
    if (!hp_dims_valid(ndim, dims, &n) || n != hp_value_numel(x))
        return hp_infer_fail(c, HP_ERR_INVALID, "cannot reshape %lld elements into %lld", (long long)hp_value_numel(x),
                    (long long)n);
    if (hp_infer_is_const(x))
        return hp_infer_fold_share(c, x, ndim, dims);
    hp_node *node = &c->g->nodes[c->k];
    node->op = HP_OP_ALIAS;
    node->n_in = 1; /* shape/axes inputs are consumed at load */
    hp_infer_set_dims(hp_infer_output(c), ndim, dims);
    return HP_OK;
}

/* Replaces constant input `slot` by a view of the same data with `trailing` dims of 1 appended. */
hp_status hp_infer_view_with_trailing_ones(ictx *c, int slot, int trailing, hp_value **out)
{
    int nv = hp_graph_add_value(c->g, "");
    if (nv < 0)
        return hp_infer_fail(c, HP_ERR_NOMEM, "out of memory");
    const hp_value *b = &c->g->values[c->g->nodes[c->k].in[slot]]; /* values may have moved */
    if (b->ndim + trailing > HP_MAX_DIMS)
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "rank above %d", HP_MAX_DIMS);
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

