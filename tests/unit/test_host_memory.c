/* hp_cuda_host_alloc / hp_cuda_host_free: pinned memory on a GPU machine, ordinary memory
 * elsewhere; either way the buffer is usable, aligned, and freed by the one free function. */
#include <stdint.h>
#include <string.h>

#include "kernels/backend.h"
#include "util/testutil.h"

int main(void)
{
    const size_t sizes[] = {0, 1, 4096, (size_t)3 << 20};
    int n = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = hp_cuda_host_alloc(sizes[i]);
        CHECK_MSG(p != NULL, "allocation of %zu bytes failed", sizes[i]);
        if (!p)
            continue;
        CHECK_MSG(((uintptr_t)p % 64) == 0, "buffer of %zu bytes not 64-byte aligned", sizes[i]);
        memset(p, 0xA5, sizes[i]);
        int same = 1;
        for (size_t k = 0; k < sizes[i]; k += 4093)
            same &= p[k] == 0xA5;
        CHECK(same);
        hp_cuda_host_free(p);
        n++;
    }
    hp_cuda_host_free(NULL);
    printf("pinned memory %s\n", hp_cuda_available() ? "available (GPU present)" : "not available: ordinary memory");
    return hp_test_finish("test_host_memory", n);
}
