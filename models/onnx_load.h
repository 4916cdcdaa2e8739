/* Loading an ONNX file into an hp_graph (not yet shape-inferred; see models/infer.h). */
#ifndef HP_ONNX_LOAD_H
#define HP_ONNX_LOAD_H

#include "common/status.h"
#include "models/graph.h"

/* Parses `path`. On success *out owns the new graph; on failure *out is NULL and `err` names
 * the file, the node and the reason. */
hp_status hp_onnx_load(const char *path, hp_graph **out, hp_error *err);

#endif
