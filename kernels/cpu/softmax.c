/* Softmax along one axis (opset >= 13), or legacy (opset < 13): the tensor is coerced to 2-D
 * [prod(dims[:axis]), prod(dims[axis:])] and softmax runs over each row. Stable: the row max is
 * subtracted before exp. Both forms are "outer x len x inner" with a stride of inner. */
#include "kernels/cpu/cpu_internal.h"

typedef struct {
    const float *x;
    float *y;
    int64_t outer, len, inner;
} sm_job;

static void sm_line(const sm_job *j, int64_t o, int64_t i)
{
    const float *x = j->x + o * j->len * j->inner + i;
    float *y = j->y + o * j->len * j->inner + i;
    int64_t s = j->inner;
    float m = -INFINITY;
    for (int64_t k = 0; k < j->len; k++)
        m = x[k * s] > m ? x[k * s] : m;
    float sum = 0.0f;
    for (int64_t k = 0; k < j->len; k++) {
        float e = expf(x[k * s] - m);
        y[k * s] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    for (int64_t k = 0; k < j->len; k++)
        y[k * s] *= inv;
}

static void sm_task(void *arg, int64_t o, int tid)
{
    (void)tid;
    const sm_job *j = arg;
    for (int64_t i = 0; i < j->inner; i++)
        sm_line(j, o, i);
}

hp_status hp_cpu_softmax(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                         const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    if (!hp_cpu_same_dims(x, out))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output shape differs from the input's");
    int axis = n->attr.softmax.axis, nd = x->ndim;
    /* the loader normalizes axes, but graphs built in code may count from the end (ONNX's
     * rule), and the CUDA backend accepts that too: both backends read the IR alike */
    if (axis < 0)
        axis += nd;
    if (nd == 0 || axis < 0 || axis >= nd)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "axis %d out of range for rank %d", axis, nd);
    sm_job j = {x->p, out->p, 1, 1, 1};
    for (int d = 0; d < axis; d++)
        j.outer *= x->dims[d];
    if (n->attr.softmax.legacy) {
        for (int d = axis; d < nd; d++)
            j.len *= x->dims[d];
    } else {
        j.len = x->dims[axis];
        for (int d = axis + 1; d < nd; d++)
            j.inner *= x->dims[d];
    }
    if (hp_cpu_numel(x) == 0)
        return HP_OK;
    if (c->reference) {
        for (int64_t o = 0; o < j.outer; o++)
            for (int64_t i = 0; i < j.inner; i++) {
                const float *xl = x->p + o * j.len * j.inner + i;
                float *yl = out->p + o * j.len * j.inner + i;
                double m = -INFINITY, sum = 0.0;
                for (int64_t k = 0; k < j.len; k++)
                    if (xl[k * j.inner] > m)
                        m = xl[k * j.inner];
                for (int64_t k = 0; k < j.len; k++)
                    sum += exp((double)xl[k * j.inner] - m);
                for (int64_t k = 0; k < j.len; k++)
                    yl[k * j.inner] = (float)(exp((double)xl[k * j.inner] - m) / sum);
            }
        return HP_OK;
    }
    hp_pool_run(c->pool, j.outer, sm_task, &j);
    return HP_OK;
}
