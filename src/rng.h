/* rng.h: one seeded counter-based generator for the whole run.
 *
 * Philox4x32-10 (Salmon et al., SC'11): a 128-bit counter and a 64-bit key
 * give four 32-bit words, with no state beyond the counter. simdgan keys it
 * with the seed and gives every use its own counter range (stream, index),
 * so a seed fixes the initial weights, every epoch's shuffle and every z, and
 * any element can be drawn independently, by any thread. The generator
 * (sg_philox) and the normals for z (the kernel table's normal slot, which
 * the ISAs vectorize) live in simd/. */
#ifndef SIMDGAN_RNG_H
#define SIMDGAN_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "simd.h"

/* Streams: the high counter words. */
enum {
    SG_STREAM_INIT = 1,    /* + layer index                           */
    SG_STREAM_SHUFFLE = 16, /* counter word 2 = epoch                 */
    SG_STREAM_Z = 17,       /* counter word 2 = step, word 1 = phase  */
};

/* Uniform floats in [lo, hi), from 24 random bits each: dst[i] for i in
 * [i0, i1) uses counter (i / 4, c1, c2, stream). */
void sg_rng_uniform(float *dst, size_t i0, size_t i1, float lo, float hi, uint64_t seed,
                    uint32_t stream, uint32_t c2, uint32_t c1);
/* A uniform random permutation of [0, n) (Fisher-Yates, unbiased bounded
 * integers by rejection). */
void sg_rng_permutation(uint32_t *perm, size_t n, uint64_t seed, uint32_t stream, uint32_t c2);

#endif
