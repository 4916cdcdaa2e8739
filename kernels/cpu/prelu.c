/* PRelu: y = x < 0 ? slope * x : x, slope broadcast to X (unidirectional: the output has X's
 * shape). Runs on the broadcasting engine of binary.c. */
#include "kernels/cpu/cpu_internal.h"

hp_status hp_cpu_prelu(hp_cpu_ctx *c, const hp_node *n, const hp_cpu_tensor *const *in,
                       const hp_cpu_tensor *out)
{
    if (n->n_in < 2 || !in[0] || !in[1])
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "needs inputs X and slope");
    if (!hp_cpu_same_dims(in[0], out))
        return hp_cpu_fail(c, n, HP_ERR_INVALID, "output shape differs from X's");
    return hp_cpu_broadcast_apply(c, n, in[0], in[1], out, HP_CPU_OP_PRELU);
}
