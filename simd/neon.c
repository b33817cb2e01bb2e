/* neon.c: the aarch64 NEON (ASIMD) kernel table.
 *
 * NEON is baseline on aarch64, so this file needs no -m flags; src/cpu.c
 * still checks HWCAP_ASIMD. Starts from the reference table; the elementwise
 * slots, the micro-kernel's epilogue, the pack slot's dispatch and the peak
 * loop come from vec_kernels.h on the 4-lane shim vec_neon.h (bitwise the
 * other tables' results); this file holds the micro-kernel and the packs.
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
 * 4-float buffer (vf_load_part), so every element is computed by the same
 * vector code wherever it sits. */
#include "simd.h"
#include "vec_neon.h"

#include <string.h>

enum { MR = 8, NR = 12 };

#define SG_VEC_FN(name) name##_neon
#define SG_VEC_LINKAGE static
#include "vec_kernels.h"

/* ---- micro-kernel --------------------------------------------------------- */

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
    if (epi) v_epilogue(c, ldc, epi);
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
                        i < valid ? v_load(src + (i0 + g + i) * rs + p0, steps) : vdupq_n_f32(0.0f);
                transpose4(r);
                for (size_t q = 0; q < steps; q++) v_store(dst + (p0 + q) * w + g, r[q], width);
            }
        }
        dst += k * w;
    }
}

const sg_kernels sg_kernels_neon = {
    SG_KERNELS_REF_SLOTS,
    SG_VEC_SLOTS,
    .isa = "neon",
    .ukr_name = "sgemm_ukr_neon_8x12",
    .mr = MR,
    .nr = NR,
    .sgemm_ukr = sgemm_ukr_neon_8x12,
};
