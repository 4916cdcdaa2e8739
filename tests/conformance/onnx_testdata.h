/* ONNX test data for the conformance runner: TensorProto files (input_N.pb, output_N.pb)
 * converted to float and int64, and the model's own list of runtime inputs and outputs, read
 * with protobuf-c independently of the engine under test. */
#ifndef HP_CONF_TESTDATA_H
#define HP_CONF_TESTDATA_H

#include <stddef.h>
#include <stdint.h>

#include "models/graph.h"

typedef struct {
    char *name;
    int dtype; /* ONNX TensorProto.DataType */
    int ndim;
    int64_t dims[HP_MAX_DIMS];
    int64_t numel;
    float *f;   /* every element as float (what runtime inputs and outputs are) */
    int64_t *i; /* every element as int64, for integer and bool tensors (bound constants) */
} conf_tensor;

typedef struct {
    char *name;
    int is_tensor; /* 0 for sequence / map / optional values, which a test feeds differently */
    int dtype;
} conf_io;

typedef struct {
    int n_in, n_out, n_nodes;
    conf_io *in, *out; /* runtime inputs (initializers excluded) and outputs, in file order */
    char **node_names;
} conf_model;

/* Reads a TensorProto file. Returns 0, or -1 with `why` filled (strings, complex, external data
 * and implausible shapes are not read). Free with conf_tensor_free. */
int conf_tensor_load(const char *path, conf_tensor *t, char *why, size_t whylen);
void conf_tensor_free(conf_tensor *t);

/* Reads model.onnx: runtime inputs (initializers excluded), outputs, node names. */
int conf_model_load(const char *path, conf_model *mi, char *why, size_t whylen);
void conf_model_free(conf_model *mi);

/* "float", "int64", ... for an ONNX TensorProto.DataType. */
const char *conf_dtype_name(int dt);

#endif
