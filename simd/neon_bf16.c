/* neon_bf16.c: the bf16 path on Arm BF16 (FEAT_BF16, HWCAP2_BF16): BFMMLA,
 * which multiplies a 2 x 4 bf16 matrix by a 4 x 2 one into a 2 x 2 fp32
 * accumulator (8 multiply-adds per 128-bit register).
 *
 * An 8 x 8 micro-tile: 16 accumulators v[r][q] (rows 2r, 2r+1; columns 2q,
 * 2q+1, held as [c(2r,2q) c(2r,2q+1) c(2r+1,2q) c(2r+1,2q+1)]), 4 registers
 * of A and 4 of B per K step of 4: 24 of the 32 vector registers, 16 BFMMLA
 * for 8 loads.
 *
 * Layouts (bf16, zero-padded; Kp a multiple of 4): A panel [Kp / 4][4 row
 * pairs][2 rows][4 k] and B panel [Kp / 4][4 column pairs][2 columns][4 k],
 * so each K step's operand registers are 8 consecutive bf16 (a row pair's,
 * or a column pair's, 4 k values), as BFMMLA reads them.
 *
 * Rounding (Arm ARM, FEAT_BF16 without FEAT_EBF16): the bf16 products are
 * exact, but BFMMLA's (and BFDOT's) sums ignore FPCR: each addition rounds
 * to odd, denormal inputs and results are flushed to zero. Round-to-odd errs
 * by less than one ulp (2^-23 relative) where IEEE's nearest errs by half,
 * so a K-term sum is within (K + 2) 2^-23 sum |a_p b_p| of the exact one:
 * the bound tests/test_bf16.c checks every path against.
 *
 * Built with -march=armv8.6-a+bf16 as its own object; chosen only where
 * HWCAP2_BF16 says the CPU has it (src/cpu.c). */
#include <arm_neon.h>
#include <stdint.h>

#include "bf16.h"

/* Element (i, p) of the operand is src[i rs + p cs] (for B, i is the
 * column); w is 8. */
static void pack_bfmmla(void *dst, const float *src, size_t rs, size_t cs, size_t m, size_t K,
                        int w, const sg_kernels *fk)
{
    (void)w, (void)fk;
    uint16_t *d = dst;
    const size_t Kp = (K + 3) / 4 * 4;
    memset(d, 0, Kp * 8 * sizeof *d);
#define SG_BFM(i, p) d[(p) / 4 * 32 + (i) / 2 * 8 + (i) % 2 * 4 + (p) % 4]
    if (cs == 1) {
        for (size_t i = 0; i < m; i++)
            for (size_t p = 0; p < K; p++) SG_BFM(i, p) = sg_bf16_round(src[i * rs + p]);
    } else {
        for (size_t p = 0; p < K; p++)
            for (size_t i = 0; i < m; i++) SG_BFM(i, p) = sg_bf16_round(src[i * rs + p * cs]);
    }
#undef SG_BFM
}

static void ukr_bfmmla(size_t Kp, const void *a_, const void *b_, float *c, size_t ldc,
                       int accumulate, size_t mr, const sg_kernels *fk)
{
    (void)mr, (void)fk;
    const bfloat16_t *a = a_, *b = b_;
    float32x4_t v[4][4];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            v[r][q] = accumulate ? vcombine_f32(vld1_f32(c + (size_t)(2 * r) * ldc + 2 * q),
                                                vld1_f32(c + (size_t)(2 * r + 1) * ldc + 2 * q))
                                 : vdupq_n_f32(0.0f);
    for (size_t k = 0; k < Kp; k += 4, a += 32, b += 32) {
        const bfloat16x8_t a0 = vld1q_bf16(a), a1 = vld1q_bf16(a + 8), a2 = vld1q_bf16(a + 16),
                           a3 = vld1q_bf16(a + 24);
        const bfloat16x8_t b0 = vld1q_bf16(b), b1 = vld1q_bf16(b + 8), b2 = vld1q_bf16(b + 16),
                           b3 = vld1q_bf16(b + 24);
        v[0][0] = vbfmmlaq_f32(v[0][0], a0, b0), v[0][1] = vbfmmlaq_f32(v[0][1], a0, b1);
        v[0][2] = vbfmmlaq_f32(v[0][2], a0, b2), v[0][3] = vbfmmlaq_f32(v[0][3], a0, b3);
        v[1][0] = vbfmmlaq_f32(v[1][0], a1, b0), v[1][1] = vbfmmlaq_f32(v[1][1], a1, b1);
        v[1][2] = vbfmmlaq_f32(v[1][2], a1, b2), v[1][3] = vbfmmlaq_f32(v[1][3], a1, b3);
        v[2][0] = vbfmmlaq_f32(v[2][0], a2, b0), v[2][1] = vbfmmlaq_f32(v[2][1], a2, b1);
        v[2][2] = vbfmmlaq_f32(v[2][2], a2, b2), v[2][3] = vbfmmlaq_f32(v[2][3], a2, b3);
        v[3][0] = vbfmmlaq_f32(v[3][0], a3, b0), v[3][1] = vbfmmlaq_f32(v[3][1], a3, b1);
        v[3][2] = vbfmmlaq_f32(v[3][2], a3, b2), v[3][3] = vbfmmlaq_f32(v[3][3], a3, b3);
    }
    /* Row 2r is the low halves of v[r][0..3], row 2r + 1 the high halves. */
    for (int r = 0; r < 4; r++) {
        float *c0 = c + (size_t)(2 * r) * ldc, *c1 = c0 + ldc;
        for (int q = 0; q < 4; q += 2) {
            const float64x2_t x = vreinterpretq_f64_f32(v[r][q]),
                              y = vreinterpretq_f64_f32(v[r][q + 1]);
            vst1q_f32(c0 + 2 * q, vreinterpretq_f32_f64(vzip1q_f64(x, y)));
            vst1q_f32(c1 + 2 * q, vreinterpretq_f32_f64(vzip2q_f64(x, y)));
        }
    }
}

/* BFMMLA's peak: 16 independent accumulators, operands in registers. */
static double peak_bfmmla(size_t iters)
{
    float32x4_t v[16];
    for (int i = 0; i < 16; i++) v[i] = vdupq_n_f32(0.0f);
    /* Zeros: the unit's speed does not depend on the values (and a bf16 1.0
     * constant makes GCC 12 emit an FP16 fmov, outside armv8.6-a+bf16). */
    const bfloat16x8_t x = vreinterpretq_bf16_u16(vdupq_n_u16(0)), y = x;
    for (size_t it = 0; it < iters; it++)
        for (int i = 0; i < 16; i++) v[i] = vbfmmlaq_f32(v[i], x, y);
    float32x4_t s = v[0];
    for (int i = 1; i < 16; i++) s = vaddq_f32(s, v[i]);
    volatile float sink = vgetq_lane_f32(s, 0);
    (void)sink;
    return (double)iters * 16.0 * 2 * 2 * 4 * 2;
}

const sg_bf16_kernels sg_bf16_kernels_bfmmla = {
    .path = "bfmmla",
    .ukr_name = "bf16_ukr_bfmmla_8x8",
    .mr = 8,
    .nr = 8,
    .kstep = 4,
    .elem = 2,
    .pack_a = pack_bfmmla,
    .pack_b = pack_bfmmla,
    .ukr = ukr_bfmmla,
    .thread_begin = NULL,
    .thread_end = NULL,
    .peak = peak_bfmmla,
};
