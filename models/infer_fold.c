/* Load-time folding and reshapes: the Shape → Gather → Unsqueeze → Concat chains PyTorch emits
 * around flatten and reshape become constants; Reshape, Flatten, Squeeze and Unsqueeze become
 * storage aliases; Concat, Cast and ConstantOfShape of constants are computed here. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/infer_internal.h"
#include "models/onnx_ops.h"
#include "models/tensor_convert.h"

hp_status hp_infer_concat(ictx *c, hp_node *n)
{
    hp_value *first = NULL;
    int all_const = 1, live = 0;
    for (int i = 0; i < n->n_in; i++) {
        hp_value *v = hp_infer_input(c, i);
        if (!v)
            return hp_infer_fail(c, HP_ERR_INVALID, "input %d is empty", i);
        live++;
        if (!first)
            first = v;
        all_const &= hp_infer_is_const(v);
    }
    if (!first)
        return hp_infer_fail(c, HP_ERR_INVALID, "Concat without inputs");
    int axis;
    if (!hp_infer_norm_axis(n->load.axis, first->ndim, &axis))
        return hp_infer_fail(c, HP_ERR_INVALID, "axis %d out of range for rank %d", n->load.axis, first->ndim);
    int64_t d[HP_MAX_DIMS];
    memcpy(d, first->dims, sizeof d);
    d[axis] = 0;
    for (int i = 0; i < n->n_in; i++) {
        hp_value *v = hp_infer_input(c, i);
        if (!v)
            continue;
        if (v->ndim != first->ndim || v->dtype != first->dtype)
            return hp_infer_fail(c, HP_ERR_INVALID, "inputs differ in rank or type");
        for (int j = 0; j < v->ndim; j++)
            if (j != axis && v->dims[j] != first->dims[j])
                return hp_infer_fail(c, HP_ERR_INVALID, "input '%s' dim %d is %lld, expected %lld", v->name, j,
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
            return hp_infer_fail(c, HP_ERR_NOMEM, "out of memory");
        int64_t inner_out = outer ? total / outer : 0, off = 0;
        for (int i = 0; i < n->n_in; i++) {
            hp_value *v = hp_infer_input(c, i);
            if (!v)
                continue;
            int64_t inner = outer ? hp_value_numel(v) / outer : 0;
            for (int64_t o = 0; o < outer; o++)
                memcpy(buf + (size_t)(o * inner_out + off) * es, (char *)v->data + (size_t)(o * inner) * es,
                       (size_t)inner * es);
            off += inner;
        }
        hp_status st = hp_infer_fold_new(c, first->dtype, first->ndim, d, buf);
        free(buf);
        return st;
    }
    for (int i = 0; i < n->n_in; i++) {
        hp_status st = hp_infer_require_float(c, hp_infer_input(c, i), "input");
        if (st)
            return st;
    }
    (void)live;
    hp_infer_set_dims(hp_infer_output(c), first->ndim, d);
    n->op = HP_OP_CONCAT;
    return HP_OK;
}

hp_status hp_infer_reshape(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0);
    int64_t shape[HP_MAX_DIMS];
    int ns;
    if (!hp_infer_input(c, 1))
        return hp_infer_fail(c, HP_ERR_INVALID, "Reshape needs a shape input");
    hp_status st = hp_infer_const_ints(c, hp_infer_input(c, 1), "the target shape", shape, HP_MAX_DIMS, &ns);
    if (st)
        return st;
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < ns; i++) {
        if (shape[i] == 0 && !n->load.allowzero) {
            if (i >= x->ndim)
                return hp_infer_fail(c, HP_ERR_INVALID, "shape[%d] = 0 copies a dim the input lacks", i);
            shape[i] = x->dims[i];
        }
        if (shape[i] == -1) {
            if (infer_at >= 0)
                return hp_infer_fail(c, HP_ERR_INVALID, "more than one -1 in the target shape");
            infer_at = i;
        } else if (shape[i] < 0) {
            return hp_infer_fail(c, HP_ERR_INVALID, "negative dim %lld in the target shape", (long long)shape[i]);
        } else if (shape[i] > 0 && known > HP_MAX_TENSOR_ELEMS / shape[i]) {
            return hp_infer_fail(c, HP_ERR_INVALID, "the target shape holds more than %lld elements",
                        (long long)HP_MAX_TENSOR_ELEMS);
        } else {
            known *= shape[i];
        }
    }
    if (infer_at >= 0) {
        if (known == 0 || hp_value_numel(x) % known != 0)
            return hp_infer_fail(c, HP_ERR_INVALID, "cannot reshape %lld elements with -1", (long long)hp_value_numel(x));
        shape[infer_at] = hp_value_numel(x) / known;
    }
    return hp_infer_make_alias(c, x, ns, shape);
}

hp_status hp_infer_flatten(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0);
    int axis = n->load.axis < 0 ? n->load.axis + x->ndim : n->load.axis;
    if (axis < 0 || axis > x->ndim)
        return hp_infer_fail(c, HP_ERR_INVALID, "axis %d out of range for rank %d", n->load.axis, x->ndim);
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->ndim; i++)
        d[i < axis ? 0 : 1] *= x->dims[i];
    return hp_infer_make_alias(c, x, 2, d);
}

hp_status hp_infer_squeeze(ictx *c, hp_node *n, int unsqueeze)
{
    hp_value *x = hp_infer_input(c, 0);
    int64_t axes[HP_MAX_DIMS];
    int na = n->load.n_ints;
    if (hp_infer_input(c, 1)) {
        hp_status st = hp_infer_const_ints(c, hp_infer_input(c, 1), "axes", axes, HP_MAX_DIMS, &na);
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
            return hp_infer_fail(c, HP_ERR_INVALID, "Unsqueeze needs axes, result rank at most %d", HP_MAX_DIMS);
        int mark[HP_MAX_DIMS] = {0};
        for (int i = 0; i < na; i++) {
            int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
            if (a < 0 || a >= r || mark[a])
                return hp_infer_fail(c, HP_ERR_INVALID, "axis %lld invalid", (long long)axes[i]);
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
                    return hp_infer_fail(c, HP_ERR_INVALID, "cannot squeeze axis %lld", (long long)axes[i]);
                drop[a] = 1;
            }
        }
        for (int i = 0; i < x->ndim; i++)
            if (!drop[i])
                d[nd++] = x->dims[i];
    }
    return hp_infer_make_alias(c, x, nd, d);
}

hp_status hp_infer_gather(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0), *idx = hp_infer_input(c, 1);
    if (!x || !idx)
        return hp_infer_fail(c, HP_ERR_INVALID, "Gather needs data and indices");
    if (!hp_infer_is_const(x) || !hp_infer_is_const(idx))
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED,
                    "Gather on runtime data (only the shape chains PyTorch emits, folded at load time)");
    int axis;
    if (!hp_infer_norm_axis(n->load.axis, x->ndim, &axis))
        return hp_infer_fail(c, HP_ERR_INVALID, "axis %d out of range", n->load.axis);
    if (x->ndim + idx->ndim - 1 > HP_MAX_DIMS)
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "result rank too large");
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
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "constant Gather too large to fold");
    size_t es = x->dtype == HP_DT_INT64 ? 8 : 4;
    char *buf = malloc((size_t)(outer * ni * inner + 1) * es);
    if (!buf)
        return hp_infer_fail(c, HP_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < ni; j++) {
            float fk = idx->dtype == HP_DT_INT64 ? 0.0f : ((float *)idx->data)[j];
            if (idx->dtype != HP_DT_INT64 && !(fk > -1e9f && fk < 1e9f)) {
                free(buf);
                return hp_infer_fail(c, HP_ERR_INVALID, "index %g out of range", (double)fk);
            }
            int64_t k = idx->dtype == HP_DT_INT64 ? ((int64_t *)idx->data)[j] : (int64_t)fk;
            if (k < 0)
                k += len;
            if (k < 0 || k >= len) {
                free(buf);
                return hp_infer_fail(c, HP_ERR_INVALID, "index %lld out of range", (long long)k);
            }
            memcpy(buf + (size_t)((o * ni + j) * inner) * es, (char *)x->data + (size_t)((o * len + k) * inner) * es,
                   (size_t)inner * es);
        }
    hp_status st = hp_infer_fold_new(c, x->dtype, nd, d, buf);
    free(buf);
    return st;
}

hp_status hp_infer_shape(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0);
    int64_t r = x->ndim, s = n->load.has_start ? n->load.start : 0, e = n->load.has_end ? n->load.end : r;
    if (s < 0)
        s += r;
    if (e < 0)
        e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t len = e > s ? e - s : 0;
    return hp_infer_fold_new(c, HP_DT_INT64, 1, &len, x->dims + s);
}

hp_status hp_infer_cast(ictx *c, hp_node *n)
{
    hp_value *x = hp_infer_input(c, 0);
    int to = n->load.to;
    int to_float = to == HP_DT_FLOAT || to == HP_DT_FLOAT16 || to == HP_DT_BFLOAT16 || to == 11;
    int to_int = (to >= 2 && to <= 7) || to == 9 || to == 12 || to == 13;
    if (!to_float && !to_int)
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "Cast to %s", hp_dtype_name((hp_dtype)to));
    if (!hp_infer_is_const(x)) {
        if (to != HP_DT_FLOAT || x->dtype != HP_DT_FLOAT)
            return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "Cast of runtime data to %s", hp_dtype_name((hp_dtype)to));
        return hp_infer_make_alias(c, x, x->ndim, x->dims);
    }
    int64_t cnt = hp_value_numel(x);
    hp_dtype dt = to_float ? HP_DT_FLOAT : HP_DT_INT64;
    void *buf = malloc((size_t)(cnt + 1) * 8);
    if (!buf)
        return hp_infer_fail(c, HP_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < cnt; i++) {
        double v = x->dtype == HP_DT_INT64 ? (double)((int64_t *)x->data)[i] : ((float *)x->data)[i];
        if (dt == HP_DT_FLOAT) {
            ((float *)buf)[i] = (float)v;
        } else if (!(v > -9.2e18 && v < 9.2e18)) {
            free(buf);
            return hp_infer_fail(c, HP_ERR_INVALID, "cannot cast %g to an integer", v);
        } else {
            ((int64_t *)buf)[i] = (int64_t)v;
        }
    }
    hp_status st = hp_infer_fold_new(c, dt, x->ndim, x->dims, buf);
    free(buf);
    return st;
}

hp_status hp_infer_constant_of_shape(ictx *c, hp_node *n)
{
    hp_value *o = hp_infer_output(c);
    int64_t d[HP_MAX_DIMS];
    int nd;
    hp_status st = hp_infer_const_ints(c, hp_infer_input(c, 0), "the shape", d, HP_MAX_DIMS, &nd);
    if (st)
        return st;
    int64_t cnt = 1;
    for (int i = 0; i < nd; i++) {
        if (d[i] < 0 || d[i] > (1 << 24))
            return hp_infer_fail(c, HP_ERR_INVALID, "dim %lld out of range", (long long)d[i]);
        cnt *= d[i];
    }
    if (cnt > (1 << 24))
        return hp_infer_fail(c, HP_ERR_UNSUPPORTED, "constant too large");
    hp_dtype dt = o->dtype;
    size_t es = dt == HP_DT_INT64 ? 8 : 4;
    char *buf = malloc((size_t)(cnt + 1) * es);
    if (!buf)
        return hp_infer_fail(c, HP_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < cnt; i++)
        memcpy(buf + (size_t)i * es, o->data, es);
    st = hp_infer_fold_new(c, dt, nd, d, buf);
    free(buf);
    (void)n;
    return st;
}

