/* kernels/cuda/fast_divide.h: the multiply-high quotient equals n / d for every divisor shape
 * (1, powers of two and their neighbours, the plane sizes of the CUDA kernels, the largest
 * 32-bit values) over edge and pseudo-random dividends. The device uses the same formula with
 * __umulhi in place of the 64-bit product. */
#include <stdint.h>

#include "kernels/cuda/fast_divide.h"
#include "util/testutil.h"

int main(void)
{
    uint32_t ds[64];
    int nd = 0;
    const uint32_t fixed[] = {1, 3, 5, 7, 49, 196, 784, 3136, 12544, 50176, 1000, 65535, 65537,
                              0x7fffffffu, 0x80000001u, 0xfffffffeu, 0xffffffffu};
    for (unsigned i = 0; i < sizeof fixed / sizeof *fixed; i++)
        ds[nd++] = fixed[i];
    for (int k = 1; k < 32; k += 5) {
        ds[nd++] = (uint32_t)1 << k;
        ds[nd++] = ((uint32_t)1 << k) + 1;
        ds[nd++] = ((uint32_t)1 << k) - 1;
    }
    int passed = 0;
    uint32_t x = 2463534242u;
    for (int a = 0; a < nd; a++) {
        hp_fast_div f = hp_fast_div_make(ds[a]);
        long bad = 0;
        uint32_t first = 0;
        for (long i = 0; i < 200000; i++) {
            uint32_t n;
            if (i < 64)
                n = (uint32_t)i;
            else if (i < 128)
                n = 0xffffffffu - (uint32_t)(i - 64);
            else if (i < 192)
                n = ds[a] * (uint32_t)(i - 128) - 1; /* just below multiples (wraps for large d) */
            else {
                x ^= x << 13, x ^= x >> 17, x ^= x << 5;
                n = x;
            }
            if (hp_fast_div_q(f, n) != n / ds[a] && bad++ == 0)
                first = n;
        }
        CHECK_MSG(bad == 0, "d = %u: %ld wrong quotients (first n = %u: %u, want %u)", ds[a], bad,
                  first, hp_fast_div_q(f, first), first / ds[a]);
        passed += bad == 0;
    }
    return hp_test_finish("test_fast_divide", passed);
}
