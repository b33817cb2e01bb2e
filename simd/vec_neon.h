/* vec_neon.h: the vector shim for simd/neon.c: vec_kernels.h's operations
 * on 4-lane q registers (vec_scalar.h lists and defines each operation; this
 * file gives only what differs).
 *
 * Included by neon.c alone (aarch64, where NEON is baseline). NEON has no
 * masked loads: partial vectors go through a 4-float buffer. Relies on the
 * build's -ffp-contract=off: arm_neon.h writes vmulq/vaddq as C operators.
 * Every operation is one exactly specified IEEE or integer operation, so
 * the kernels written on it give the bits of every other ISA's shim. */
#ifndef SIMDGAN_VEC_NEON_H
#define SIMDGAN_VEC_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { SG_VL = 4 };
typedef float32x4_t vf;
typedef uint32x4_t vu;
typedef uint32x4_t vm;

static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vf_load_part(const float *p, size_t n)
{
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(t, p, n * sizeof(float));
    return vld1q_f32(t);
}
static inline void vf_store_part(float *p, vf v, size_t n)
{
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, n * sizeof(float));
}

static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_sqrt(vf a) { return vsqrtq_f32(a); }
/* vfmaq_f32(c, a, b) is the fused c + a b, vfmsq_f32(c, a, b) c - a b. */
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
static inline vf vf_neg(vf a) { return vnegq_f32(a); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_copysign(vf mag, vf sgn)
{
    return vbslq_f32(vdupq_n_u32(0x80000000u), sgn, mag);
}
static inline vf vf_round(vf a) { return vrndnq_f32(a); }
/* fmax/fmin propagate a NaN x. */
static inline vf vf_clamp(vf x, float lo, float hi)
{
    return vminq_f32(vdupq_n_f32(hi), vmaxq_f32(vdupq_n_f32(lo), x));
}
/* fmaxnm, like fmaxf, gives c for a NaN a. */
static inline vf vf_max_num(vf a, float c) { return vmaxnmq_f32(a, vdupq_n_f32(c)); }

static inline vm vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vm vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline vf vf_sel(vm m, vf a, vf b) { return vbslq_f32(m, a, b); }
static inline vf vf_keep(vm m, vf a)
{
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(a), m));
}

/* 2^k for integer k in [-126, 127], built in the exponent field. */
static inline float32x4_t pow2i(int32x4_t k)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}
/* p 2^n as 2^(n/2) twice (|n| <= 159 from exp's clamp): the first product
 * is exact and the second rounds once, as AVX-512's scalef does. */
static inline vf vf_scale2(vf p, vf n)
{
    int32x4_t ni = vcvtnq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1);
    return vmulq_f32(vmulq_f32(p, pow2i(n1)), pow2i(vsubq_s32(ni, n1)));
}
/* From the bits: frexpf's exponent and mantissa (times 2), exactly. */
static inline vf vf_frexp(vf x, vf *e)
{
    uint32x4_t bits = vreinterpretq_u32_f32(x);
    *e = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(bits, 23)), vdupq_n_s32(127)));
    return vreinterpretq_f32_u32(
        vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x7fffff)), vdupq_n_u32(0x3f800000)));
}

static inline vu vu_set1(uint32_t x) { return vdupq_n_u32(x); }
static inline vu vu_lanes(void)
{
    static const uint32_t lane[4] = {0, 1, 2, 3};
    return vld1q_u32(lane);
}
static inline vu vu_add(vu a, vu b) { return vaddq_u32(a, b); }
static inline vu vu_xor(vu a, vu b) { return veorq_u32(a, b); }
/* A shift by a negative count shifts right (no immediate needed). */
static inline vu vu_shr(vu a, unsigned n) { return vshlq_u32(a, vdupq_n_s32(-(int32_t)n)); }
static inline vu vu_mullo(vu a, uint32_t m) { return vmulq_n_u32(a, m); }
/* The high halves of the lanes' 64-bit products. */
static inline vu vu_mulhi(vu a, uint32_t m)
{
    uint64x2_t lo = vmull_n_u32(vget_low_u32(a), m), hi = vmull_high_n_u32(a, m);
    return vuzp2q_u32(vreinterpretq_u32_u64(lo), vreinterpretq_u32_u64(hi));
}
static inline vm vu_test(vu a, uint32_t bit) { return vtstq_u32(a, vdupq_n_u32(bit)); }
static inline vu vu_from_vf(vf a) { return vreinterpretq_u32_s32(vcvtq_s32_f32(a)); }
static inline vf vf_from_u32(vu a) { return vcvtq_f32_u32(a); }
static inline vf vf_from_u31(vu a) { return vcvtq_f32_u32(a); }

/* out[4 l + j] = lane l of z[j]: one interleaving store. */
static inline void vf_store4(float *out, const vf z[4])
{
    float32x4x4_t t = {{z[0], z[1], z[2], z[3]}};
    vst4q_f32(out, t);
}

/* The FMA peak loop's chains (bm_peak): four FMA pipes of latency 4 need 16. */
#define SG_VEC_FMA_CHAINS 24
static inline float vf_first(vf a) { return vgetq_lane_f32(a, 0); }

#endif
