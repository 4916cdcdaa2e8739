/* Pinned host memory (see hp_cuda_host_alloc in kernels/backend.h). A buffer remembers how it
 * was allocated in a small header, so one free works for pinned and fallback memory alike. */
#include <cstdlib>

#include <cuda_runtime.h>

extern "C" {
#include "kernels/backend.h"
}

namespace {
/* 64 bytes keeps the caller's data as aligned as cudaMallocHost and malloc give it. */
struct alignas(64) host_header {
    int pinned;
};
}

extern "C" void *hp_cuda_host_alloc(size_t bytes)
{
    size_t total = bytes + sizeof(host_header);
    void *raw = nullptr;
    int pinned = 1;
    if (cudaMallocHost(&raw, total) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear it: pinning is an optimization, not a requirement */
        raw = std::aligned_alloc(64, (total + 63) / 64 * 64);
        pinned = 0;
    }
    if (!raw)
        return nullptr;
    static_cast<host_header *>(raw)->pinned = pinned;
    return static_cast<char *>(raw) + sizeof(host_header);
}

extern "C" void hp_cuda_host_free(void *p)
{
    if (!p)
        return;
    void *raw = static_cast<char *>(p) - sizeof(host_header);
    if (static_cast<host_header *>(raw)->pinned)
        (void)cudaFreeHost(raw);
    else
        std::free(raw);
}
