/* Which ops read and write strided, channel-sliced NCHW views (a value living inside a
 * concatenation buffer, batch items further apart than C*H*W). The planner only places a value
 * inside a concat buffer when its producer and all its consumers are in this list, and every
 * backend must honour batch_stride for them; keep it in step with kernels/cpu and kernels/cuda. */
#include "models/plan.h"

int hp_op_accepts_strided(hp_op op)
{
    switch (op) {
    case HP_OP_CONV:
    case HP_OP_BATCHNORM:
    case HP_OP_SCALE_SHIFT:
    case HP_OP_UNARY:
    case HP_OP_MAXPOOL:
    case HP_OP_AVGPOOL:
    case HP_OP_GLOBAL_AVGPOOL:
    case HP_OP_GLOBAL_MAXPOOL:
    case HP_OP_CONCAT:
        return 1;
    default:
        return 0;
    }
}
