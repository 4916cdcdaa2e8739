/* The ONNX operators histoplan accepts, as the loader records them (hp_node.load.kind).
 * Shape inference (models/infer.c) turns each into a backend op (hp_op), a folded constant,
 * or a storage alias. The README's operator table lists the same set with opsets. */
#ifndef HP_ONNX_OPS_H
#define HP_ONNX_OPS_H

typedef enum {
    HP_ONNX_UNKNOWN = 0,
    HP_ONNX_CONV,
    HP_ONNX_BATCHNORM,
    HP_ONNX_RELU,
    HP_ONNX_LEAKY_RELU,
    HP_ONNX_PRELU,
    HP_ONNX_SIGMOID,
    HP_ONNX_TANH,
    HP_ONNX_CLIP,
    HP_ONNX_ADD,
    HP_ONNX_SUB,
    HP_ONNX_MUL,
    HP_ONNX_DIV,
    HP_ONNX_MAXPOOL,
    HP_ONNX_AVGPOOL,
    HP_ONNX_GLOBAL_AVGPOOL,
    HP_ONNX_GLOBAL_MAXPOOL,
    HP_ONNX_CONCAT,
    HP_ONNX_FLATTEN,
    HP_ONNX_RESHAPE,
    HP_ONNX_TRANSPOSE,
    HP_ONNX_GEMM,
    HP_ONNX_MATMUL,
    HP_ONNX_SOFTMAX,
    HP_ONNX_DEPTH_TO_SPACE,
    HP_ONNX_RESIZE,
    HP_ONNX_UPSAMPLE,
    HP_ONNX_PAD,
    HP_ONNX_IDENTITY,
    HP_ONNX_DROPOUT,
    HP_ONNX_CONSTANT,
    HP_ONNX_SHAPE,
    HP_ONNX_GATHER,
    HP_ONNX_UNSQUEEZE,
    HP_ONNX_SQUEEZE,
    HP_ONNX_CAST,
    HP_ONNX_CONSTANT_OF_SHAPE,
} hp_onnx_op;

/* The code for an ONNX op type in the default domain, HP_ONNX_UNKNOWN when unsupported. */
hp_onnx_op hp_onnx_op_lookup(const char *op_type);

/* How many leading inputs the op requires (they must be present and named). */
int hp_onnx_min_inputs(hp_onnx_op op);

/* Whether input slot `slot` of the op is a parameter that must be constant at inference
 * (a Reshape shape, Pad pads, Resize scales, Clip bounds, Unsqueeze axes, ...). */
int hp_onnx_slot_is_parameter(hp_onnx_op op, int slot);

#endif
