/* Add, Sub, Mul, Div with numpy multidirectional broadcasting (up to HP_MAX_DIMS), and PRelu
 * (slope broadcast to X), on contiguous values. Either operand may be a constant. */
#include "kernels/cuda/cuda_internal.h"

enum { OP_ADD = HP_BIN_ADD, OP_SUB = HP_BIN_SUB, OP_MUL = HP_BIN_MUL, OP_DIV = HP_BIN_DIV,
       OP_PRELU = 100 };

typedef struct {
    int nd;
    int64_t od[HP_MAX_DIMS]; /* output dims */
    int64_t as[HP_MAX_DIMS]; /* A's element stride along each output axis (0: broadcast) */
    int64_t bs[HP_MAX_DIMS];
} bcast;

template <typename T>
__global__ void k_binary(const void *a, int af32, const void *bb, int bf32, void *y, int yf32,
                         bcast bc, int op, int64_t total)
{
    HP_CU_LOOP(i, total)
    {
        int64_t r = i, ai = 0, bi = 0;
        for (int d = bc.nd - 1; d >= 0; d--) {
            int64_t c = r % bc.od[d];
            r /= bc.od[d];
            ai += c * bc.as[d];
            bi += c * bc.bs[d];
        }
        float u = hp_ld<T>(a, af32, ai), v = hp_ld<T>(bb, bf32, bi), z;
        switch (op) {
        case OP_ADD: z = u + v; break;
        case OP_SUB: z = u - v; break;
        case OP_MUL: z = u * v; break;
        case OP_DIV: z = u / v; break;
        default: z = u < 0.f ? u * v : u; break; /* PRelu: slope v */
        }
        hp_st<T>(y, yf32, i, z);
    }
}

/* Strides of `t` right-aligned against the output dims; 0 where t broadcasts. */
static int broadcast_strides(const hp_cu_tensor *t, const hp_cu_tensor *out, int64_t *st)
{
    int64_t s = 1;
    for (int d = out->ndim - 1; d >= 0; d--) {
        int td = d - (out->ndim - t->ndim);
        if (td < 0) {
            st[d] = 0;
            continue;
        }
        int64_t dim = t->dims[td];
        if (dim == out->dims[d])
            st[d] = dim == 1 ? 0 : s;
        else if (dim == 1)
            st[d] = 0;
        else
            return 0;
        s *= dim;
    }
    return t->ndim <= out->ndim;
}

template <typename T> static hp_status launch(hp_cuda_backend *b, const hp_node *n)
{
    hp_cu_tensor a, bb, y;
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[0], 0, &a));
    HP_CU_TRY(hp_cu_tensor_of(b, n->in[1], 0, &bb));
    HP_CU_TRY(hp_cu_tensor_of(b, n->out[0], 0, &y));
    bcast bc;
    bc.nd = y.ndim;
    for (int d = 0; d < y.ndim; d++)
        bc.od[d] = y.dims[d];
    if (!broadcast_strides(&a, &y, bc.as) || !broadcast_strides(&bb, &y, bc.bs))
        return hp_error_set(&b->base.err, HP_ERR_INVALID,
                            "cuda: '%s': operand shapes do not broadcast to the output", n->name);
    if (y.numel == 0)
        return HP_OK;
    int op = n->op == HP_OP_PRELU ? OP_PRELU : (int)n->attr.binary;
    k_binary<T><<<hp_cu_blocks(y.numel), HP_CU_THREADS, 0, b->stream>>>(
        a.p, a.f32, bb.p, bb.f32, y.p, y.f32, bc, op, y.numel);
    HP_CU_LAUNCHED(b);
    return HP_OK;
}

extern "C" hp_status hp_cu_binary_run(hp_cuda_backend *b, const hp_node *n)
{
    if (n->n_in < 2 || n->n_out < 1 || n->in[0] < 0 || n->in[1] < 0)
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: '%s' needs two inputs",
                            n->name);
    if (n->op == HP_OP_BINARY && (n->attr.binary < HP_BIN_ADD || n->attr.binary > HP_BIN_DIV))
        return hp_error_set(&b->base.err, HP_ERR_INVALID, "cuda: '%s': unknown binary op %d",
                            n->name, (int)n->attr.binary);
    HP_CU_DISPATCH(b, launch, b, n);
}
