/* Stand-in for the CUDA backend in builds without nvcc (or with -DHP_CUDA=OFF): it reports
 * plainly that CUDA is not compiled in, so callers fall back or fail with a clear message. */
#include "kernels/backend.h"

#include <stdlib.h>

hp_backend *hp_cuda_backend_create(int device, hp_precision precision, hp_error *err)
{
    (void)device;
    (void)precision;
    hp_error_set(err, HP_ERR_UNSUPPORTED,
                 "this histoplan was built without CUDA (no nvcc or cuDNN at build time, or -DHP_CUDA=OFF)");
    return NULL;
}

int hp_cuda_compiled(void) { return 0; }
int hp_cuda_available(void) { return 0; }

/* Without CUDA nothing needs pinning: ordinary memory, 64-byte aligned as pinned memory is. */
void *hp_cuda_host_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes == 0) * 64);
}
void hp_cuda_host_free(void *p) { free(p); }
