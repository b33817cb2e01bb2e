/* bf16_x86.h: AVX-512F pieces that the x86 bf16 packs share (amx.c,
 * avx512_bf16.c; both objects are built with -mavx512f): sg_bf16_round on
 * 16 floats at a time, and the 32-bit "pair" words, bf16(k) | bf16(k+1) << 16,
 * that both tdpbf16ps and vdpbf16ps read (two consecutive k of a row of A, or
 * of a column of B, side by side). Rounding in integer arithmetic, as
 * sg_bf16_round does, rather than with vcvtne2ps2bf16, which flushes
 * denormals: every path packs the same bits. */
#ifndef SIMDGAN_BF16_X86_H
#define SIMDGAN_BF16_X86_H

#include <immintrin.h>
#include <stddef.h>

/* A mask of the first n (<= 16 or more) lanes. */
static inline __mmask16 sg_lanes16(size_t n) { return n >= 16 ? 0xffff : (__mmask16)((1u << n) - 1); }

/* sg_bf16_round on x[0, 16) (lanes outside mask read as 0.0f), each result in
 * the low half of its 32-bit lane. */
static inline __m512i sg_round16(const float *x, __mmask16 mask)
{
    const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, x));
    const __m512i hi = _mm512_srli_epi32(u, 16);
    const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                          _mm512_and_si512(hi, _mm512_set1_epi32(1)));
    const __m512i rne = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_mov_epi32(rne, nan, _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

/* x[0, n), n <= 32, rounded: 32 bf16 (zeros past n), i.e. 16 pair words of
 * consecutive k. */
static inline __m512i sg_round32(const float *x, size_t n)
{
    const __m256i lo = _mm512_cvtepi32_epi16(sg_round16(x, sg_lanes16(n)));
    const __m256i hi = _mm512_cvtepi32_epi16(sg_round16(x + 16, sg_lanes16(n > 16 ? n - 16 : 0)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* The pair words of rows p and p + 1 (zeros for p + 1 >= K) of 16 lanes
 * x[j], j < 16, a row ld floats after the previous, lanes under mask. */
static inline __m512i sg_pair16(const float *x, size_t ld, size_t p, size_t K, __mmask16 mask)
{
    const __m512i r0 = sg_round16(x + p * ld, mask);
    const __m512i r1 = p + 1 < K ? sg_round16(x + (p + 1) * ld, mask) : _mm512_setzero_si512();
    return _mm512_or_si512(r0, _mm512_slli_epi32(r1, 16));
}

/* 32-bit offsets 0, s, 2 s, ..., 15 s, for scatters. */
static inline __m512i sg_stride16(int s)
{
    return _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                              _mm512_set1_epi32(s));
}

#endif
