/* The backend interface: what runs a prepared graph. Two implementations: the CPU backend
 * (kernels/cpu/, always built) and the CUDA backend (kernels/cuda/, built when nvcc is found).
 *
 * A backend is prepared once per instantiated graph (weights uploaded or repacked, arena
 * allocated for the plan) and then run any number of times. Inputs and outputs cross the
 * interface as contiguous float32 host arrays in the graph's own layout (NCHW).
 * Errors are recorded on the backend (`err`, first error wins) and returned as hp_status.
 * A backend handle is used by one thread at a time; separate handles are independent. */
#ifndef HP_BACKEND_H
#define HP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "models/graph.h"
#include "models/plan.h"

typedef enum { HP_PREC_FP32 = 0, HP_PREC_FP16, HP_PREC_BF16 } hp_precision;

/* "fp32", "fp16", "bf16": how the command line, findings.json and provenance name a precision. */
static inline const char *hp_precision_name(hp_precision p)
{
    return p == HP_PREC_FP16 ? "fp16" : p == HP_PREC_BF16 ? "bf16" : "fp32";
}

typedef struct hp_backend hp_backend;

typedef struct {
    const char *name; /* "cpu", "cpu-reference", "cuda" */
    /* Takes what it needs from g and plan (it may keep pointers to both until the next prepare
     * or destroy: the caller keeps them alive). Called again after a re-instantiation. */
    hp_status (*prepare)(hp_backend *b, const hp_graph *g, const hp_plan *plan);
    /* inputs[i] holds graph input i (g->inputs[i]), outputs[i] receives graph output i; each a
     * contiguous float32 array of the value's numel. */
    hp_status (*run)(hp_backend *b, const float *const *inputs, float *const *outputs);
    /* Optional (NULL: the caller normalizes on the host and calls run). For a graph whose one
     * input is an [N,3,H,W] image batch: `rgb` holds N tiles of H*W interleaved 8-bit RGB
     * pixels, and channel c of the input is rgb*scale[c] + bias[c]. A GPU backend normalizes
     * on the device, so a quarter of the bytes cross the bus and no host thread normalizes. */
    hp_status (*run_rgb8)(hp_backend *b, const uint8_t *rgb, const float scale[3],
                          const float bias[3], float *const *outputs);
    void (*destroy)(hp_backend *b);
} hp_backend_vtbl;

struct hp_backend {
    const hp_backend_vtbl *vt;
    hp_error err;
    hp_precision precision;
};

/* CPU backend. threads <= 0: one per online core. reference != 0 selects the plain reference
 * kernels (slow, simple, used as the ground truth in tests). Results are identical whatever
 * the thread count. Never NULL except out of memory. */
hp_backend *hp_cpu_backend_create(int threads, int reference);

/* CUDA backend on `device` at the given precision. Returns NULL and fills `err` when CUDA is not
 * compiled in, no device is present, or initialization fails. fp32 runs with TF32 math off. */
hp_backend *hp_cuda_backend_create(int device, hp_precision precision, hp_error *err);

/* Whether this build has the CUDA backend compiled in, and whether a device can be used now. */
int hp_cuda_compiled(void);
int hp_cuda_available(void);

/* Page-locked (pinned) host memory for buffers that are copied to the GPU, so the copies run at
 * full speed and asynchronously (the tile loader's batch buffers on the CUDA backend). Falls back
 * to ordinary memory when CUDA is not compiled in or no device can pin; hp_cuda_host_free frees
 * either kind and accepts NULL. Thread-safe. */
void *hp_cuda_host_alloc(size_t bytes);
void hp_cuda_host_free(void *p);

/* Convenience wrappers. destroy accepts NULL. */
static inline hp_status hp_backend_prepare(hp_backend *b, const hp_graph *g, const hp_plan *p)
{
    return b->vt->prepare(b, g, p);
}
static inline hp_status hp_backend_run(hp_backend *b, const float *const *in, float *const *out)
{
    return b->vt->run(b, in, out);
}
static inline void hp_backend_destroy(hp_backend *b)
{
    if (b)
        b->vt->destroy(b);
}
static inline const char *hp_backend_error(const hp_backend *b)
{
    return b->err.msg;
}

#endif
