/* avx512_bf16.c: the bf16 path on AVX512_BF16 without a matrix unit:
 * vdpbf16ps, which adds to each of 16 fp32 lanes the two products of a pair
 * of bf16 (k and k+1), twice the multiply-adds of an fp32 FMA of the same
 * width. Measured register-resident on an AMD EPYC (Zen 4), one core:
 * vdpbf16ps zmm 61-70 GFLOP/s against vfmadd231ps zmm 31-36. (Intel's cores
 * before AMX issue it every other cycle, no gain: issue 12's figure; they
 * are told apart by nothing but speed, so SIMDGAN_BF16=ref is the way out.)
 *
 * A 10 x 32 micro-tile, as sgemm_ukr_avx512_10x32: 20 accumulators (10 rows
 * x 2 vectors of 16 columns), per k-pair two B loads and 10 broadcasts of
 * A's pair words, 20 vdpbf16ps. Layouts (bf16, zero-padded; Kp even):
 *   A panel [Kp / 2][10 rows][2]: row i's pair (k, k+1) is one 32-bit word,
 *     broadcast to all lanes;
 *   B panel [Kp / 2][32 columns][2]: each k-pair's 32 columns are two
 *     vectors of 16 pair words, the layout vdpbf16ps pairs with A's.
 * The packs round with bf16_x86.h's vector code where a stride is 1 (every
 * product of the model) and element by element otherwise.
 *
 * vdpbf16ps ignores MXCSR: it rounds to nearest even, reads denormal inputs
 * as zero and flushes denormal results (the tests' bound allows for both).
 *
 * Built with -mavx512f -mavx512bf16 as its own object; chosen where CPUID
 * reports AVX512_BF16 and AVX-512F and the OS saves ZMM state (src/cpu.c). */
#include <stdint.h>

#include "bf16.h"
#include "bf16_x86.h"

#define MR 10
#define NR 32

/* Element (i, p) of A at u16 index SG_A(i, p); of B (column i) at SG_B. */
#define SG_A(i, p) ((p) / 2 * (MR * 2) + (i) * 2 + (p) % 2)
#define SG_B(i, p) ((p) / 2 * (NR * 2) + (i) * 2 + (p) % 2)

/* Element (i, p) of the operand is src[i rs + p cs]. */
static void pack_a_avx512bf16(void *dst, const float *src, size_t rs, size_t cs, size_t m,
                              size_t K, int w, const sg_kernels *fk)
{
    (void)w, (void)fk; /* w is always MR */
    uint16_t *d = dst;
    const size_t Kp = (K + 1) / 2 * 2;
    memset(d, 0, Kp * MR * sizeof *d);
    if (cs == 1) { /* a row's k contiguous: 16 pair words, scattered MR words apart */
        for (size_t i = 0; i < m; i++)
            for (size_t p = 0; p < K; p += 32) {
                const size_t n = K - p < 32 ? K - p : 32;
                _mm512_mask_i32scatter_epi32(d + SG_A(i, p), sg_lanes16((n + 1) / 2),
                                             sg_stride16(MR), sg_round32(src + i * rs + p, n), 4);
            }
        return;
    }
    if (rs == 1) { /* a k's rows contiguous: one pair word per row, stored together */
        for (size_t p = 0; p < K; p += 2)
            _mm512_mask_storeu_epi32(d + SG_A(0, p), sg_lanes16(MR),
                                     sg_pair16(src, cs, p, K, sg_lanes16(m)));
        return;
    }
    for (size_t p = 0; p < K; p++)
        for (size_t i = 0; i < m; i++) d[SG_A(i, p)] = sg_bf16_round(src[i * rs + p * cs]);
}

