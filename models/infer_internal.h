/* Shared by the shape-inference files (models/infer*.c): the per-node context and the helpers
 * that resolve a node, fold it into a constant or turn it into a storage alias. Not installed
 * as API; nothing outside models/infer*.c includes it. */
#ifndef HP_INFER_INTERNAL_H
#define HP_INFER_INTERNAL_H

#include "models/graph.h"

typedef struct {
    hp_graph *g;
    hp_error *err;
    int k; /* current node */
} ictx;

/* Records "<model>: node K 'name' (Op): <why>" on the context's error; returns `code`. */
hp_status hp_infer_fail(ictx *c, hp_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Input slot i of the current node (NULL when absent) and its first output. */
hp_value *hp_infer_input(ictx *c, int i);
hp_value *hp_infer_output(ictx *c);

int hp_infer_is_const(const hp_value *v);
/* Sets a runtime float value's dims. */
void hp_infer_set_dims(hp_value *v, int ndim, const int64_t *dims);
/* A constant's elements as int64 (from int64 or float data); refused when not constant. */
hp_status hp_infer_const_ints(ictx *c, const hp_value *v, const char *what, int64_t *out, int max, int *n);
hp_status hp_infer_require_float(ictx *c, const hp_value *v, const char *what);
hp_status hp_infer_require_rank(ictx *c, const hp_value *v, int rank, const char *what);
/* Normalizes a possibly negative axis; 0 when out of range. */
int hp_infer_norm_axis(int axis, int rank, int *out);
/* Numpy multidirectional broadcast of a and b; 0 when incompatible. */
int hp_infer_broadcast(const hp_value *a, const hp_value *b, int *ndim, int64_t *out);
/* The output becomes a constant sharing src's data / holding a copy of data; the node dies. */
hp_status hp_infer_fold_share(ictx *c, const hp_value *src, int ndim, const int64_t *dims);
hp_status hp_infer_fold_new(ictx *c, hp_dtype dt, int ndim, const int64_t *dims, const void *data);
/* The output shares x's storage with new dims (or folds when x is constant). */
hp_status hp_infer_make_alias(ictx *c, const hp_value *x, int ndim, const int64_t *dims);
/* Replaces constant input `slot` by a view of the same data with `trailing` dims of 1 appended. */
hp_status hp_infer_view_with_trailing_ones(ictx *c, int slot, int trailing, hp_value **out);

/* Windows and resampling (models/infer_spatial.c). */
hp_status hp_infer_conv(ictx *c, hp_node *n);
hp_status hp_infer_pool(ictx *c, hp_node *n, hp_op op);
hp_status hp_infer_resize(ictx *c, hp_node *n, int upsample);
hp_status hp_infer_pad(ictx *c, hp_node *n);

/* Shape chains, reshapes and constant folding (models/infer_fold.c). */
hp_status hp_infer_concat(ictx *c, hp_node *n);
hp_status hp_infer_reshape(ictx *c, hp_node *n);
hp_status hp_infer_flatten(ictx *c, hp_node *n);
hp_status hp_infer_squeeze(ictx *c, hp_node *n, int unsqueeze);
hp_status hp_infer_gather(ictx *c, hp_node *n);
hp_status hp_infer_shape(ictx *c, hp_node *n);
hp_status hp_infer_cast(ictx *c, hp_node *n);
hp_status hp_infer_constant_of_shape(ictx *c, hp_node *n);

#endif
