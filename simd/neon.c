/* neon.c: the aarch64 NEON (ASIMD) kernel table.
 *
 * NEON is baseline on aarch64, so this file needs no -m flags; src/cpu.c
 * still checks HWCAP_ASIMD. Starts from the reference table and overrides
 * every slot but bce_fwd (a log per element on 100-200 elements a step: the
 * reference's libm logs are kept there, and sigmoid_bce calls it for its
 * loss).
 *
 * Micro-tile 8 x 12: 24 q-register accumulators (8 rows x 3 vectors of 4),
 * 3 q registers of B and 2 of A per k step: 29 of the 32 vector registers.
 * FMAs take their A element by lane (fmla v.4s, v.4s, v.s[lane]), so A costs
 * two vector loads a step instead of eight broadcasts. 24 independent FMA
 * chains cover 4 FMA pipes of latency 4 (Neoverse V1/V2, Apple M-series).
 * Not timed on hardware yet: the geometry is BLIS's armv8a choice, and pads
 * the tutorial's GEMMs (M = 100/200/256/784, N = 64/256/784) by 3% of their
 * flops.
 *
 * NEON has no masked loads: partial vectors at the ends of rows go through a
 * 4-float buffer, so every element is computed by the same vector code
 * wherever it sits. exp, tanh and sigmoid use the method and constants of
 * avx512.c (results bitwise equal to it); the other kernels follow ref.c's
 * operations and roundings (FMA exactly where it has fmaf), so they are
 * bitwise equal to the reference. This file relies on the build's
 * -ffp-contract=off: arm_neon.h writes vmulq/vaddq as C operators. */
#include "simd.h"

#include <arm_neon.h>
#include <string.h>

enum { MR = 8, NR = 12 };

/* ---- partial vectors ------------------------------------------------------ */

/* Lanes [0, n) of p (n <= 4), the others 0. */
static inline float32x4_t load_n(const float *p, size_t n)
{
    if (n == 4) return vld1q_f32(p);
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(t, p, n * sizeof(float));
    return vld1q_f32(t);
}

static inline void store_n(float *p, float32x4_t v, size_t n)
{
    if (n == 4) {
        vst1q_f32(p, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, n * sizeof(float));
}

/* ---- vector math ---------------------------------------------------------- */

/* 2^k for integer k in [-126, 127], built in the exponent field. */
static inline float32x4_t pow2i(int32x4_t k)
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}

/* e^x, within 1 ulp of glibc's expf over the whole float range (denormal
 * results included). Cody-Waite: x = n ln2 + r with n = round(x log2 e) and
 * ln2 split in two (the high part has 9 significant bits, so n * hi is exact),
 * |r| <= ln2/2; e^r = 1 + r + r^2 P(r) with Cephes expf's degree-5 minimax P.
 * The scaling by 2^n is done as 2^(n/2) twice: the first product is exact and
 * the second rounds once, into denormals and to infinity as needed. x is
 * clamped to [-110, 110] (e^-110 rounds to 0 and e^110 to inf anyway) so that
 * |n| <= 159; fmax/fmin propagate NaN. */
static inline float32x4_t exp_ps(float32x4_t x)
{
    x = vmaxq_f32(vdupq_n_f32(-110.0f), x);
    x = vminq_f32(vdupq_n_f32(110.0f), x);
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(r, p, vmulq_f32(r, r));
    p = vaddq_f32(p, vdupq_n_f32(1.0f));
    int32x4_t ni = vcvtnq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1);
    int32x4_t n2 = vsubq_s32(ni, n1);
    return vmulq_f32(vmulq_f32(p, pow2i(n1)), pow2i(n2));
}

/* tanh, within 2 ulp of glibc's tanhf. Computed on |x| and given x's sign
 * (so tanh(-0) = -0). |x| < 0.625: x + x^3 Q(x^2) with Cephes tanhf's
 * degree-4 Q (no cancellation near 0, tiny x returns x); otherwise
 * 1 - 2 / (e^{2|x|} + 1), which saturates to exactly 1 where tanhf does
 * (2 / (e^{2|x|} + 1) < 2^-25 past |x| ~ 9.01; e^{2|x|} = inf gives 1). */
