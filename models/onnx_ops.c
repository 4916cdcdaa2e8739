#include "models/onnx_ops.h"

#include <string.h>

static const struct {
    const char *name;
    hp_onnx_op op;
} table[] = {
    {"Conv", HP_ONNX_CONV},
    {"BatchNormalization", HP_ONNX_BATCHNORM},
    {"Relu", HP_ONNX_RELU},
    {"LeakyRelu", HP_ONNX_LEAKY_RELU},
    {"PRelu", HP_ONNX_PRELU},
    {"Sigmoid", HP_ONNX_SIGMOID},
    {"Tanh", HP_ONNX_TANH},
    {"Clip", HP_ONNX_CLIP},
    {"Add", HP_ONNX_ADD},
    {"Sub", HP_ONNX_SUB},
    {"Mul", HP_ONNX_MUL},
    {"Div", HP_ONNX_DIV},
    {"MaxPool", HP_ONNX_MAXPOOL},
    {"AveragePool", HP_ONNX_AVGPOOL},
    {"GlobalAveragePool", HP_ONNX_GLOBAL_AVGPOOL},
    {"GlobalMaxPool", HP_ONNX_GLOBAL_MAXPOOL},
    {"Concat", HP_ONNX_CONCAT},
    {"Flatten", HP_ONNX_FLATTEN},
    {"Reshape", HP_ONNX_RESHAPE},
    {"Transpose", HP_ONNX_TRANSPOSE},
    {"Gemm", HP_ONNX_GEMM},
    {"MatMul", HP_ONNX_MATMUL},
    {"Softmax", HP_ONNX_SOFTMAX},
    {"DepthToSpace", HP_ONNX_DEPTH_TO_SPACE},
    {"Resize", HP_ONNX_RESIZE},
    {"Upsample", HP_ONNX_UPSAMPLE},
    {"Pad", HP_ONNX_PAD},
    {"Identity", HP_ONNX_IDENTITY},
    {"Dropout", HP_ONNX_DROPOUT},
    {"Constant", HP_ONNX_CONSTANT},
    {"Shape", HP_ONNX_SHAPE},
    {"Gather", HP_ONNX_GATHER},
    {"Unsqueeze", HP_ONNX_UNSQUEEZE},
    {"Squeeze", HP_ONNX_SQUEEZE},
    {"Cast", HP_ONNX_CAST},
    {"ConstantOfShape", HP_ONNX_CONSTANT_OF_SHAPE},
};

hp_onnx_op hp_onnx_op_lookup(const char *op_type)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, op_type) == 0)
            return table[i].op;
    return HP_ONNX_UNKNOWN;
}

int hp_onnx_slot_is_parameter(hp_onnx_op op, int slot)
{
    switch (op) {
    case HP_ONNX_RESHAPE: return slot == 1;
    case HP_ONNX_CLIP: return slot >= 1;
    case HP_ONNX_PAD: return slot >= 1;
    case HP_ONNX_RESIZE: return slot >= 1;
    case HP_ONNX_UPSAMPLE: return slot >= 1;
    case HP_ONNX_UNSQUEEZE:
    case HP_ONNX_SQUEEZE: return slot >= 1;
    case HP_ONNX_GATHER: return slot == 1;
    case HP_ONNX_CONSTANT_OF_SHAPE: return slot == 0;
    case HP_ONNX_DROPOUT: return slot >= 1;
    default: return 0;
    }
}

int hp_onnx_min_inputs(hp_onnx_op op)
{
    switch (op) {
    case HP_ONNX_CONSTANT: return 0;
    case HP_ONNX_BATCHNORM: return 5;
    case HP_ONNX_CONV:
    case HP_ONNX_PRELU:
    case HP_ONNX_ADD:
    case HP_ONNX_SUB:
    case HP_ONNX_MUL:
    case HP_ONNX_DIV:
    case HP_ONNX_RESHAPE:
    case HP_ONNX_GEMM:
    case HP_ONNX_MATMUL:
    case HP_ONNX_GATHER: return 2;
    default: return 1;
    }
}
