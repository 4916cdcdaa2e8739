/* NumPy .npy files: test references from PyTorch, feature dumps, probability grids.
 *
 * Reads format versions 1.0, 2.0 and 3.0, C order, little-endian float32 ('<f4'), and converts
 * float64 ('<f8') and float16 ('<f2') to float32; integer arrays through hp_npy_read_int64. Everything else (Fortran order, big-endian,
 * other dtypes, object arrays) is refused with a message naming the file and the reason.
 * Writes version 1.0 (2.0 when the header needs it) '<f4', C order.
 * Both functions are thread-safe (no shared state). */
#ifndef HP_NPY_H
#define HP_NPY_H

#include <stdint.h>

#include "common/status.h"

#define HP_NPY_MAX_DIMS 8
/* Arrays with more elements are refused as absurd before anything is allocated (16 GiB float32). */
#define HP_NPY_MAX_ELEMENTS ((int64_t)1 << 32)

/* Reads `path`. On success *data holds the elements as float32 in C order (the caller frees it
 * with free(); never NULL, even for an empty array), *ndim is 0..8 (0 = a scalar, one element)
 * and dims[0..ndim-1] the shape; dims[ndim..7] are set to 0. On failure *data is NULL and
 * `err` names the file and the cause. */
hp_status hp_npy_read(const char *path, float **data, int *ndim, int64_t dims[HP_NPY_MAX_DIMS],
                      hp_error *err);

/* As hp_npy_read, for integer data (shapes, pads, axes, indices that a model takes as inputs):
 * '<i8', '<i4', '<i2', '|i1', '|u1', '<u2', '<u4' and '|b1' are read as int64; floats and
 * uint64 are refused. */
hp_status hp_npy_read_int64(const char *path, int64_t **data, int *ndim,
                            int64_t dims[HP_NPY_MAX_DIMS], hp_error *err);

/* Writes `data` (float32, C order, shape dims[0..ndim-1], ndim 0..8) as '<f4'. The file is written
 * under a temporary name in the same folder and renamed over `path` only when complete, so a
 * reader never sees half a file and a failed write leaves any old file in place. */
hp_status hp_npy_write(const char *path, const float *data, int ndim, const int64_t *dims,
                       hp_error *err);

#endif
