/* Add, Sub, Mul, Div with numpy multidirectional broadcasting, any rank up to HP_MAX_DIMS (also
 * the engine behind PRelu). The fast path collapses the broadcast pattern into as few dims as
 * possible, so the inner loop is a long run with stride 1 or 0 on each side. */
#include "kernels/cpu/cpu_internal.h"

static inline float apply1(int op, float a, float b)
{
    switch (op) {
    case HP_BIN_ADD:
        return a + b;
    case HP_BIN_SUB:
        return a - b;
    case HP_BIN_MUL:
        return a * b;
    case HP_BIN_DIV:
        return a / b;
    default:
        return a < 0.0f ? b * a : a;
    }
}

/* Element strides of a contiguous t broadcast to (nd, dims); 0 when not broadcastable. */
static int bcast_strides(const hp_cpu_tensor *t, int nd, const int64_t *dims, int64_t *st)
{
    if (t->ndim > nd)
        return 0;
    int64_t m = 1;
    for (int d = nd - 1; d >= 0; d--) {
        int td = d - (nd - t->ndim);
        if (td < 0) {
            st[d] = 0;
            continue;
        }
        int64_t k = t->dims[td];
        if (k == dims[d])
            st[d] = k == 1 ? 0 : m;
        else if (k == 1)
            st[d] = 0;
        else
            return 0;
        m *= k;
    }
    return 1;
}

#define HP_BIN_LOOP(EXPR)                                                                    \
    do {                                                                                     \
        if (sa == 1 && sb == 1)                                                              \
            for (int64_t i = 0; i < len; i++) {                                              \
                float x = a[i], w = b[i];                                                    \
                y[i] = (EXPR);                                                               \
            }                                                                                \
        else if (sa == 1 && sb == 0) {                                                       \
            const float w = b[0];                                                            \
            for (int64_t i = 0; i < len; i++) {                                              \
                float x = a[i];                                                              \
                y[i] = (EXPR);                                                               \
            }                                                                                \
        } else if (sa == 0 && sb == 1) {                                                     \
            const float x = a[0];                                                            \
            for (int64_t i = 0; i < len; i++) {                                              \
                float w = b[i];                                                              \
                y[i] = (EXPR);                                                               \
            }                                                                                \
        } else                                                                               \
            for (int64_t i = 0; i < len; i++) {                                              \
                float x = a[i * sa], w = b[i * sb];                                          \
                y[i] = (EXPR);                                                               \
            }                                                                                \
    } while (0)

static void run_row(int op, const float *a, int64_t sa, const float *b, int64_t sb, float *y, int64_t len)
{
    switch (op) {
    case HP_BIN_ADD:
        HP_BIN_LOOP(x + w);
        break;
    case HP_BIN_SUB:
        HP_BIN_LOOP(x - w);
        break;
    case HP_BIN_MUL:
        HP_BIN_LOOP(x * w);
        break;
    case HP_BIN_DIV:
        HP_BIN_LOOP(x / w);
        break;
    default:
        HP_BIN_LOOP(x < 0.0f ? w * x : x);
        break;
    }
}

typedef struct {
    int op, nd; /* collapsed rank; the last dim is the inner run */
    int64_t dims[HP_MAX_DIMS], sa[HP_MAX_DIMS], sb[HP_MAX_DIMS];
    const float *a, *b;
    float *y;
    int64_t rows, rows_per_task, pieces; /* pieces > 1: each row is split into chunks */
} bin_job;

