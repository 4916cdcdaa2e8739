/* Concat along any axis, N-D. With the memory plan's in-place concatenation most inputs were
 * written straight into their slice by their producer (skip[i]); only the rest are copied. Dim 0
 * may be strided (batch_stride) on inputs and output. */
#include <string.h>

#include "kernels/cpu/cpu_internal.h"

typedef struct {
    const hp_cpu_tensor *x, *y;
    int axis;
    int64_t off, inner, outer2;
} cat_job;

/* One batch item (or, for axis 0, one item of dim 0) of one input. */
static void cat_task(void *arg, int64_t b, int tid)
{
    (void)tid;
    const cat_job *j = arg;
    const hp_cpu_tensor *x = j->x, *y = j->y;
    if (j->axis == 0) {
        memmove(y->p + (j->off + b) * y->bstride, x->p + b * x->bstride, (size_t)hp_cpu_item(x) * sizeof(float));
        return;
    }
    int64_t cin = x->dims[j->axis] * j->inner, cout = y->dims[j->axis] * j->inner;
    for (int64_t o = 0; o < j->outer2; o++)
        memmove(y->p + b * y->bstride + o * cout + j->off * j->inner, x->p + b * x->bstride + o * cin,
                (size_t)cin * sizeof(float));
}

hp_status hp_cpu_concat(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out, const unsigned char *skip)
{
    int axis = n->attr.axis;
    if (out->ndim < 1 || axis < 0 || axis >= out->ndim)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "axis %d out of range for rank %d", axis, out->ndim);
    int64_t total = 0;
    for (int i = 0; i < n->n_in; i++) {
        const hp_cpu_tensor *x = in[i];
        if (!x)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "input %d is missing", i);
        if (x->ndim != out->ndim)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "input '%s' has rank %d, output %d", x->name, x->ndim,
                               out->ndim);
        for (int d = 0; d < x->ndim; d++)
            if (d != axis && x->dims[d] != out->dims[d])
                return hp_cpu_fail(c, n, HP_ERR_INVALID, "input '%s' differs from the output in dim %d",
                                   x->name, d);
        total += x->dims[axis];
    }
    if (total != out->dims[axis])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "inputs sum to %lld along axis %d, output has %lld",
                           (long long)total, axis, (long long)out->dims[axis]);
    int64_t inner = 1, outer2 = 1;
    for (int d = axis + 1; d < out->ndim; d++)
        inner *= out->dims[d];
    for (int d = 1; d < axis; d++)
        outer2 *= out->dims[d];
    int64_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        const hp_cpu_tensor *x = in[i];
        int64_t here = off;
        off += x->dims[axis];
        if (skip[i] || hp_cpu_numel(x) == 0)
            continue;
        if (c->reference) {
            /* Element by element through the full multi-index. */
            int64_t idx[HP_MAX_DIMS] = {0}, cnt = hp_cpu_numel(x);
            for (int64_t e = 0; e < cnt; e++) {
                int64_t src = idx[0] * x->bstride, dst = (idx[0] + (axis == 0 ? here : 0)) * out->bstride;
                int64_t sm = 1, dm = 1;
                for (int d = x->ndim - 1; d >= 1; d--) {
                    src += idx[d] * sm;
                    dst += (idx[d] + (d == axis ? here : 0)) * dm;
                    sm *= x->dims[d];
                    dm *= out->dims[d];
                }
                out->p[dst] = x->p[src];
                for (int d = x->ndim - 1; d >= 0; d--) {
                    if (++idx[d] < x->dims[d])
                        break;
                    idx[d] = 0;
                }
            }
            continue;
        }
        cat_job j = {x, out, axis, here, inner, outer2};
        hp_pool_run(c->pool, x->dims[0], cat_task, &j);
    }
    return HP_OK;
}
