/* Pad, N-D: constant, reflect (mirror without repeating the edge, numpy's "reflect") or edge;
 * pads in ONNX order (all begins, then all ends), negative pads crop. */
#include "kernels/cpu/cpu_internal.h"

/* Source index of output position o along a dim of length `in` (-1: the constant). */
static int64_t src_index(hp_pad_mode mode, int64_t o, int64_t begin, int64_t in)
{
    int64_t i = o - begin;
    if (i >= 0 && i < in)
        return i;
    if (mode == HP_PAD_CONSTANT)
        return -1;
    if (mode == HP_PAD_EDGE)
        return i < 0 ? 0 : in - 1;
    if (in == 1)
        return 0;
    int64_t p = 2 * (in - 1);
    i %= p;
    if (i < 0)
        i += p;
    return i < in ? i : p - i;
}

typedef struct {
    const hp_pad_attr *a;
    int nd;
    const int64_t *idims, *odims;
    int64_t istr[HP_MAX_DIMS];
    const float *x;
    float *y;
    int64_t rows, rows_per_task;
} pad_job;

static void pad_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const pad_job *j = arg;
    int nd = j->nd;
    int64_t len = j->odims[nd - 1], ilen = j->idims[nd - 1], b = j->a->pads[nd - 1];
    int64_t r0 = task * j->rows_per_task, r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    for (int64_t r = r0; r < r1; r++) {
        /* Source row of output row r: -1 in any outer dim means a constant row. */
        int64_t rem = r, off = 0;
        int constant = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t o = rem % j->odims[d];
            rem /= j->odims[d];
            int64_t i = src_index(j->a->mode, o, j->a->pads[d], j->idims[d]);
            if (i < 0)
                constant = 1;
            else
                off += i * j->istr[d];
        }
        float *y = j->y + r * len;
        if (constant) {
            for (int64_t o = 0; o < len; o++)
                y[o] = j->a->value;
            continue;
        }
        const float *x = j->x + off;
        int64_t lo = b > 0 ? b : 0, hi = b + ilen < len ? b + ilen : len;
        for (int64_t o = 0; o < lo && o < len; o++) {
            int64_t i = src_index(j->a->mode, o, b, ilen);
            y[o] = i < 0 ? j->a->value : x[i];
        }
        for (int64_t o = lo; o < hi; o++)
            y[o] = x[o - b];
        for (int64_t o = hi > lo ? hi : lo; o < len; o++) {
            int64_t i = src_index(j->a->mode, o, b, ilen);
            y[o] = i < 0 ? j->a->value : x[i];
        }
    }
}

hp_status hp_cpu_pad(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                     const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    const hp_pad_attr *a = &n->attr.pad;
    int nd = x->ndim;
    if (out->ndim != nd)
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output rank differs from the input's");
    if (a->mode != HP_PAD_CONSTANT && a->mode != HP_PAD_REFLECT && a->mode != HP_PAD_EDGE)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "unknown pad mode %d", (int)a->mode);
    for (int d = 0; d < nd; d++) {
        if (x->dims[d] + a->pads[d] + a->pads[nd + d] != out->dims[d])
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "output dim %d does not match input + pads", d);
        if (x->dims[d] == 0 && out->dims[d] > 0 && a->mode != HP_PAD_CONSTANT)
            return hp_cpu_fail(c, n, HP_ERR_INVALID, "cannot %s-pad an empty dim",
                               a->mode == HP_PAD_EDGE ? "edge" : "reflect");
    }
    int64_t total = hp_cpu_numel(out);
    if (total == 0)
        return HP_OK;
    if (nd == 0) {
        out->p[0] = x->p[0];
        return HP_OK;
    }
    pad_job j = {.a = a, .nd = nd, .idims = x->dims, .odims = out->dims, .x = x->p, .y = out->p};
    int64_t m = 1;
    for (int d = nd - 1; d >= 0; d--) {
        j.istr[d] = m;
        m *= x->dims[d];
    }
    if (c->reference) {
        int64_t idx[HP_MAX_DIMS] = {0};
        for (int64_t e = 0; e < total; e++) {
            int64_t off = 0;
            int constant = 0;
            for (int d = 0; d < nd; d++) {
                int64_t i = src_index(a->mode, idx[d], a->pads[d], x->dims[d]);
                if (i < 0)
                    constant = 1;
                else
                    off += i * j.istr[d];
            }
            out->p[e] = constant ? a->value : x->p[off];
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < out->dims[d])
                    break;
                idx[d] = 0;
            }
        }
        return HP_OK;
    }
    int64_t len = out->dims[nd - 1];
    j.rows = total / len;
    j.rows_per_task = len >= HP_CPU_CHUNK ? 1 : HP_CPU_CHUNK / len;
    hp_pool_run(c->pool, (j.rows + j.rows_per_task - 1) / j.rows_per_task, pad_task, &j);
    return HP_OK;
}
