/* rng.c: the uniform and permutation draws from Philox4x32-10 (simd/ref.c). */
#include "rng.h"

/* 24 random bits -> [0, 1), exactly representable in float. */
static inline float u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

void sg_rng_uniform(float *dst, size_t i0, size_t i1, float lo, float hi, uint64_t seed,
                    uint32_t stream, uint32_t c2, uint32_t c1)
{
    uint32_t r[4];
    size_t block = (size_t)-1;
    for (size_t i = i0; i < i1; i++) {
        if (i / 4 != block) {
            block = i / 4;
            uint32_t ctr[4] = {(uint32_t)block, c1, c2, stream};
            sg_philox(r, ctr, seed);
        }
        dst[i] = lo + (hi - lo) * u01(r[i % 4]);
    }
}

void sg_rng_permutation(uint32_t *perm, size_t n, uint64_t seed, uint32_t stream, uint32_t c2)
{
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    uint32_t r[4];
    uint32_t block = 0, used = 4;
    for (size_t i = n; i > 1; i--) {
        /* j uniform in [0, i): reject the top partial range of 2^32. */
        uint32_t bound = (uint32_t)i, limit = (uint32_t)(0x100000000ull / bound * bound - 1), x;
        do {
            if (used == 4) {
                uint32_t ctr[4] = {block++, 0, c2, stream};
                sg_philox(r, ctr, seed);
                used = 0;
            }
            x = r[used++];
        } while (x > limit);
        size_t j = x % bound;
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