static void bin_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const bin_job *j = arg;
    int nd = j->nd;
    int64_t len = j->dims[nd - 1], sal = j->sa[nd - 1], sbl = j->sb[nd - 1];
    int64_t r0, r1, p0 = 0, plen = len;
    if (j->pieces > 1) {
        r0 = task / j->pieces;
        r1 = r0 + 1;
        p0 = (task % j->pieces) * HP_CPU_CHUNK;
        plen = len - p0 < HP_CPU_CHUNK ? len - p0 : HP_CPU_CHUNK;
    } else {
        r0 = task * j->rows_per_task;
        r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    }
    int64_t idx[HP_MAX_DIMS] = {0}, rem = r0, oa = 0, ob = 0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rem % j->dims[d];
        rem /= j->dims[d];
        oa += idx[d] * j->sa[d];
        ob += idx[d] * j->sb[d];
    }
    for (int64_t r = r0; r < r1; r++) {
        run_row(j->op, j->a + oa + p0 * sal, sal, j->b + ob + p0 * sbl, sbl, j->y + r * len + p0, plen);
        for (int d = nd - 2; d >= 0; d--) {
            oa += j->sa[d];
            ob += j->sb[d];
            if (++idx[d] < j->dims[d])
                break;
            oa -= idx[d] * j->sa[d];
            ob -= idx[d] * j->sb[d];
            idx[d] = 0;
        }
    }
}

hp_status hp_cpu_broadcast_apply(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *a,
                                 const hp_cpu_tensor *b, const hp_cpu_tensor *out, int op)
{
    int nd = out->ndim;
    int64_t sa[HP_MAX_DIMS], sb[HP_MAX_DIMS];
    if (!bcast_strides(a, nd, out->dims, sa) || !bcast_strides(b, nd, out->dims, sb))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "inputs '%s' and '%s' do not broadcast to the output shape",
                           a->name, b->name);
    int64_t total = hp_cpu_numel(out);
    if (total == 0)
        return HP_OK;
    if (c->reference) {
        int64_t idx[HP_MAX_DIMS] = {0};
        for (int64_t e = 0; e < total; e++) {
            int64_t oa = 0, ob = 0;
            for (int d = 0; d < nd; d++) {
                oa += idx[d] * sa[d];
                ob += idx[d] * sb[d];
            }
            out->p[e] = apply1(op, a->p[oa], b->p[ob]);
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < out->dims[d])
                    break;
                idx[d] = 0;
            }
        }
        return HP_OK;
    }
    /* Collapse: drop size-1 dims, merge neighbours whose strides chain on both sides. */
    bin_job j = {.op = op, .a = a->p, .b = b->p, .y = out->p};
    int k = 0;
    for (int d = 0; d < nd; d++) {
        if (out->dims[d] == 1)
            continue;
        if (k > 0 && j.sa[k - 1] == sa[d] * out->dims[d] && j.sb[k - 1] == sb[d] * out->dims[d]) {
            j.dims[k - 1] *= out->dims[d];
            j.sa[k - 1] = sa[d];
            j.sb[k - 1] = sb[d];
            continue;
        }
        j.dims[k] = out->dims[d];
        j.sa[k] = sa[d];
        j.sb[k] = sb[d];
        k++;
    }
    if (k == 0) {
        j.dims[0] = 1;
        j.sa[0] = j.sb[0] = 0;
        k = 1;
    }
    j.nd = k;
    int64_t len = j.dims[k - 1];
    j.rows = total / len;
    if (len > HP_CPU_CHUNK) {
        j.pieces = hp_cpu_nchunks(len);
        j.rows_per_task = 1;
        hp_pool_run(c->pool, j.rows * j.pieces, bin_task, &j);
    } else {
        j.pieces = 1;
        j.rows_per_task = HP_CPU_CHUNK / len;
        hp_pool_run(c->pool, (j.rows + j.rows_per_task - 1) / j.rows_per_task, bin_task, &j);
    }
    return HP_OK;
}

hp_status hp_cpu_binary(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                        const hp_cpu_tensor *out)
{
    if (n->n_in < 2 || !in[0] || !in[1])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs two inputs");
    if (n->attr.binary < HP_BIN_ADD || n->attr.binary > HP_BIN_DIV)
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "unknown binary op %d", (int)n->attr.binary);
    return hp_cpu_broadcast_apply(c, n, in[0], in[1], out, (int)n->attr.binary);
}
