/* avx2.c: the AVX2 + FMA kernel table.
 *
 * Built with -mavx2 -mfma and run only when src/cpu.c finds AVX2 and FMA and
 * the OS saves YMM state. Starts from the reference table; the elementwise
 * slots, the micro-kernel's epilogue, the pack slot's dispatch and the peak
 * loop come from vec_kernels.h on the 8-lane shim vec_avx2.h (bitwise the
 * other tables' results); this file holds the micro-kernel and the packs.
 *
 * Micro-tile 6 x 16: 12 ymm accumulators, 2 ymm of B per k step, 1 for the
 * broadcast A element: 15 of the 16 ymm registers. 12 FMAs per k step cover
 * two FMA pipes of latency 4 (>= 8 independent chains). Measured against
 * 4 x 24 (12 accumulators), 5 x 16, 4 x 16, 3 x 32 and 8 x 8, 6 x 16 was
 * within 2% of the fastest (4 x 24), and pads the tutorial's GEMMs by 1.5%
 * of their flops (N = 64, 256 and 784 are multiples of 16; 4 x 24 pads 2.3%).
 *
 * AVX2 has no opmasks: remainders use maskload/maskstore, which neither read
 * nor write the lanes masked off. */
#include "simd.h"
#include "vec_avx2.h"

enum { MR = 6, NR = 16 };

#define SG_VEC_FN(name) name##_avx2
#define SG_VEC_LINKAGE static
#include "vec_kernels.h"

/* ---- micro-kernel --------------------------------------------------------- */

/* C[6, 16] (+)= A[6, K] B[K, 16], then the epilogue. Register use in the
 * K loop: acc[i][0..1] (ymm, 12) hold row i's two 8-column halves; b0, b1
 * (ymm, 2) are the k step's B row, loaded first because all 12 FMAs of the
 * step read them; one ymm takes each A element's broadcast in turn, which
 * feeds the two FMAs of its row. The loop is unrolled by 4 (4 steps read one
 * 64-byte line of B per step and 1.5 lines of A). The C tile's lines (two
 * per row, as a 64-byte row of 16 floats may straddle two) are prefetched one
 * per iteration over the last 12 iterations, as avx512.c explains. */
