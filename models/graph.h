/* The in-memory graph histoplan runs: an ONNX model after loading, shape inference and the
 * graph passes. It is the contract between the loader and passes (models/) and the backends
 * (kernels/cpu, kernels/cuda): a backend only ever sees an hp_graph and its hp_plan.
 *
 * Layout: every runtime tensor is float32, row-major (NCHW for 4-D). int64 appears only in
 * constants (shapes, indices), which the passes fold away before a backend sees the graph.
 * Ownership: the graph owns its names, index arrays and constant data (see hp_value.owns_data).
 * Not thread-safe; a prepared graph is read-only and may be read by several threads. */
#ifndef HP_GRAPH_H
#define HP_GRAPH_H

#include <stdint.h>

#include "common/status.h"

#define HP_MAX_DIMS 8

/* Element types, numbered as ONNX's TensorProto.DataType. */
typedef enum {
    HP_DT_UNDEFINED = 0,
    HP_DT_FLOAT = 1,
    HP_DT_INT32 = 6,
    HP_DT_INT64 = 7,
    HP_DT_FLOAT16 = 10,
    HP_DT_BFLOAT16 = 16,
} hp_dtype;

typedef enum {
    HP_VAL_RUNTIME = 0, /* produced by a node */
    HP_VAL_INPUT,       /* a graph input, filled by the caller */
    HP_VAL_CONST,       /* an initializer or a folded constant: `data` is set */
} hp_value_kind;

typedef struct {
    char *name;
    hp_value_kind kind;
    hp_dtype dtype; /* HP_DT_FLOAT for every runtime value; constants may be HP_DT_INT64 */
    int ndim;
    int64_t dims[HP_MAX_DIMS];
    void *data;    /* constants only: host data, float or int64_t per dtype */
    int owns_data; /* whether hp_graph_destroy frees `data` */
    int is_output; /* a graph output */
    int producer;  /* index of the producing node, -1 for inputs and constants */
    int n_consumers;
} hp_value;

/* Activation fused into a Conv, Gemm or ScaleShift by the fusion pass (or Clip/Relu alone). */
typedef enum {
    HP_ACT_NONE = 0,
    HP_ACT_RELU,
    HP_ACT_LEAKY_RELU, /* alpha */
    HP_ACT_CLIP,       /* lo, hi */
    HP_ACT_SIGMOID,
    HP_ACT_TANH,
} hp_act_kind;

typedef struct {
    hp_act_kind kind;
    float alpha;
    float lo, hi;
} hp_act;

typedef enum {
    /* ONNX operators that reach a backend */
    HP_OP_CONV,           /* in: X, W, [B]; 2-D only */
    HP_OP_BATCHNORM,      /* in: X, scale, B, mean, var (runtime values allowed) */
    HP_OP_UNARY,          /* Relu, LeakyRelu, Sigmoid, Clip, Tanh: attr.act */
    HP_OP_PRELU,          /* in: X, slope (broadcast to X) */
    HP_OP_BINARY,         /* Add, Sub, Mul, Div with multidirectional broadcasting */
    HP_OP_MAXPOOL,        /* 2-D */
    HP_OP_AVGPOOL,        /* 2-D */
    HP_OP_GLOBAL_AVGPOOL, /* N,C,H,W -> N,C,1,1 */
    HP_OP_GLOBAL_MAXPOOL,
    HP_OP_CONCAT,
    HP_OP_TRANSPOSE,
    HP_OP_GEMM,           /* in: A, B, [C] */
    HP_OP_MATMUL,         /* numpy semantics, batch dims broadcast */
    HP_OP_SOFTMAX,
    HP_OP_DEPTH_TO_SPACE,
    HP_OP_RESIZE,         /* 4-D, scales on H and W only; scales/sizes already resolved */
    HP_OP_PAD,            /* pads resolved into attr */
    /* histoplan's own */
    HP_OP_SCALE_SHIFT,    /* in: X, scale[C], shift[C]: y = act(x*scale[c] + shift[c]); folded BN */
    HP_OP_ALIAS,          /* Reshape, Flatten, Identity, Squeeze, Unsqueeze, Dropout: output shares
                             the input's storage (contiguous); no work at run time */
    HP_OP_COUNT
} hp_op;

typedef enum { HP_BIN_ADD, HP_BIN_SUB, HP_BIN_MUL, HP_BIN_DIV } hp_binary_kind;

typedef struct {
    int group;
    int kh, kw;       /* kernel size, from W's shape */
    int stride[2];    /* h, w */
    int dil[2];       /* h, w */
    int pad[4];       /* top, left, bottom, right (auto_pad resolved at shape inference) */
    hp_act act;       /* fused activation */
} hp_conv_attr;

typedef struct {
    int kh, kw;
    int stride[2];
    int dil[2];
    int pad[4]; /* top, left, bottom, right; ceil_mode already applied to the output shape */
    int count_include_pad; /* AveragePool */
} hp_pool_attr;

