/* Elementwise activations (Relu, LeakyRelu, Clip, Sigmoid, Tanh) and the row epilogue shared by
 * Conv, ScaleShift and BatchNorm: y = act(x * scale[row] + bias[row]). */
#include "kernels/cpu/cpu_internal.h"

/* One loop per activation kind so the inner loop has no switch and vectorizes. */
#define HP_ROWS_LOOP(EXPR)                                                                   \
    for (int64_t r = 0; r < rows; r++) {                                                     \
        const float s = scale ? scale[r] : 1.0f, bb = bias ? bias[r] : 0.0f;                 \
        const float *xr = x + r * ldx;                                                       \
        float *yr = y + r * ldy;                                                             \
        if (scale) {                                                                         \
            for (int64_t j = 0; j < cols; j++) {                                             \
                float v = xr[j] * s + bb;                                                    \
                yr[j] = (EXPR);                                                              \
            }                                                                                \
        } else if (bias) {                                                                   \
            for (int64_t j = 0; j < cols; j++) {                                             \
                float v = xr[j] + bb;                                                        \
                yr[j] = (EXPR);                                                              \
            }                                                                                \
        } else {                                                                             \
            for (int64_t j = 0; j < cols; j++) {                                             \
                float v = xr[j];                                                             \
                yr[j] = (EXPR);                                                              \
            }                                                                                \
        }                                                                                    \
    }

HP_CPU_CLONES
void hp_cpu_affine_act_rows(const hp_act *a, const float *x, int64_t ldx, float *y, int64_t ldy,
                            int64_t rows, int64_t cols, const float *scale, const float *bias)
{
    const float alpha = a->alpha, lo = a->lo, hi = a->hi;
    switch (a->kind) {
    case HP_ACT_RELU:
        HP_ROWS_LOOP(v < 0.0f ? 0.0f : v)
        return;
    case HP_ACT_LEAKY_RELU:
        HP_ROWS_LOOP(v < 0.0f ? alpha * v : v)
        return;
    case HP_ACT_CLIP:
        HP_ROWS_LOOP(v < lo ? lo : (v > hi ? hi : v))
        return;
    case HP_ACT_NONE:
        if (!scale && !bias && x == y && ldx == ldy)
            return;
        HP_ROWS_LOOP(v)
        return;
    default:
        HP_ROWS_LOOP(hp_cpu_act1(a, v))
        return;
    }
}

/* One bias for every row (a plane of one output channel). */
#define HP_PLANE_LOOP(EXPR)                                                                  \
    for (int64_t r = 0; r < rows; r++) {                                                     \
        const float *xr = x + r * ldx;                                                       \
        float *yr = y + r * ldy;                                                             \
        for (int64_t j = 0; j < cols; j++) {                                                 \
            float v = xr[j] + bias;                                                          \
            yr[j] = (EXPR);                                                                  \
        }                                                                                    \
    }

HP_CPU_CLONES
void hp_cpu_bias_act_plane(const hp_act *a, const float *x, int64_t ldx, float *y, int64_t ldy,
                           int64_t rows, int64_t cols, float bias)
{
    const float alpha = a->alpha, lo = a->lo, hi = a->hi;
    switch (a->kind) {
    case HP_ACT_RELU:
        HP_PLANE_LOOP(v < 0.0f ? 0.0f : v)
        return;
    case HP_ACT_LEAKY_RELU:
        HP_PLANE_LOOP(v < 0.0f ? alpha * v : v)
        return;
    case HP_ACT_CLIP:
        HP_PLANE_LOOP(v < lo ? lo : (v > hi ? hi : v))
        return;
    case HP_ACT_NONE:
        HP_PLANE_LOOP(v)
        return;
    default:
        HP_PLANE_LOOP(hp_cpu_act1(a, v))
        return;
    }
}

void hp_cpu_act_rows(const hp_act *a, float *y, int64_t ld, int64_t rows, int64_t cols,
                     const float *scale, const float *bias)
{
    hp_cpu_affine_act_rows(a, y, ld, y, ld, rows, cols, scale, bias);
}

typedef struct {
    const hp_act *act;
    const hp_cpu_tensor *x, *y;
    int64_t item, chunks_per_item;
} unary_job;

static void unary_task(void *arg, int64_t task, int tid)
{
    (void)tid;
    const unary_job *j = arg;
    int64_t n = task / j->chunks_per_item, ch = task % j->chunks_per_item;
    int64_t lo = ch * HP_CPU_CHUNK, len = j->item - lo < HP_CPU_CHUNK ? j->item - lo : HP_CPU_CHUNK;
    hp_cpu_affine_act_rows(j->act, j->x->p + n * j->x->bstride + lo, 0, j->y->p + n * j->y->bstride + lo,
                           0, 1, len, NULL, NULL);
}

hp_status hp_cpu_unary(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                       const hp_cpu_tensor *out)
{
    if (n->n_in < 1 || !in[0])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "missing input");
    const hp_cpu_tensor *x = in[0];
    if (!hp_cpu_same_dims(x, out))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output shape differs from the input's");
    if (!hp_cpu_act_valid(&n->attr.act))
        return hp_cpu_fail(c, n, HP_ERR_UNSUPPORTED, "unknown activation %d", (int)n->attr.act.kind);
    int64_t nb = hp_cpu_batch(x), item = hp_cpu_item(x);
    if (hp_cpu_numel(x) == 0)
        return HP_OK;
    if (c->reference) {
        for (int64_t b = 0; b < nb; b++)
            for (int64_t i = 0; i < item; i++)
                out->p[b * out->bstride + i] = hp_cpu_act1(&n->attr.act, x->p[b * x->bstride + i]);
        return HP_OK;
    }
    unary_job j = {&n->attr.act, x, out, item, hp_cpu_nchunks(item)};
    hp_pool_run(c->pool, nb * j.chunks_per_item, unary_task, &j);
    return HP_OK;
}
