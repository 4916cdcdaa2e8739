/* Static memory plan: where every runtime value lives in one arena, computed once per
 * instantiated graph (one batch size). Backends allocate `arena_elems` elements (float32 on the
 * CPU; the CUDA backend may use a narrower element for float16 / bfloat16) and place values by
 * the offsets below.
 *
 * Concatenations are made free: a value that feeds a channel concatenation (axis 1) may live
 * inside the concatenation's output, at a channel offset, so its producer writes straight into
 * its slice (DenseNet's blocks). Such a value is "strided": its batch items are `batch_stride`
 * elements apart rather than numel/N. Only ops that accept strided views produce or consume it
 * (see hp_op_accepts_strided). Reshape-like ops (HP_OP_ALIAS) share their input's storage. */
#ifndef HP_PLAN_H
#define HP_PLAN_H

#include <stdint.h>

#include "models/graph.h"

typedef struct {
    int root;           /* value whose buffer holds this one (itself when it owns a buffer);
                           -1 for constants, which live outside the arena */
    int64_t chan_off;   /* first channel of this value inside root (axis 1); 0 when not aliased */
    int64_t offset;     /* NCHW element offset of this value's first element in the arena */
    int64_t batch_stride; /* NCHW elements between consecutive batch items (dim 0) */
} hp_place;

typedef struct {
    int64_t arena_elems;  /* size of the arena in elements */
    int64_t naive_elems;  /* what one buffer per value would need, for reporting */
    hp_place *place;      /* one per graph value */
    int n_values;
} hp_plan;

/* Computes the plan for a shape-inferred graph. */
hp_status hp_plan_build(const hp_graph *g, hp_plan *plan, hp_error *err);
void hp_plan_free(hp_plan *plan);

/* Whether a value is stored contiguously (its batch stride equals numel / dims[0]). */
int hp_plan_is_contiguous(const hp_graph *g, const hp_plan *plan, int value);

/* Whether `op` can read (input) or write (output) a strided, channel-sliced NCHW view. */
int hp_op_accepts_strided(hp_op op);

/* For a CONCAT node: whether input i already lives in its slice of the output (nothing to copy). */
int hp_plan_concat_input_in_place(const hp_graph *g, const hp_plan *plan, const hp_node *n, int i);

#endif