static inline float32x4_t tanh_ps(float32x4_t x)
{
    float32x4_t ax = vabsq_f32(x);
    float32x4_t z = vmulq_f32(ax, ax);
    float32x4_t q = vdupq_n_f32(-5.70498872745e-3f);
    q = vfmaq_f32(vdupq_n_f32(2.06390887954e-2f), q, z);
    q = vfmaq_f32(vdupq_n_f32(-5.37397155531e-2f), q, z);
    q = vfmaq_f32(vdupq_n_f32(1.33314422036e-1f), q, z);
    q = vfmaq_f32(vdupq_n_f32(-3.33332819422e-1f), q, z);
    float32x4_t small = vfmaq_f32(ax, vmulq_f32(q, z), ax);
    float32x4_t e = exp_ps(vaddq_f32(ax, ax));
    float32x4_t big =
        vsubq_f32(vdupq_n_f32(1.0f), vdivq_f32(vdupq_n_f32(2.0f), vaddq_f32(e, vdupq_n_f32(1.0f))));
    float32x4_t t = vbslq_f32(vcltq_f32(ax, vdupq_n_f32(0.625f)), small, big);
    return vbslq_f32(vdupq_n_u32(0x80000000u), x, t); /* x's sign bit, t's others */
}

/* The reference's formula 1 / (1 + e^-x) with exp_ps: within 2 ulp of it for
 * x >= -16.6 and 4 ulp below, where e^-x > 2^24 and 1 + e^-x is itself
 * rounded to an even integer. Saturates to exactly 0 (e^-x = inf) and exactly
 * 1 (e^-x < 2^-24) as the reference does. */
static inline float32x4_t sigmoid_ps(float32x4_t x)
{
    float32x4_t e = exp_ps(vnegq_f32(x));
    return vdivq_f32(vdupq_n_f32(1.0f), vaddq_f32(vdupq_n_f32(1.0f), e));
}

/* sg_act_fwd_scalar on 4 lanes (x > 0 compares false for NaN, as in C). */
static inline float32x4_t act_fwd_ps(float32x4_t x, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(0.0f)), x, vdupq_n_f32(0.0f));
    case SG_ACT_LRELU:
        return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(0.0f)), x,
                         vmulq_f32(x, vdupq_n_f32(SG_LRELU_SLOPE)));
    case SG_ACT_TANH: return tanh_ps(x);
    case SG_ACT_SIGMOID: return sigmoid_ps(x);
    case SG_ACT_NONE: break;
    }
    return x;
}

/* sg_act_bwd_scalar on 4 lanes: gradient g at activation output y, with the
 * reference's roundings: g fma(-y, y, 1) (ATen fuses 1 - y y); (g (1 - y)) y. */
static inline float32x4_t act_bwd_ps(float32x4_t g, float32x4_t y, sg_act act)
{
    const float32x4_t one = vdupq_n_f32(1.0f);
    switch (act) {
    case SG_ACT_RELU: return vbslq_f32(vcgtq_f32(y, vdupq_n_f32(0.0f)), g, vdupq_n_f32(0.0f));
    case SG_ACT_LRELU:
        return vbslq_f32(vcgtq_f32(y, vdupq_n_f32(0.0f)), g,
                         vmulq_f32(g, vdupq_n_f32(SG_LRELU_SLOPE)));
    case SG_ACT_TANH: return vmulq_f32(g, vfmsq_f32(one, y, y));
    case SG_ACT_SIGMOID: return vmulq_f32(vmulq_f32(g, vsubq_f32(one, y)), y);
    case SG_ACT_NONE: break;
    }
    return g;
}

/* ---- micro-kernel --------------------------------------------------------- */

/* The epilogue on a finished 8 x 12 tile of C: bias, forward activation,
 * backward activation against Y, as ref.c's epi_scalar does per element. The
 * fields are read once: stores to C could alias *epi as far as C knows. */