/* B's "rows" i are its columns. */
static void pack_b_avx512bf16(void *dst, const float *src, size_t rs, size_t cs, size_t m,
                              size_t K, int w, const sg_kernels *fk)
{
    (void)w, (void)fk; /* w is always NR */
    uint16_t *d = dst;
    const size_t Kp = (K + 1) / 2 * 2;
    memset(d, 0, Kp * NR * sizeof *d);
    if (rs == 1) { /* B row-major: a k-pair of 16 columns is one vector */
        for (size_t h = 0; h * 16 < m; h++)
            for (size_t p = 0; p < K; p += 2)
                _mm512_storeu_si512(d + SG_B(h * 16, p),
                                    sg_pair16(src + h * 16, cs, p, K, sg_lanes16(m - h * 16)));
        return;
    }
    if (cs == 1) { /* a column's k contiguous (W^T): 16 pair words, scattered */
        for (size_t i = 0; i < m; i++)
            for (size_t p = 0; p < K; p += 32) {
                const size_t n = K - p < 32 ? K - p : 32;
                _mm512_mask_i32scatter_epi32(d + SG_B(i, p), sg_lanes16((n + 1) / 2),
                                             sg_stride16(NR), sg_round32(src + i * rs + p, n), 4);
            }
        return;
    }
    for (size_t p = 0; p < K; p++)
        for (size_t i = 0; i < m; i++) d[SG_B(i, p)] = sg_bf16_round(src[i * rs + p * cs]);
}

static void ukr_avx512bf16(size_t Kp, const void *a_, const void *b_, float *c, size_t ldc,
                           int accumulate, size_t mr, const sg_kernels *fk)
{
    (void)mr, (void)fk;
    const uint32_t *a = a_; /* [Kp / 2][MR] pair words */
    const uint32_t *b = b_; /* [Kp / 2][NR] pair words */
    __m512 acc[MR][2];
    for (int i = 0; i < MR; i++) {
        acc[i][0] = accumulate ? _mm512_loadu_ps(c + (size_t)i * ldc) : _mm512_setzero_ps();
        acc[i][1] = accumulate ? _mm512_loadu_ps(c + (size_t)i * ldc + 16) : _mm512_setzero_ps();
    }
    for (size_t kp = 0; kp < Kp / 2; kp++, a += MR, b += NR) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 16);
        for (int i = 0; i < MR; i++) {
            const __m512bh ai = (__m512bh)_mm512_set1_epi32((int)a[i]);
            acc[i][0] = _mm512_dpbf16_ps(acc[i][0], ai, b0);
            acc[i][1] = _mm512_dpbf16_ps(acc[i][1], ai, b1);
        }
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_ps(c + (size_t)i * ldc, acc[i][0]);
        _mm512_storeu_ps(c + (size_t)i * ldc + 16, acc[i][1]);
    }
}

/* vdpbf16ps's peak: 20 independent accumulators, operands in registers
 * (zeros: the unit's speed does not depend on the values). */
static double peak_avx512bf16(size_t iters)
{
    __m512 acc[20];
    for (int i = 0; i < 20; i++) acc[i] = _mm512_setzero_ps();
    const __m512bh x = (__m512bh)_mm512_setzero_si512();
    for (size_t it = 0; it < iters; it++)
        for (int i = 0; i < 20; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, x);
    __m512 s = acc[0];
    for (int i = 1; i < 20; i++) s = _mm512_add_ps(s, acc[i]);
    volatile float sink = _mm512_reduce_add_ps(s);
    (void)sink;
    return (double)iters * 20.0 * 16 * 2 * 2;
}

const sg_bf16_kernels sg_bf16_kernels_avx512bf16 = {
    .path = "avx512bf16",
    .ukr_name = "bf16_ukr_avx512bf16_10x32",
    .mr = MR,
    .nr = NR,
    .kstep = 2,
    .elem = 2,
    .pack_a = pack_a_avx512bf16,
    .pack_b = pack_b_avx512bf16,
    .ukr = ukr_avx512bf16,
    .thread_begin = NULL,
    .thread_end = NULL,
    .peak = peak_avx512bf16,
};