static void sgemm_ukr_avx2_6x16(size_t K, const float *a, const float *b, float *c, size_t ldc,
                                int accumulate, const sg_epi *epi)
{
    /* Line l of the C tile: row l / 2, its first (l even) or last float. */
    const size_t iters = K / 4;
    for (size_t l = 0; l + iters < 2 * MR; l++)
        _mm_prefetch((const char *)(c + (l >> 1) * ldc + (l & 1) * (NR - 1)), _MM_HINT_T0);

    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();

    size_t p = 0;
    for (size_t it = 0; it < iters; it++, p += 4) {
        if (iters - it <= 2 * MR) {
            size_t l = 2 * MR - (iters - it);
            _mm_prefetch((const char *)(c + (l >> 1) * ldc + (l & 1) * (NR - 1)), _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m256 b0 = _mm256_loadu_ps(b + u * NR);
            __m256 b1 = _mm256_loadu_ps(b + u * NR + 8);
#pragma GCC unroll 6
            for (int i = 0; i < MR; i++) {
                __m256 ai = _mm256_broadcast_ss(a + u * MR + i);
                acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
        a += 4 * MR;
        b += 4 * NR;
    }
    for (; p < K; p++) {
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }

    /* The finished sums (C + acc when accumulating) go to C straight from
     * the accumulators; an epilogue then rereads the tile from L1, so that
     * its activation math does not compete with 12 live accumulators for
     * registers. */
#pragma GCC unroll 6
    for (int i = 0; i < MR; i++) {
        float *ci = c + (size_t)i * ldc;
        __m256 v0 = acc[i][0], v1 = acc[i][1];
        if (accumulate) {
            v0 = _mm256_add_ps(_mm256_loadu_ps(ci), v0);
            v1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), v1);
        }
        _mm256_storeu_ps(ci, v0);
        _mm256_storeu_ps(ci + 8, v1);
    }
    if (epi) v_epilogue(c, ldc, epi);
}

/* ---- packing -------------------------------------------------------------- */

/* rs == 1: for each k step a panel's w elements are contiguous in src. As in
 * avx512.c, the k steps go in the outer loop so that src is read row by row
 * across all panels; whole 8-lane groups copy unmasked, the last panel's
 * rows past m load as zeros. */
static void pack_rows_contiguous(float *dst, const float *src, size_t cs, size_t m, size_t k,
                                 size_t w)
{
    const size_t full = m / w, rest = m % w; /* whole panels, rows of the last */
    const size_t w8 = w / 8 * 8;
    const __m256i tail = lanes(w - w8);
    for (size_t p = 0; p < k; p++) {
        const float *s = src + p * cs;
        float *d = dst + p * w;
        for (size_t q = 0; q < full; q++, s += w, d += k * w) {
            for (size_t j = 0; j < w8; j += 8) _mm256_storeu_ps(d + j, _mm256_loadu_ps(s + j));
            if (w8 < w) _mm256_maskstore_ps(d + w8, tail, _mm256_maskload_ps(s + w8, tail));
        }
        for (size_t j = 0; rest && j < w; j += 8) {
            size_t width = w - j < 8 ? w - j : 8;
            size_t valid = rest > j ? (rest - j < width ? rest - j : width) : 0;
            _mm256_maskstore_ps(d + j, lanes(width), _mm256_maskload_ps(s + j, lanes(valid)));
        }
    }
}

/* In-register transpose of 8 rows of 8: r[i] lane j becomes r[j] lane i.
 * Interleave 32-bit pairs, then 64-bit pairs (shuffle_ps), then exchange the
 * 128-bit halves. */
static inline void transpose8(__m256 r[8])
{
    __m256 t[8], s[8];
    /* t[i] holds, per 128-bit half H, columns 4H and 4H + 1 of rows i and
     * i + 1 interleaved; t[i + 1] columns 4H + 2 and 4H + 3 */
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    /* s[4g + c] holds, in each 128-bit half H, column 4H + c of rows 4g..4g+3 */
    for (int g = 0; g < 8; g += 4) {
        s[g + 0] = _mm256_shuffle_ps(t[g], t[g + 2], 0x44);
        s[g + 1] = _mm256_shuffle_ps(t[g], t[g + 2], 0xee);
        s[g + 2] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        s[g + 3] = _mm256_shuffle_ps(t[g + 1], t[g + 3], 0xee);
    }
    for (int c = 0; c < 4; c++) {
        r[c] = _mm256_permute2f128_ps(s[c], s[c + 4], 0x20);     /* low halves: column c */
        r[c + 4] = _mm256_permute2f128_ps(s[c], s[c + 4], 0x31); /* high: column c + 4 */
    }
}

/* cs == 1: each of the panel's rows is contiguous along k, so blocks of 8
 * rows x 8 k steps are loaded (masked at the edges, zeros past m) and
 * transposed in registers, then stored as 8 k steps of the panel. */
static void pack_rows_transposed(float *dst, const float *src, size_t rs, size_t m, size_t k,
                                 size_t w)
{
    for (size_t i0 = 0; i0 < m; i0 += w) {
        size_t rows = m - i0 < w ? m - i0 : w;
        for (size_t g = 0; g < w; g += 8) {
            size_t width = w - g < 8 ? w - g : 8;
            size_t valid = rows > g ? (rows - g < width ? rows - g : width) : 0;
            __m256i wmask = lanes(width);
            for (size_t p0 = 0; p0 < k; p0 += 8) {
                size_t steps = k - p0 < 8 ? k - p0 : 8;
                __m256i smask = lanes(steps);
                __m256 r[8];
                for (size_t i = 0; i < 8; i++) {
                    const float *s = src + (i0 + g + i) * rs + p0;
                    r[i] = i >= valid   ? _mm256_setzero_ps()
                           : steps == 8 ? _mm256_loadu_ps(s)
                                        : _mm256_maskload_ps(s, smask);
                }
                transpose8(r);
                for (size_t q = 0; q < steps; q++) {
                    float *d = dst + (p0 + q) * w + g;
                    if (width == 8)
                        _mm256_storeu_ps(d, r[q]);
                    else
                        _mm256_maskstore_ps(d, wmask, r[q]);
                }
            }
        }
        dst += k * w;
    }
}

const sg_kernels sg_kernels_avx2 = {
    SG_KERNELS_REF_SLOTS,
    SG_VEC_SLOTS,
    .isa = "avx2",
    .ukr_name = "sgemm_ukr_avx2_6x16",
    .mr = MR,
    .nr = NR,
    .sgemm_ukr = sgemm_ukr_avx2_6x16,
};