typedef struct {
    float alpha, beta;
    int trans_a, trans_b;
} hp_gemm_attr;

typedef enum { HP_RESIZE_NEAREST, HP_RESIZE_LINEAR } hp_resize_mode;
typedef enum {
    HP_CT_HALF_PIXEL,
    HP_CT_PYTORCH_HALF_PIXEL,
    HP_CT_ALIGN_CORNERS,
    HP_CT_ASYMMETRIC,
} hp_coord_transform;
typedef enum {
    HP_NEAREST_ROUND_PREFER_FLOOR,
    HP_NEAREST_ROUND_PREFER_CEIL,
    HP_NEAREST_FLOOR,
    HP_NEAREST_CEIL,
} hp_nearest_mode;

typedef struct {
    hp_resize_mode mode;
    hp_coord_transform coord;
    hp_nearest_mode nearest;
    float scale_h, scale_w; /* as given (or derived from sizes: out/in) for the coordinate map */
} hp_resize_attr;

typedef enum { HP_PAD_CONSTANT, HP_PAD_REFLECT, HP_PAD_EDGE } hp_pad_mode;

typedef struct {
    hp_pad_mode mode;
    float value;
    int64_t pads[2 * HP_MAX_DIMS]; /* ONNX order: all begins, then all ends; may be negative */
} hp_pad_attr;

/* What the loader keeps from the ONNX node for shape inference (models/infer.c): the ONNX op
 * (kind, an HP_ONNX_* code from models/onnx_ops.h) and attributes that depend on input shapes
 * or constant inputs. Backends ignore it. */
typedef struct {
    int kind;
    int auto_pad;      /* 0 NOTSET, 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
    int ceil_mode;
    int has_kernel;    /* kernel_shape given (Conv may infer it from W) */
    int has_pads;
    int axis;          /* Gather, Flatten, Concat, Softmax */
    int to;            /* Cast */
    int allowzero;     /* Reshape */
    int has_start, has_end;
    int64_t start, end; /* Shape (opset 15) */
    int n_ints;        /* axes (Squeeze/Unsqueeze before opset 13), pads (Pad before 11) */
    int64_t ints[2 * HP_MAX_DIMS];
    int has_clip_min, has_clip_max; /* Clip before opset 11: attributes */
    float clip_min, clip_max;
    float scales[HP_MAX_DIMS]; /* Upsample before opset 9 */
    int n_scales;
} hp_load_attr;

typedef struct {
    int n_in, n_out;
    int *in;  /* value indices; -1 for an absent optional input */
    int *out; /* value indices */
    char *name;    /* the ONNX node name (or "<op>#<index>" when it had none) */
    char *op_type; /* the ONNX op type, for messages */
    hp_op op;
    int dead; /* removed by a pass; skipped everywhere */
    union {
        hp_conv_attr conv;
        hp_pool_attr pool;
        hp_gemm_attr gemm;
        hp_act act;                /* HP_OP_UNARY, and the fused activation of SCALE_SHIFT */
        hp_binary_kind binary;
        float bn_epsilon;          /* HP_OP_BATCHNORM */
        int axis;                  /* CONCAT (normalized, >= 0) */
        struct { int axis; int legacy; } softmax; /* legacy: opset < 13, coerce to 2-D at axis */
        int perm[HP_MAX_DIMS];     /* TRANSPOSE */
        struct { int blocksize; int crd; } d2s;   /* DEPTH_TO_SPACE; crd = 0 for DCR */
        hp_resize_attr resize;
        hp_pad_attr pad;
    } attr;
    hp_load_attr load;
} hp_node;

typedef struct {
    int n_values, cap_values;
    hp_value *values;
    int n_nodes, cap_nodes;
    hp_node *nodes; /* topologically sorted */
    int n_inputs, n_outputs;
    int *inputs;  /* value indices of the runtime graph inputs (initializers excluded) */
    int *outputs; /* value indices */
    int64_t opset;
    char *source; /* file name, for messages */
} hp_graph;

void hp_graph_destroy(hp_graph *g);

/* Number of elements of a value (product of its dims; 1 for a scalar). */
int64_t hp_value_numel(const hp_value *v);

/* Adds a value / node; returns its index or -1 when out of memory. Names are copied. */
int hp_graph_add_value(hp_graph *g, const char *name);
int hp_graph_add_node(hp_graph *g, const char *op_type, const char *name, int n_in, int n_out);

/* Finds a value by name; -1 when absent. Linear; used only while loading. */
int hp_graph_find_value(const hp_graph *g, const char *name);

/* Deep copy (constant data shared, not owned, by the copy), used to instantiate a loaded model
 * for one batch size without re-reading the file. NULL when out of memory. */
hp_graph *hp_graph_clone(const hp_graph *g);

/* Recounts n_consumers and producer over live nodes. */
void hp_graph_recount(hp_graph *g);

/* Human-readable op name ("Conv", "ScaleShift", ...). */
const char *hp_op_name(hp_op op);

#endif
