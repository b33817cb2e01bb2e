/* vec_scalar.h: the vector shim on one lane, for simd/ref.c, and the list
 * of the shim's operations with their meaning.
 *
 * vec_kernels.h writes the simple vector loops (elementwise kernels, the
 * micro-kernels' epilogue, the normal generator's math) once, on this small
 * set of operations; each ISA file includes its shim (vec_avx2.h,
 * vec_avx512.h, vec_neon.h, or this one), then vec_kernels.h. Every
 * operation is one exactly specified IEEE or integer operation, so every
 * ISA, this scalar one included, computes every element with the same
 * operations and gets the same bits: bitwise equality across the tables
 * holds by construction, tails included. The shims add no rounding of their
 * own (no contraction: the build has -ffp-contract=off; fused multiply-adds
 * only where the kernels ask for vf_fma or vf_fnma).
 *
 *   SG_VL             floats in a vector (lanes)
 *   vf, vu, vm        vector of floats, of uint32, a lane mask
 *   vf_load/store     SG_VL floats, unaligned
 *   vf_load_part      lanes [0, n), 0 < n < SG_VL, the others 0; reads and
 *   vf_store_part     writes nothing outside [0, n)
 *   vf_set1           every lane x
 *   vf_add sub mul div sqrt    correctly rounded, lane by lane
 *   vf_fma(a, b, c)   a b + c rounded once; vf_fnma(a, b, c): c - a b once
 *   vf_neg, vf_abs, vf_copysign(mag, sgn)   sign bit operations only
 *   vf_round          to the nearest integer, ties to even
 *   vf_clamp(x, lo, hi)   min(max(x, lo), hi); a NaN x passes through
 *   vf_max_num(a, c)  fmaxf(a, c) for a non-NaN c: NaN a gives c
 *   vf_gt, vf_lt      ordered compares (false for NaN) into a mask
 *   vf_sel(m, a, b)   a where m, else b; vf_keep(m, a): a where m, else +0
 *   vf_scale2(p, n)   p 2^n, n integral, |n| <= 159, rounded once
 *   vf_frexp(x, &e)   x = m 2^e, m in [1, 2), for normal positive x
 *   vu_set1, vu_lanes (lane l holds l), vu_add, vu_xor, vu_shr (logical),
 *   vu_mullo, vu_mulhi (low and high 32 bits of the 64-bit product)
 *   vu_test(a, bit)   mask of lanes where a has the (single) bit set
 *   vu_from_vf        integral floats in [0, 2^31) to integers
 *   vf_from_u32       uint32 to float rounded once, as a C conversion
 *   vf_from_u31       the same for lanes below 2^31 (cheaper on AVX2)
 *   vf_store4(out, z) out[4 l + j] = lane l of z[j], j < 4 (normals)
 * The vector shims also define SG_VEC_FMA_CHAINS and vf_first (lane 0) for
 * their FMA peak loop; ref.c measures its own peak. */
#ifndef SIMDGAN_VEC_SCALAR_H
#define SIMDGAN_VEC_SCALAR_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { SG_VL = 1 };
typedef float vf;
typedef uint32_t vu;
typedef int vm;

static inline vf vf_load(const float *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
/* Never called with one lane (0 < n < 1), but the kernels name them. */
static inline vf vf_load_part(const float *p, size_t n) { return n ? *p : 0.0f; }
static inline void vf_store_part(float *p, vf v, size_t n)
{
    if (n) *p = v;
}

static inline vf vf_set1(float x) { return x; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vf vf_div(vf a, vf b) { return a / b; }
static inline vf vf_sqrt(vf a) { return sqrtf(a); }
static inline vf vf_fma(vf a, vf b, vf c) { return fmaf(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return fmaf(-a, b, c); }
static inline vf vf_neg(vf a) { return -a; }
static inline vf vf_abs(vf a) { return fabsf(a); }
static inline vf vf_copysign(vf mag, vf sgn) { return copysignf(mag, sgn); }
static inline vf vf_round(vf a) { return nearbyintf(a); }
/* As x86's max and min: the compare is false for a NaN x, which passes. */
static inline vf vf_clamp(vf x, float lo, float hi)
{
    x = lo > x ? lo : x;
    return hi < x ? hi : x;
}
static inline vf vf_max_num(vf a, float c) { return fmaxf(a, c); }

static inline vm vf_gt(vf a, vf b) { return a > b; }
static inline vm vf_lt(vf a, vf b) { return a < b; }
/* Selects by bit operations: written as m ? a : b, GCC branches, and a
 * compare's outcome on activations is as good as random. */
static inline vf vf_sel(vm m, vf a, vf b)
{
    uint32_t ua, ub, k = 0u - (uint32_t)m;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    ua = (ua & k) | (ub & ~k);
    memcpy(&a, &ua, sizeof a);
    return a;
}
static inline vf vf_keep(vm m, vf a) { return vf_sel(m, a, 0.0f); }

/* 2^k for integer k in [-126, 127], built in the exponent field. */
static inline float pow2i(int32_t k)
{
    uint32_t b = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
/* p 2^n as 2^(n/2) twice: the first product is exact and the second rounds
 * once. */
static inline vf vf_scale2(vf p, vf n)
{
    int32_t ni = (int32_t)n, n1 = ni / 2;
    return p * pow2i(n1) * pow2i(ni - n1);
}
static inline vf vf_frexp(vf x, vf *e)
{
    int e2;
    float m = frexpf(x, &e2); /* in [1/2, 1) */
    *e = (float)(e2 - 1);
    return 2.0f * m;
}

static inline vu vu_set1(uint32_t x) { return x; }
static inline vu vu_lanes(void) { return 0; }
static inline vu vu_add(vu a, vu b) { return a + b; }
static inline vu vu_xor(vu a, vu b) { return a ^ b; }
static inline vu vu_shr(vu a, unsigned n) { return a >> n; }
static inline vu vu_mullo(vu a, uint32_t m) { return a * m; }
static inline vu vu_mulhi(vu a, uint32_t m) { return (uint32_t)(((uint64_t)a * m) >> 32); }
static inline vm vu_test(vu a, uint32_t bit) { return (a & bit) != 0; }
static inline vu vu_from_vf(vf a) { return (uint32_t)a; }
static inline vf vf_from_u32(vu a) { return (float)a; }
static inline vf vf_from_u31(vu a) { return (float)a; }

static inline void vf_store4(float *out, const vf z[4]) { memcpy(out, z, 4 * sizeof(float)); }

#endif
