/* Stain normalization on a CUDA device: the transform of kernels/stain_normalize.h (Macenko
 * or Reinhard, precomputed by the pipeline's hp_stain_normalizer_init on the host) over a
 * batch of interleaved RGB8 pixels. Same arithmetic as hp_stain_normalize_cpu (kernels/stain_pixel.h); results
 * agree with it to within one level (rounding of the last bits of expf/powf).
 * In builds without CUDA these functions exist and return HP_ERR_UNSUPPORTED.
 * Thread-safe: no state besides the caller's buffers and stream. */
#ifndef HP_CUDA_STAIN_NORMALIZE_H
#define HP_CUDA_STAIN_NORMALIZE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The project's headers carry no extern "C" guards of their own. */
#include "common/status.h"
#include "kernels/stain_normalize.h"

/* Enqueues the transform of `npix` pixels from device buffer `d_src` into device buffer `d_dst`
 * (the same buffer is allowed) on `stream` (a cudaStream_t; NULL = the default stream) on the
 * current device. Asynchronous: a launch error is reported here, a fault during execution at
 * the caller's next synchronization. HP_ERR_DEVICE with "file:line: call: message". */
hp_status hp_stain_normalize_cuda(const hp_stain_normalizer *n, const uint8_t *d_src,
                                  uint8_t *d_dst, size_t npix, void *stream, hp_error *err);

/* Convenience for host buffers: copies `src` to the current device, transforms, copies the
 * result to `dst` and waits. For tests and one-off use; a pipeline keeps its batches on the
 * device and calls hp_stain_normalize_cuda. */
hp_status hp_stain_normalize_cuda_host(const hp_stain_normalizer *n, const uint8_t *src,
                                       uint8_t *dst, size_t npix, hp_error *err);

#ifdef __cplusplus
}
#endif

#endif