static void epilogue_8x12(float *c, size_t ldc, const sg_epi *epi)
{
    const float *bias = epi->bias, *y = epi->y;
    const sg_act act = epi->act, dact = epi->dact;
    const size_t ldy = epi->ldy;
    for (int i = 0; i < MR; i++)
        for (int h = 0; h < NR; h += 4) {
            float *ci = c + (size_t)i * ldc + h;
            float32x4_t v = vld1q_f32(ci);
            if (bias) v = vaddq_f32(v, vld1q_f32(bias + h));
            v = act_fwd_ps(v, act);
            if (dact != SG_ACT_NONE) v = act_bwd_ps(v, vld1q_f32(y + (size_t)i * ldy + h), dact);
            vst1q_f32(ci, v);
        }
}

/* Row i of the tile += B row (b0 b1 b2) times lane `lane` of A vector av. */
#define FMA_ROW(i, av, lane)                                                                       \
    do {                                                                                           \
        acc[i][0] = vfmaq_laneq_f32(acc[i][0], b0, av, lane);                                      \
        acc[i][1] = vfmaq_laneq_f32(acc[i][1], b1, av, lane);                                      \
        acc[i][2] = vfmaq_laneq_f32(acc[i][2], b2, av, lane);                                      \
    } while (0)

/* C[8, 12] (+)= A[8, K] B[K, 12], then the epilogue. Register use in the
 * K loop: acc[i][0..2] (24 q registers) hold row i's three 4-column pieces;
 * b0..b2 (3) are the k step's B row and a0, a1 (2) its A column (rows 0-3,
 * 4-7), all five loaded first; each FMA takes its A element by lane. The
 * loop is unrolled by 2 so that the next step's loads issue under this
 * step's 24 FMAs; the C tile is prefetched at entry. */
static void sgemm_ukr_neon_8x12(size_t K, const float *a, const float *b, float *c, size_t ldc,
                                int accumulate, const sg_epi *epi)
{
    for (int i = 0; i < MR; i++) {
        __builtin_prefetch(c + (size_t)i * ldc, 1);
        __builtin_prefetch(c + (size_t)i * ldc + NR - 1, 1);
    }

    float32x4_t acc[MR][3];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);

    size_t p = 0;
    for (; p + 2 <= K; p += 2) {
        for (int u = 0; u < 2; u++) {
            float32x4_t b0 = vld1q_f32(b + u * NR), b1 = vld1q_f32(b + u * NR + 4),
                        b2 = vld1q_f32(b + u * NR + 8);
            float32x4_t a0 = vld1q_f32(a + u * MR), a1 = vld1q_f32(a + u * MR + 4);
            FMA_ROW(0, a0, 0);
            FMA_ROW(1, a0, 1);
            FMA_ROW(2, a0, 2);
            FMA_ROW(3, a0, 3);
            FMA_ROW(4, a1, 0);
            FMA_ROW(5, a1, 1);
            FMA_ROW(6, a1, 2);
            FMA_ROW(7, a1, 3);
        }
        a += 2 * MR;
        b += 2 * NR;
    }
    if (p < K) {
        float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
        float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
        FMA_ROW(0, a0, 0);
        FMA_ROW(1, a0, 1);
        FMA_ROW(2, a0, 2);
        FMA_ROW(3, a0, 3);
        FMA_ROW(4, a1, 0);
        FMA_ROW(5, a1, 1);
        FMA_ROW(6, a1, 2);
        FMA_ROW(7, a1, 3);
    }

    /* The finished sums (C + acc when accumulating) go to C straight from
     * the accumulators; an epilogue then rereads the tile from L1, so that
     * its activation math does not compete with 24 live accumulators for
     * registers. */
    for (int i = 0; i < MR; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < 3; j++) {
            float32x4_t v = acc[i][j];
            if (accumulate) v = vaddq_f32(vld1q_f32(ci + 4 * j), v);
            vst1q_f32(ci + 4 * j, v);
        }
    }
    if (epi) epilogue_8x12(c, ldc, epi);
}

/* ---- packing -------------------------------------------------------------- */

/* rs == 1: for each k step a panel's w elements are contiguous in src: copy
 * the rows that exist, zero the rest. */
static void pack_rows_contiguous(float *dst, const float *src, size_t cs, size_t m, size_t k,
                                 size_t w)
{
    for (size_t i0 = 0; i0 < m; i0 += w) {
        size_t rows = m - i0 < w ? m - i0 : w;
        for (size_t p = 0; p < k; p++) {
            float *d = dst + p * w;
            memcpy(d, src + i0 + p * cs, rows * sizeof(float));
            memset(d + rows, 0, (w - rows) * sizeof(float));
        }
        dst += k * w;
    }
}

