/* Shape inference and load-time folding for one batch size (see models/infer.c). */
#ifndef HP_INFER_H
#define HP_INFER_H

#include "common/status.h"
#include "models/graph.h"

/* Resolves every node of `g` (a fresh clone of the loaded graph) for `batch`: output dims,
 * backend ops, folded constants and aliases. Inputs bound as constants leave g->inputs. */
hp_status hp_graph_infer(hp_graph *g, int batch, hp_error *err);

/* Graph passes after inference (models/passes.c): BatchNorm folded into the preceding Conv or
 * turned into a ScaleShift, activations fused into Conv / ScaleShift. */
hp_status hp_graph_optimize(hp_graph *g, hp_error *err);

#endif
