/* Stand-in for the CUDA backend in builds without nvcc (or with -DHP_CUDA=OFF): it reports
 * plainly that CUDA is not compiled in, so callers fall back or fail with a clear message. */
#include "kernels/backend.h"

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