/* In-register transpose of 4 rows of 4: r[i] lane j becomes r[j] lane i. */
static inline void transpose4(float32x4_t r[4])
{
    float32x4_t t0 = vtrn1q_f32(r[0], r[1]), t1 = vtrn2q_f32(r[0], r[1]); /* (0,1) interleaved */
    float32x4_t t2 = vtrn1q_f32(r[2], r[3]), t3 = vtrn2q_f32(r[2], r[3]); /* (2,3) interleaved */
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* cs == 1: each of the panel's rows is contiguous along k, so blocks of 4
 * rows x 4 k steps are loaded (partial at the edges, zeros past m) and
 * transposed in registers, then stored as 4 k steps of the panel. */
static void pack_rows_transposed(float *dst, const float *src, size_t rs, size_t m, size_t k,
                                 size_t w)
{
    for (size_t i0 = 0; i0 < m; i0 += w) {
        size_t rows = m - i0 < w ? m - i0 : w;
        for (size_t g = 0; g < w; g += 4) {
            size_t width = w - g < 4 ? w - g : 4;
            size_t valid = rows > g ? (rows - g < width ? rows - g : width) : 0;
            for (size_t p0 = 0; p0 < k; p0 += 4) {
                size_t steps = k - p0 < 4 ? k - p0 : 4;
                float32x4_t r[4];
                for (size_t i = 0; i < 4; i++)
                    r[i] =
                        i < valid ? load_n(src + (i0 + g + i) * rs + p0, steps) : vdupq_n_f32(0.0f);
                transpose4(r);
                for (size_t q = 0; q < steps; q++) store_n(dst + (p0 + q) * w + g, r[q], width);
            }
        }
        dst += k * w;
    }
}

static void pack_neon(float *dst, const float *src, size_t rs, size_t cs, size_t m, size_t k, int w)
{
    if (rs == 1)
        pack_rows_contiguous(dst, src, cs, m, k, (size_t)w);
    else if (cs == 1)
        pack_rows_transposed(dst, src, rs, m, k, (size_t)w);
    else
        sg_pack_ref(dst, src, rs, cs, m, k, w);
}

/* ---- normals for z ----------------------------------------------------------- */

/* The generator of ref.c (sg_philox, log_cephes, sincos_turns) on 4
 * counters, with the same operations in the same order, so z is the same
 * bit for bit; avx512.c has the 16-lane version with comments. */
static inline uint32x4_t mulhi32(uint32x4_t a, uint32_t m)
{
    uint64x2_t lo = vmull_n_u32(vget_low_u32(a), m), hi = vmull_high_n_u32(a, m);
    return vuzp2q_u32(vreinterpretq_u32_u64(lo), vreinterpretq_u32_u64(hi));
}

static void philox4(uint32x4_t c[4], uint64_t key)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32x4_t hi0 = mulhi32(c[0], 0xD2511F53u), lo0 = vmulq_n_u32(c[0], 0xD2511F53u);
        uint32x4_t hi1 = mulhi32(c[2], 0xCD9E8D57u), lo1 = vmulq_n_u32(c[2], 0xCD9E8D57u);
        c[0] = veorq_u32(veorq_u32(hi1, c[1]), vdupq_n_u32(k0));
        c[1] = lo1;
        c[2] = veorq_u32(veorq_u32(hi0, c[3]), vdupq_n_u32(k1));
        c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* ln x for normal positive x: exponent and mantissa in [1, 2) from the bits
 * (frexpf's, exactly), then ref.c's log_cephes. vfmaq_f32(c, a, b) is the
 * fused c + a b, vfmsq_f32(c, a, b) the fused c - a b. */
static inline float32x4_t log_ps(float32x4_t x)
{
    uint32x4_t bits = vreinterpretq_u32_f32(x);
    float32x4_t e = vcvtq_f32_s32(vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(bits, 23)), vdupq_n_s32(127)));
    float32x4_t m = vreinterpretq_f32_u32(
        vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x7fffff)), vdupq_n_u32(0x3f800000)));
    uint32x4_t big = vcgtq_f32(m, vdupq_n_f32(1.41421356237f));
    m = vbslq_f32(big, vmulq_n_f32(m, 0.5f), m);
    e = vbslq_f32(big, vaddq_f32(e, vdupq_n_f32(1.0f)), e);
    float32x4_t f = vsubq_f32(m, vdupq_n_f32(1.0f)), z = vmulq_f32(f, f);
    float32x4_t p = vdupq_n_f32(7.0376836292e-2f);
    p = vfmaq_f32(vdupq_n_f32(-1.1514610310e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(1.1676998740e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(-1.2420140846e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(1.4249322787e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(-1.6668057665e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(2.0000714765e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(-2.4999993993e-1f), p, f);
    p = vfmaq_f32(vdupq_n_f32(3.3333331174e-1f), p, f);
    float32x4_t y = vmulq_f32(vmulq_f32(p, f), z);
    y = vfmaq_f32(y, e, vdupq_n_f32(-2.12194440e-4f));
    y = vfmsq_f32(y, vdupq_n_f32(0.5f), z);
    return vfmaq_f32(vaddq_f32(f, y), e, vdupq_n_f32(0.693359375f));
}

/* sin and cos of 2 pi u, u in [0, 1) a multiple of 2^-24: ref.c's sincos_turns. */
static inline void sincos_turns_ps(float32x4_t u, float32x4_t *s, float32x4_t *c)
{
    float32x4_t q = vrndnq_f32(vmulq_n_f32(u, 4.0f));
    float32x4_t f = vfmsq_f32(u, q, vdupq_n_f32(0.25f));
    float32x4_t r = vfmaq_f32(vmulq_n_f32(f, -1.7484555314e-7f), f, vdupq_n_f32(6.28318548202514648f));
    float32x4_t z = vmulq_f32(r, r);
    float32x4_t sp = vfmaq_f32(vdupq_n_f32(8.3321608736e-3f), vdupq_n_f32(-1.9515295891e-4f), z);
    sp = vfmaq_f32(vdupq_n_f32(-1.6666654611e-1f), sp, z);
    float32x4_t sr = vfmaq_f32(r, vmulq_f32(sp, z), r);
    float32x4_t cp = vfmaq_f32(vdupq_n_f32(-1.388731625493765e-3f), vdupq_n_f32(2.443315711809948e-5f), z);
    cp = vfmaq_f32(vdupq_n_f32(4.166664568298827e-2f), cp, z);
    float32x4_t cr = vfmaq_f32(vfmsq_f32(vdupq_n_f32(1.0f), vdupq_n_f32(0.5f), z), vmulq_f32(cp, z), z);
    /* Quarter turns q mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s). */
    int32x4_t qi = vcvtq_s32_f32(q);
    uint32x4_t odd = vtstq_s32(qi, vdupq_n_s32(1));
    uint32x4_t sneg = vtstq_s32(qi, vdupq_n_s32(2));
    uint32x4_t cneg = vtstq_s32(vaddq_s32(qi, vdupq_n_s32(1)), vdupq_n_s32(2));
    float32x4_t sv = vbslq_f32(odd, cr, sr), cv = vbslq_f32(odd, sr, cr);
    *s = vbslq_f32(sneg, vnegq_f32(sv), sv);
    *c = vbslq_f32(cneg, vnegq_f32(cv), cv);
}

/* 16 normals, elements 16 g .. 16 g + 15 (blocks 4 g .. 4 g + 3). */
static void normal16(float out[16], size_t g, uint64_t seed, uint32_t stream, uint32_t c2,
                     uint32_t c1)
{
    static const uint32_t lane[4] = {0, 1, 2, 3};
    uint32x4_t c[4] = {vaddq_u32(vdupq_n_u32((uint32_t)(4 * g)), vld1q_u32(lane)), vdupq_n_u32(c1),
                       vdupq_n_u32(c2), vdupq_n_u32(stream)};
    philox4(c, seed);
    float32x4x4_t z;
    for (int h = 0; h < 2; h++) {
        float32x4_t u1 = vmulq_n_f32(vaddq_f32(vcvtq_f32_u32(c[2 * h]), vdupq_n_f32(1.0f)), 0x1p-32f);
        float32x4_t u2 = vmulq_n_f32(vcvtq_f32_u32(vshrq_n_u32(c[2 * h + 1], 8)), 0x1p-24f);
        float32x4_t rad = vsqrtq_f32(vmulq_n_f32(log_ps(u1), -2.0f)), sn, cs;
        sincos_turns_ps(u2, &sn, &cs);
        z.val[2 * h] = vmulq_f32(rad, cs);
        z.val[2 * h + 1] = vmulq_f32(rad, sn);
    }
    vst4q_f32(out, z); /* out[4 b + j] = lane b of z[j]: block b's four outputs */
}

/* z[i0, i1) by groups of 16 (sg_normal_groups, ref.c). */
static void normal_neon(float *z, size_t i0, size_t i1, uint64_t seed, uint32_t stream,
                        uint32_t c2, uint32_t c1)
{
    sg_normal_groups(z, i0, i1, 16, normal16, seed, stream, c2, c1);
}

/* ---- elementwise kernels -------------------------------------------------- */

static void bias_act_fwd_neon(float *y, size_t ldy, const float *bias, size_t i0, size_t i1,
                              size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++) {
        float *yi = y + i * ldy;
        for (size_t j = 0; j < N; j += 4) {
            size_t n = N - j < 4 ? N - j : 4;
            float32x4_t v = load_n(yi + j, n);
            if (bias) v = vaddq_f32(v, load_n(bias + j, n));
            store_n(yi + j, act_fwd_ps(v, act), n);
        }
    }
}

static void act_bwd_neon(float *dx, size_t lddx, const float *dy, size_t lddy, const float *y,
                         size_t ldy, size_t i0, size_t i1, size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++)
        for (size_t j = 0; j < N; j += 4) {
            size_t n = N - j < 4 ? N - j : 4;
            float32x4_t g =
                act_bwd_ps(load_n(dy + i * lddy + j, n), load_n(y + i * ldy + j, n), act);
            store_n(dx + i * lddx + j, g, n);
        }
}

/* Four vectors of columns at a time, each summed over the rows in order
 * (0 + dz[0] + dz[1] + ..., the reference's order), so the result is
 * bitwise the reference's. */
static void colsum_neon(float *db, const float *dz, size_t ldz, size_t M, size_t j0, size_t j1)
{
    size_t j = j0;
    for (; j + 16 <= j1; j += 16) {
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < M; i++) {
            const float *row = dz + i * ldz + j;
            s0 = vaddq_f32(s0, vld1q_f32(row));
            s1 = vaddq_f32(s1, vld1q_f32(row + 4));
            s2 = vaddq_f32(s2, vld1q_f32(row + 8));
            s3 = vaddq_f32(s3, vld1q_f32(row + 12));
        }
        vst1q_f32(db + j, s0);
        vst1q_f32(db + j + 4, s1);
        vst1q_f32(db + j + 8, s2);
        vst1q_f32(db + j + 12, s3);
    }
    for (; j < j1; j += 4) {
        size_t n = j1 - j < 4 ? j1 - j : 4;
        float32x4_t s = vdupq_n_f32(0.0f);
        for (size_t i = 0; i < M; i++) s = vaddq_f32(s, load_n(dz + i * ldz + j, n));
        store_n(db + j, s, n);
    }
}

/* (y - t) / max((1 - y) y, 1e-12) / count, the reference's bce_grad_elem.
 * fmaxnm, like fmaxf, returns 1e-12 when the product is NaN. */
static inline float32x4_t bce_grad_ps(float32x4_t y, float32x4_t t, float32x4_t count)
{
    float32x4_t w = vmulq_f32(vsubq_f32(vdupq_n_f32(1.0f), y), y);
    w = vmaxnmq_f32(w, vdupq_n_f32(1e-12f));
    return vdivq_f32(vdivq_f32(vsubq_f32(y, t), w), count);
}

static void bce_bwd_neon(float *dy, const float *y, const float *t, float count, size_t i0,
                         size_t i1)
{
    const float32x4_t cnt = vdupq_n_f32(count);
    for (size_t i = i0; i < i1; i += 4) {
        size_t n = i1 - i < 4 ? i1 - i : 4;
        store_n(dy + i, bce_grad_ps(load_n(y + i, n), load_n(t + i, n), cnt), n);
    }
}

/* y by sigmoid_ps, dz from y with the reference's operations (so dz is 0
 * exactly where y is 0 or 1), the loss by the reference's libm logs. */
static void sigmoid_bce_neon(float *y, float *loss, float *dz, const float *z, const float *t,
                             float count, size_t i0, size_t i1)
{
    const float32x4_t cnt = vdupq_n_f32(count);
    for (size_t i = i0; i < i1; i += 4) {
        size_t n = i1 - i < 4 ? i1 - i : 4;
        float32x4_t s = sigmoid_ps(load_n(z + i, n));
        float32x4_t g = bce_grad_ps(s, load_n(t + i, n), cnt);
        store_n(y + i, s, n);
        store_n(dz + i, act_bwd_ps(g, s, SG_ACT_SIGMOID), n);
    }
    sg_bce_fwd_ref(loss, y, t, i0, i1);
}

/* One pass over p, m, v, g with the reference's roundings: ATen's fused
 * m = fma(c1, g, m b1) and v = fma(c2 g, g, v b2), the rest op by op (no
 * other contraction): bitwise the reference. */
static void adam_neon(float *p, float *m, float *v, const float *g, size_t i0, size_t i1,
                      const sg_adam_coef *h)
{
    const float32x4_t b1 = vdupq_n_f32(h->b1), c1 = vdupq_n_f32(h->c1);
    const float32x4_t b2 = vdupq_n_f32(h->b2), c2 = vdupq_n_f32(h->c2);
    const float32x4_t bc2 = vdupq_n_f32(h->bc2_sqrt), eps = vdupq_n_f32(h->eps);
    const float32x4_t neg_step = vdupq_n_f32(-h->step_size);
    for (size_t i = i0; i < i1; i += 4) {
        size_t n = i1 - i < 4 ? i1 - i : 4;
        float32x4_t gi = load_n(g + i, n);
        float32x4_t mi = vfmaq_f32(vmulq_f32(load_n(m + i, n), b1), c1, gi);
        float32x4_t vi = vfmaq_f32(vmulq_f32(load_n(v + i, n), b2), vmulq_f32(c2, gi), gi);
        float32x4_t denom = vaddq_f32(vdivq_f32(vsqrtq_f32(vi), bc2), eps);
        float32x4_t pi = vaddq_f32(load_n(p + i, n), vdivq_f32(vmulq_f32(neg_step, mi), denom));
        store_n(m + i, mi, n);
        store_n(v + i, vi, n);
        store_n(p + i, pi, n);
    }
}

/* The peak: 24 independent FMA chains on float32x4_t registers (four FMA pipes of latency 4 need 16). */
static double fma_peak_neon(size_t iters)
{
    float32x4_t a[24];
    const float32x4_t x = vdupq_n_f32(0.999999f), y = vdupq_n_f32(1e-7f);
    for (int c = 0; c < 24; c++) a[c] = vdupq_n_f32((float)c);
    for (size_t n = 0; n < iters; n++)
#pragma GCC unroll 32
        for (int c = 0; c < 24; c++) a[c] = vfmaq_f32(y, a[c], x);
    float32x4_t s = a[0];
    for (int c = 1; c < 24; c++) s = vaddq_f32(s, a[c]);
    volatile float sink = vgetq_lane_f32(s, 0);
    (void)sink;
    return 192.0 * (double)iters;
}

const sg_kernels sg_kernels_neon = {
    SG_KERNELS_REF_SLOTS,
    .isa = "neon",
    .ukr_name = "sgemm_ukr_neon_8x12",
    .mr = MR,
    .nr = NR,
    .vec_floats = 4,
    .sgemm_ukr = sgemm_ukr_neon_8x12,
    .pack = pack_neon,
    .bias_act_fwd = bias_act_fwd_neon,
    .act_bwd = act_bwd_neon,
    .colsum = colsum_neon,
    .sigmoid_bce = sigmoid_bce_neon,
    .bce_bwd = bce_bwd_neon,
    .adam = adam_neon,
    .normal = normal_neon,
    .fma_peak = fma_peak_neon,
};
