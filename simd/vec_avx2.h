/* vec_avx2.h: the vector shim for simd/avx2.c: vec_kernels.h's operations
 * on 8-lane ymm registers (vec_scalar.h lists and defines each operation;
 * this file gives only what differs).
 *
 * Included by avx2.c alone (built with -mavx2 -mfma). AVX2 has no opmasks:
 * masks are all-ones lanes, and partial vectors use maskload/maskstore,
 * which neither read nor write the lanes masked off. Every operation is one
 * exactly specified IEEE or integer operation, so the kernels written on it
 * give the bits of every other ISA's shim. */
#ifndef SIMDGAN_VEC_AVX2_H
#define SIMDGAN_VEC_AVX2_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

enum { SG_VL = 8 };
typedef __m256 vf;
typedef __m256i vu;
typedef __m256 vm;

/* Lanes [0, n) of 8 as a maskload/maskstore mask (sign bit set), n <= 8: the
 * tails' mask (also the packs'). */
static inline __m256i lanes(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_load_part(const float *p, size_t n) { return _mm256_maskload_ps(p, lanes(n)); }
static inline void vf_store_part(float *p, vf v, size_t n) { _mm256_maskstore_ps(p, lanes(n), v); }

static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm256_sqrt_ps(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf vf_neg(vf a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_copysign(vf mag, vf sgn)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(sign, mag), _mm256_and_ps(sign, sgn));
}
static inline vf vf_round(vf a)
{
    return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* max/min return their second operand when one is NaN: x passes through. */
static inline vf vf_clamp(vf x, float lo, float hi)
{
    return _mm256_min_ps(_mm256_set1_ps(hi), _mm256_max_ps(_mm256_set1_ps(lo), x));
}
/* A NaN a gives c, as fmaxf. */
static inline vf vf_max_num(vf a, float c) { return _mm256_max_ps(a, _mm256_set1_ps(c)); }

static inline vm vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vf vf_sel(vm m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
static inline vf vf_keep(vm m, vf a) { return _mm256_and_ps(a, m); }

/* 2^k for integer k in [-126, 127], built in the exponent field. */
static inline __m256 pow2i(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}
/* p 2^n as 2^(n/2) twice (|n| <= 159 from exp's clamp): the first product
 * is exact and the second rounds once, as scalef does. */
static inline vf vf_scale2(vf p, vf n)
{
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    return _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(_mm256_sub_epi32(ni, n1)));
}
/* From the bits: frexpf's exponent and mantissa (times 2), exactly. */
static inline vf vf_frexp(vf x, vf *e)
{
    __m256i bits = _mm256_castps_si256(x);
    *e = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)),
                                               _mm256_set1_epi32(0x3f800000)));
}

static inline vu vu_set1(uint32_t x) { return _mm256_set1_epi32((int)x); }
static inline vu vu_lanes(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
static inline vu vu_add(vu a, vu b) { return _mm256_add_epi32(a, b); }
static inline vu vu_xor(vu a, vu b) { return _mm256_xor_si256(a, b); }
static inline vu vu_shr(vu a, unsigned n) { return _mm256_srli_epi32(a, (int)n); }
static inline vu vu_mullo(vu a, uint32_t m) { return _mm256_mullo_epi32(a, vu_set1(m)); }
/* The high halves from the 64-bit products of the even lanes and of the odd
 * lanes shifted down. */
static inline vu vu_mulhi(vu a, uint32_t m)
{
    __m256i mv = vu_set1(m);
    __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(a, mv), 32);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), mv);
    return _mm256_blend_epi32(even, odd, 0xaa);
}
static inline vm vu_test(vu a, uint32_t bit)
{
    __m256i b = vu_set1(bit);
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(a, b), b));
}
static inline vu vu_from_vf(vf a) { return _mm256_cvtps_epi32(a); }
/* AVX2 converts only signed integers: the two 16-bit halves convert exactly
 * and their sum rounds once, as a C conversion does. */
static inline vf vf_from_u32(vu a)
{
    __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 16));
    __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(a, _mm256_set1_epi32(0xffff)));
    return _mm256_fmadd_ps(hi, _mm256_set1_ps(65536.0f), lo);
}
static inline vf vf_from_u31(vu a) { return _mm256_cvtepi32_ps(a); }

/* out[4 l + j] = lane l of z[j]: unpacks give, in 128-bit half L of v[j],
 * block 4 L + j's four values; then the halves go to memory order. */
static inline void vf_store4(float *out, const vf z[4])
{
    __m256 a0 = _mm256_unpacklo_ps(z[0], z[1]), a1 = _mm256_unpackhi_ps(z[0], z[1]);
    __m256 b0 = _mm256_unpacklo_ps(z[2], z[3]), b1 = _mm256_unpackhi_ps(z[2], z[3]);
    __m256 v0 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a0), _mm256_castps_pd(b0)));
    __m256 v1 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a0), _mm256_castps_pd(b0)));
    __m256 v2 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a1), _mm256_castps_pd(b1)));
    __m256 v3 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a1), _mm256_castps_pd(b1)));
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(v0, v1, 0x20));
    _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(v2, v3, 0x20));
    _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(v0, v1, 0x31));
    _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(v2, v3, 0x31));
}

/* The FMA peak loop's chains (bm_peak): two FMA pipes of latency 4 need 8
 * of the 16 registers. */
#define SG_VEC_FMA_CHAINS 12
static inline float vf_first(vf a) { return _mm256_cvtss_f32(a); }

#endif
