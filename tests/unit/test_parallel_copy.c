/* hp_parallel_memcpy: every byte lands, at odd sizes and unaligned addresses, whether the copy
 * stays on the calling thread (small) or is split (large), and with any thread count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/parallel_copy.h"
#include "util/testutil.h"

int main(void)
{
    const size_t big = (size_t)48 << 20;
    unsigned char *src = malloc(big + 64), *dst = malloc(big + 64);
    if (!src || !dst)
        return 1;
    uint32_t x = 12345;
    for (size_t i = 0; i < big + 64; i++) {
        x = x * 1664525u + 1013904223u;
        src[i] = (unsigned char)(x >> 24);
    }
    const size_t sizes[] = {0, 1, 63, 4096, ((size_t)4 << 20) - 1, ((size_t)17 << 20) + 13, big};
    const size_t offs[] = {0, 3};
    const int threads[] = {0, 1, 3, 8, 64};
    int n = 0;
    for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
        for (size_t o = 0; o < sizeof offs / sizeof *offs; o++)
            for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
                size_t len = sizes[a] - (sizes[a] == big ? offs[o] : 0);
                memset(dst, 0xEE, big + 64);
                hp_parallel_memcpy(dst + offs[o], src + 2 * offs[o], len, threads[t]);
                int same = memcmp(dst + offs[o], src + 2 * offs[o], len) == 0;
                /* nothing written outside [offs, offs + len) */
                int fence = dst[offs[o] + len] == 0xEE && (offs[o] == 0 || dst[offs[o] - 1] == 0xEE);
                CHECK_MSG(same && fence, "%zu bytes at offset %zu, %d threads: %s", len, offs[o],
                          threads[t], same ? "wrote outside the range" : "bytes differ");
                n += same && fence;
            }
    free(src);
    free(dst);
    return hp_test_finish("test_parallel_copy", n);
}
