/* ONNX TensorProto → host array of a graph value. Float types (float, float16, bfloat16,
 * double) become float32; integer types become int64 (only shapes, indices and axes use them). */
#ifndef HP_TENSOR_CONVERT_H
#define HP_TENSOR_CONVERT_H

#include "common/status.h"
#include "models/graph.h"

struct Onnx__TensorProto;

/* Fills `v` (dtype, dims, data owned by v, kind CONST). `dir` is where external data files are
 * looked up; `path` and `where` name the model and the tensor in messages. */
hp_status hp_tensor_from_proto(const struct Onnx__TensorProto *t, const char *dir, const char *path,
                               const char *where, hp_value *v, hp_error *err);

/* Makes `v` a constant holding a copy of `data` (ndim dims; ndim 0 is a scalar). */
hp_status hp_value_set_const(hp_value *v, hp_dtype dtype, int ndim, const int64_t *dims,
                             const void *data, hp_error *err);

/* "float32", "int64", "float16", ... for messages. */
const char *hp_dtype_name(hp_dtype t);

/* Largest element count histoplan accepts for one tensor (2^31 - 1). */
#define HP_MAX_TENSOR_ELEMS ((int64_t)0x7fffffff)

/* Whether a shape is acceptable: no negative dim, and the product of its non-zero dims at most
 * HP_MAX_TENSOR_ELEMS (so that no partial product, such as the size of one batch item of an
 * empty tensor, can overflow). Stores the element count in *numel. */
int hp_dims_valid(int ndim, const int64_t *dims, int64_t *numel);

#endif
