/* vec_avx512.h: the vector shim for simd/avx512.c: vec_kernels.h's
 * operations on 16-lane zmm registers (vec_scalar.h lists and defines each
 * operation; this file gives only what differs).
 *
 * Included by avx512.c alone (built with -mavx512f/vl/bw/dq -mavx2 -mfma).
 * Every operation is one exactly specified IEEE or integer operation, so
 * the kernels written on it give the bits of every other ISA's shim. */
#ifndef SIMDGAN_VEC_AVX512_H
#define SIMDGAN_VEC_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

enum { SG_VL = 16 };
typedef __m512 vf;
typedef __m512i vu;
typedef __mmask16 vm;

/* Lanes [0, n) of 16, n <= 16: the tails' opmask (also the packs'). */
static inline __mmask16 lanes(size_t n) { return (__mmask16)((1u << n) - 1u); }

static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_load_part(const float *p, size_t n)
{
    return _mm512_maskz_loadu_ps(lanes(n), p);
}
static inline void vf_store_part(float *p, vf v, size_t n)
{
    _mm512_mask_storeu_ps(p, lanes(n), v);
}

static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_sqrt(vf a) { return _mm512_sqrt_ps(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf vf_neg(vf a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
/* One bit select (0xca: sign bit ? sgn : mag). */
static inline vf vf_copysign(vf mag, vf sgn)
{
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_set1_epi32(INT32_MIN),
                                                         _mm512_castps_si512(sgn),
                                                         _mm512_castps_si512(mag), 0xca));
}
static inline vf vf_round(vf a)
{
    return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
/* max/min return their second operand when one is NaN: x passes through. */
static inline vf vf_clamp(vf x, float lo, float hi)
{
    return _mm512_min_ps(_mm512_set1_ps(hi), _mm512_max_ps(_mm512_set1_ps(lo), x));
}
/* A NaN a gives c, as fmaxf. */
static inline vf vf_max_num(vf a, float c) { return _mm512_max_ps(a, _mm512_set1_ps(c)); }

static inline vm vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vm vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vf vf_sel(vm m, vf a, vf b) { return _mm512_mask_blend_ps(m, b, a); }
static inline vf vf_keep(vm m, vf a) { return _mm512_maskz_mov_ps(m, a); }

/* scalef rounds once, into denormals and to infinity as needed. */
static inline vf vf_scale2(vf p, vf n) { return _mm512_scalef_ps(p, n); }
/* getmant and getexp are frexpf's mantissa (times 2) and exponent exactly. */
static inline vf vf_frexp(vf x, vf *e)
{
    *e = _mm512_getexp_ps(x);
    return _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
}

static inline vu vu_set1(uint32_t x) { return _mm512_set1_epi32((int)x); }
static inline vu vu_lanes(void)
{
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
static inline vu vu_add(vu a, vu b) { return _mm512_add_epi32(a, b); }
static inline vu vu_xor(vu a, vu b) { return _mm512_xor_si512(a, b); }
static inline vu vu_shr(vu a, unsigned n) { return _mm512_srli_epi32(a, n); }
static inline vu vu_mullo(vu a, uint32_t m) { return _mm512_mullo_epi32(a, vu_set1(m)); }
/* The high halves from the 64-bit products of the even lanes and of the odd
 * lanes shifted down. */
static inline vu vu_mulhi(vu a, uint32_t m)
{
    __m512i mv = vu_set1(m);
    __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(a, mv), 32);
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), mv);
    return _mm512_mask_mov_epi32(even, 0xaaaa, odd);
}
static inline vm vu_test(vu a, uint32_t bit) { return _mm512_test_epi32_mask(a, vu_set1(bit)); }
static inline vu vu_from_vf(vf a) { return _mm512_cvtps_epi32(a); }
static inline vf vf_from_u32(vu a) { return _mm512_cvtepu32_ps(a); }
static inline vf vf_from_u31(vu a) { return _mm512_cvtepi32_ps(a); }

/* out[4 l + j] = lane l of z[j]: unpacks give, in 128-bit lane L of v[j],
 * block 4 L + j's four values; then a 4 x 4 transpose of 128-bit lanes. */
static inline void vf_store4(float *out, const vf z[4])
{
    __m512 a0 = _mm512_unpacklo_ps(z[0], z[1]), a1 = _mm512_unpackhi_ps(z[0], z[1]);
    __m512 b0 = _mm512_unpacklo_ps(z[2], z[3]), b1 = _mm512_unpackhi_ps(z[2], z[3]);
    __m512 v0 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a0), _mm512_castps_pd(b0)));
    __m512 v1 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a0), _mm512_castps_pd(b0)));
    __m512 v2 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a1), _mm512_castps_pd(b1)));
    __m512 v3 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a1), _mm512_castps_pd(b1)));
    __m512 t0 = _mm512_shuffle_f32x4(v0, v1, 0x44), t1 = _mm512_shuffle_f32x4(v0, v1, 0xee);
    __m512 t2 = _mm512_shuffle_f32x4(v2, v3, 0x44), t3 = _mm512_shuffle_f32x4(v2, v3, 0xee);
    _mm512_storeu_ps(out, _mm512_shuffle_f32x4(t0, t2, 0x88));
    _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(t0, t2, 0xdd));
    _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(t1, t3, 0x88));
    _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(t1, t3, 0xdd));
}

/* The FMA peak loop's chains (bm_peak): two FMA pipes of latency 4 need 8;
 * 24 leave room. */
#define SG_VEC_FMA_CHAINS 24
static inline float vf_first(vf a) { return _mm512_cvtss_f32(a); }

#endif
