/* avx2.c: the AVX2 + FMA kernel table.
 *
 * Built with -mavx2 -mfma and run only when src/cpu.c finds AVX2 and FMA and
 * the OS saves YMM state. Starts from the reference table and overrides every
 * slot but bce_fwd (a log per element on 100-200 elements a step: the
 * reference's libm logs are kept there, and sigmoid_bce calls it for its
 * loss).
 *
 * Micro-tile 6 x 16: 12 ymm accumulators, 2 ymm of B per k step, 1 for the
 * broadcast A element: 15 of the 16 ymm registers. 12 FMAs per k step cover
 * two FMA pipes of latency 4 (>= 8 independent chains). Measured against
 * 4 x 24 (12 accumulators), 5 x 16, 4 x 16, 3 x 32 and 8 x 8, 6 x 16 was
 * within 2% of the fastest (4 x 24), and pads the tutorial's GEMMs by 1.5%
 * of their flops (N = 64, 256 and 784 are multiples of 16; 4 x 24 pads 2.3%).
 *
 * AVX2 has no opmasks: remainders use maskload/maskstore, which neither read
 * nor write the lanes masked off. exp, tanh and sigmoid are vectorized here
 * with the same method and constants as avx512.c (results bitwise equal to
 * it); the other kernels follow ref.c's operations and roundings (FMA exactly
 * where it has fmaf), so they are bitwise equal to the reference. */
#include "simd.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };

/* ---- vector math ---------------------------------------------------------- */

/* 2^k for integer k in [-126, 127], built in the exponent field. */
static inline __m256 pow2i(__m256i k)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}

/* e^x, within 1 ulp of glibc's expf over the whole float range (denormal
 * results included). Cody-Waite: x = n ln2 + r with n = round(x log2 e) and
 * ln2 split in two (the high part has 9 significant bits, so n * hi is exact),
 * |r| <= ln2/2; e^r = 1 + r + r^2 P(r) with Cephes expf's degree-5 minimax P.
 * The scaling by 2^n is done as 2^(n/2) twice: the first product is exact and
 * the second rounds once, into denormals and to infinity as needed. x is
 * clamped to [-110, 110] (e^-110 rounds to 0 and e^110 to inf anyway) so that
 * |n| <= 159; NaN passes through because max/min return their second operand
 * when one is NaN. */
static inline __m256 exp_ps(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-110.0f), x);
    x = _mm256_min_ps(_mm256_set1_ps(110.0f), x);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
    p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    return _mm256_mul_ps(_mm256_mul_ps(p, pow2i(n1)), pow2i(n2));
}

/* tanh, within 2 ulp of glibc's tanhf. Computed on |x| and given x's sign
 * (so tanh(-0) = -0). |x| < 0.625: x + x^3 Q(x^2) with Cephes tanhf's
 * degree-4 Q (no cancellation near 0, tiny x returns x); otherwise
 * 1 - 2 / (e^{2|x|} + 1), which saturates to exactly 1 where tanhf does
 * (2 / (e^{2|x|} + 1) < 2^-25 past |x| ~ 9.01; e^{2|x|} = inf gives 1). */
static inline __m256 tanh_ps(__m256 x)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 ax = _mm256_andnot_ps(sign, x);
    __m256 z = _mm256_mul_ps(ax, ax);
    __m256 q = _mm256_set1_ps(-5.70498872745e-3f);
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(2.06390887954e-2f));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-5.37397155531e-2f));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(1.33314422036e-1f));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(q, z), ax, ax);
    __m256 e = exp_ps(_mm256_add_ps(ax, ax));
    __m256 big =
        _mm256_sub_ps(_mm256_set1_ps(1.0f),
                      _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ);
    __m256 t = _mm256_blendv_ps(big, small, is_small);
    return _mm256_or_ps(t, _mm256_and_ps(x, sign));
}

/* The reference's formula 1 / (1 + e^-x) with exp_ps: within 2 ulp of it for
 * x >= -16.6 and 4 ulp below, where e^-x > 2^24 and 1 + e^-x is itself
 * rounded to an even integer. Saturates to exactly 0 (e^-x = inf) and exactly
 * 1 (e^-x < 2^-24) as the reference does. */
static inline __m256 sigmoid_ps(__m256 x)
{
    __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* sg_act_fwd_scalar on 8 lanes (x > 0 compares false for NaN, as in C). */
static inline __m256 act_fwd_ps(__m256 x, sg_act act)
{
    __m256 pos;
    switch (act) {
    case SG_ACT_RELU:
        pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_and_ps(x, pos);
    case SG_ACT_LRELU:
        pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_blendv_ps(_mm256_mul_ps(x, _mm256_set1_ps(SG_LRELU_SLOPE)), x, pos);
    case SG_ACT_TANH: return tanh_ps(x);
    case SG_ACT_SIGMOID: return sigmoid_ps(x);
    case SG_ACT_NONE: break;
    }
    return x;
}

/* sg_act_bwd_scalar on 8 lanes: gradient g at activation output y, with the
 * reference's roundings: g fma(-y, y, 1) (ATen fuses 1 - y y); (g (1 - y)) y. */
static inline __m256 act_bwd_ps(__m256 g, __m256 y, sg_act act)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 pos;
    switch (act) {
    case SG_ACT_RELU:
        pos = _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_and_ps(g, pos);
    case SG_ACT_LRELU:
        pos = _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ);
        return _mm256_blendv_ps(_mm256_mul_ps(g, _mm256_set1_ps(SG_LRELU_SLOPE)), g, pos);
    case SG_ACT_TANH: return _mm256_mul_ps(g, _mm256_fnmadd_ps(y, y, one));
    case SG_ACT_SIGMOID: return _mm256_mul_ps(_mm256_mul_ps(g, _mm256_sub_ps(one, y)), y);
    case SG_ACT_NONE: break;
    }
    return g;
}

/* Lanes [0, n) of 8 as a maskload/maskstore mask (sign bit set), n <= 8. */
static inline __m256i lanes(size_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- micro-kernel --------------------------------------------------------- */

/* The epilogue on a finished 6 x 16 tile of C: bias, forward activation,
 * backward activation against Y, as ref.c's epi_scalar does per element. The
 * fields are read once: stores to C could alias *epi as far as C knows. */
static void epilogue_6x16(float *c, size_t ldc, const sg_epi *epi)
{
    const float *bias = epi->bias, *y = epi->y;
    const sg_act act = epi->act, dact = epi->dact;
    const size_t ldy = epi->ldy;
    for (int i = 0; i < MR; i++)
        for (int h = 0; h < NR; h += 8) {
            float *ci = c + (size_t)i * ldc + h;
            __m256 v = _mm256_loadu_ps(ci);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + h));
            v = act_fwd_ps(v, act);
            if (dact != SG_ACT_NONE)
                v = act_bwd_ps(v, _mm256_loadu_ps(y + (size_t)i * ldy + h), dact);
            _mm256_storeu_ps(ci, v);
        }
}

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
    if (epi) epilogue_6x16(c, ldc, epi);
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

static void pack_avx2(float *dst, const float *src, size_t rs, size_t cs, size_t m, size_t k, int w)
{
    if (rs == 1)
        pack_rows_contiguous(dst, src, cs, m, k, (size_t)w);
    else if (cs == 1)
        pack_rows_transposed(dst, src, rs, m, k, (size_t)w);
    else
        sg_pack_ref(dst, src, rs, cs, m, k, w);
}

/* ---- normals for z ----------------------------------------------------------- */

/* The generator of ref.c (sg_philox, log_cephes, sincos_turns) on 8
 * counters, with the same operations in the same order, so z is the same
 * bit for bit; avx512.c has the 16-lane version with comments. */
static inline __m256i mulhi32(__m256i a, __m256i m)
{
    __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(a, m), 32);
    __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    return _mm256_blend_epi32(even, odd, 0xaa);
}

static void philox8(__m256i c[4], uint64_t key)
{
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i hi0 = mulhi32(c[0], m0), lo0 = _mm256_mullo_epi32(c[0], m0);
        __m256i hi1 = mulhi32(c[2], m1), lo1 = _mm256_mullo_epi32(c[2], m1);
        c[0] = _mm256_xor_si256(_mm256_xor_si256(hi1, c[1]), _mm256_set1_epi32((int)k0));
        c[1] = lo1;
        c[2] = _mm256_xor_si256(_mm256_xor_si256(hi0, c[3]), _mm256_set1_epi32((int)k1));
        c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* ln x for normal positive x: exponent and mantissa in [1, 2) from the bits
 * (frexpf's, exactly), then ref.c's log_cephes. */
static inline __m256 log_ps(__m256 x)
{
    __m256i bits = _mm256_castps_si256(x);
    __m256 e = _mm256_cvtepi32_ps(
        _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127)));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f800000)));
    __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
    e = _mm256_blendv_ps(e, _mm256_add_ps(e, _mm256_set1_ps(1.0f)), big);
    __m256 f = _mm256_sub_ps(m, _mm256_set1_ps(1.0f)), z = _mm256_mul_ps(f, f);
    __m256 p = _mm256_set1_ps(7.0376836292e-2f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.1514610310e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.1676998740e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.2420140846e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.4249322787e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-1.6668057665e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.0000714765e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(-2.4999993993e-1f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(3.3333331174e-1f));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
    y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
    return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(f, y));
}

/* sin and cos of 2 pi u, u in [0, 1) a multiple of 2^-24: ref.c's sincos_turns. */
static inline void sincos_turns_ps(__m256 u, __m256 *s, __m256 *c)
{
    __m256 q = _mm256_round_ps(_mm256_mul_ps(u, _mm256_set1_ps(4.0f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_fnmadd_ps(q, _mm256_set1_ps(0.25f), u);
    __m256 r = _mm256_fmadd_ps(f, _mm256_set1_ps(6.28318548202514648f),
                               _mm256_mul_ps(f, _mm256_set1_ps(-1.7484555314e-7f)));
    __m256 z = _mm256_mul_ps(r, r);
    __m256 sp = _mm256_set1_ps(-1.9515295891e-4f);
    sp = _mm256_fmadd_ps(sp, z, _mm256_set1_ps(8.3321608736e-3f));
    sp = _mm256_fmadd_ps(sp, z, _mm256_set1_ps(-1.6666654611e-1f));
    __m256 sr = _mm256_fmadd_ps(_mm256_mul_ps(sp, z), r, r);
    __m256 cp = _mm256_set1_ps(2.443315711809948e-5f);
    cp = _mm256_fmadd_ps(cp, z, _mm256_set1_ps(-1.388731625493765e-3f));
    cp = _mm256_fmadd_ps(cp, z, _mm256_set1_ps(4.166664568298827e-2f));
    __m256 cr = _mm256_fmadd_ps(_mm256_mul_ps(cp, z), z,
                                _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, _mm256_set1_ps(1.0f)));
    /* Quarter turns q mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s). */
    __m256i qi = _mm256_cvtps_epi32(q);
    const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
    __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(qi, one), one));
    __m256 sneg = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(qi, two), two));
    __m256 cneg = _mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_add_epi32(qi, one), two), two));
    __m256 sv = _mm256_blendv_ps(sr, cr, odd), cv = _mm256_blendv_ps(cr, sr, odd);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    *s = _mm256_xor_ps(sv, _mm256_and_ps(sneg, sign));
    *c = _mm256_xor_ps(cv, _mm256_and_ps(cneg, sign));
}

/* Unsigned 32-bit integers to float, rounded once as a C conversion: the
 * two 16-bit halves convert exactly and their sum rounds once. */
static inline __m256 cvtepu32_ps(__m256i x)
{
    __m256 hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(x, 16));
    __m256 lo = _mm256_cvtepi32_ps(_mm256_and_si256(x, _mm256_set1_epi32(0xffff)));
    return _mm256_fmadd_ps(hi, _mm256_set1_ps(65536.0f), lo);
}

/* 32 normals, elements 32 g .. 32 g + 31 (blocks 8 g .. 8 g + 7). */
static void normal32(float out[32], size_t g, uint64_t seed, uint32_t stream, uint32_t c2,
                     uint32_t c1)
{
    __m256i c[4];
    c[0] = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(8 * g)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    c[1] = _mm256_set1_epi32((int)c1);
    c[2] = _mm256_set1_epi32((int)c2);
    c[3] = _mm256_set1_epi32((int)stream);
    philox8(c, seed);
    __m256 z[4];
    for (int h = 0; h < 2; h++) {
        __m256 u1 = _mm256_mul_ps(_mm256_add_ps(cvtepu32_ps(c[2 * h]), _mm256_set1_ps(1.0f)),
                                  _mm256_set1_ps(0x1p-32f));
        __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(c[2 * h + 1], 8)),
                                  _mm256_set1_ps(0x1p-24f));
        __m256 rad = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log_ps(u1)));
        __m256 sn, cs;
        sincos_turns_ps(u2, &sn, &cs);
        z[2 * h] = _mm256_mul_ps(rad, cs);
        z[2 * h + 1] = _mm256_mul_ps(rad, sn);
    }
    /* Lane b of z[0..3] holds block b's four outputs; 128-bit half L of v[j]
     * becomes block 4 L + j's four, then the halves go to memory order. */
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

/* z[i0, i1) by groups of 32 (sg_normal_groups, ref.c). */
static void normal_avx2(float *z, size_t i0, size_t i1, uint64_t seed, uint32_t stream,
                        uint32_t c2, uint32_t c1)
{
    sg_normal_groups(z, i0, i1, 32, normal32, seed, stream, c2, c1);
}

/* ---- elementwise kernels -------------------------------------------------- */

static void bias_act_fwd_avx2(float *y, size_t ldy, const float *bias, size_t i0, size_t i1,
                              size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++) {
        float *yi = y + i * ldy;
        size_t j = 0;
        for (; j + 8 <= N; j += 8) {
            __m256 v = _mm256_loadu_ps(yi + j);
            if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
            _mm256_storeu_ps(yi + j, act_fwd_ps(v, act));
        }
        if (j < N) {
            __m256i k = lanes(N - j);
            __m256 v = _mm256_maskload_ps(yi + j, k);
            if (bias) v = _mm256_add_ps(v, _mm256_maskload_ps(bias + j, k));
            _mm256_maskstore_ps(yi + j, k, act_fwd_ps(v, act));
        }
    }
}

static void act_bwd_avx2(float *dx, size_t lddx, const float *dy, size_t lddy, const float *y,
                         size_t ldy, size_t i0, size_t i1, size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++) {
        float *dxi = dx + i * lddx;
        const float *dyi = dy + i * lddy, *yi = y + i * ldy;
        size_t j = 0;
        for (; j + 8 <= N; j += 8)
            _mm256_storeu_ps(dxi + j,
                             act_bwd_ps(_mm256_loadu_ps(dyi + j), _mm256_loadu_ps(yi + j), act));
        if (j < N) {
            __m256i k = lanes(N - j);
            __m256 g =
                act_bwd_ps(_mm256_maskload_ps(dyi + j, k), _mm256_maskload_ps(yi + j, k), act);
            _mm256_maskstore_ps(dxi + j, k, g);
        }
    }
}

/* Four vectors of columns at a time, each summed over the rows in order
 * (0 + dz[0] + dz[1] + ..., the reference's order), so the result is
 * bitwise the reference's. */
static void colsum_avx2(float *db, const float *dz, size_t ldz, size_t M, size_t j0, size_t j1)
{
    size_t j = j0;
    for (; j + 32 <= j1; j += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < M; i++) {
            const float *row = dz + i * ldz + j;
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(row));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(row + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(row + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(row + 24));
        }
        _mm256_storeu_ps(db + j, s0);
        _mm256_storeu_ps(db + j + 8, s1);
        _mm256_storeu_ps(db + j + 16, s2);
        _mm256_storeu_ps(db + j + 24, s3);
    }
    for (; j < j1; j += 8) {
        __m256i k = lanes(j1 - j < 8 ? j1 - j : 8);
        __m256 s = _mm256_setzero_ps();
        for (size_t i = 0; i < M; i++)
            s = _mm256_add_ps(s, _mm256_maskload_ps(dz + i * ldz + j, k));
        _mm256_maskstore_ps(db + j, k, s);
    }
}

/* (y - t) / max((1 - y) y, 1e-12) / count, the reference's bce_grad_elem. */
static inline __m256 bce_grad_ps(__m256 y, __m256 t, __m256 count)
{
    __m256 w = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), y), y);
    w = _mm256_max_ps(w, _mm256_set1_ps(1e-12f)); /* NaN w gives 1e-12, as fmaxf */
    return _mm256_div_ps(_mm256_div_ps(_mm256_sub_ps(y, t), w), count);
}

static void bce_bwd_avx2(float *dy, const float *y, const float *t, float count, size_t i0,
                         size_t i1)
{
    const __m256 cnt = _mm256_set1_ps(count);
    for (size_t i = i0; i < i1; i += 8) {
        __m256i k = lanes(i1 - i < 8 ? i1 - i : 8);
        __m256 g = bce_grad_ps(_mm256_maskload_ps(y + i, k), _mm256_maskload_ps(t + i, k), cnt);
        _mm256_maskstore_ps(dy + i, k, g);
    }
}

/* y by sigmoid_ps, dz from y with the reference's operations (so dz is 0
 * exactly where y is 0 or 1), the loss by the reference's libm logs. */
static void sigmoid_bce_avx2(float *y, float *loss, float *dz, const float *z, const float *t,
                             float count, size_t i0, size_t i1)
{
    const __m256 cnt = _mm256_set1_ps(count);
    for (size_t i = i0; i < i1; i += 8) {
        __m256i k = lanes(i1 - i < 8 ? i1 - i : 8);
        __m256 s = sigmoid_ps(_mm256_maskload_ps(z + i, k));
        __m256 g = bce_grad_ps(s, _mm256_maskload_ps(t + i, k), cnt);
        _mm256_maskstore_ps(y + i, k, s);
        _mm256_maskstore_ps(dz + i, k, act_bwd_ps(g, s, SG_ACT_SIGMOID));
    }
    sg_bce_fwd_ref(loss, y, t, i0, i1);
}

/* One pass over p, m, v, g with the reference's roundings: ATen's fused
 * m = fma(c1, g, m b1) and v = fma(c2 g, g, v b2), the rest op by op (no
 * other contraction): bitwise the reference. */
static void adam_avx2(float *p, float *m, float *v, const float *g, size_t i0, size_t i1,
                      const sg_adam_coef *h)
{
    const __m256 b1 = _mm256_set1_ps(h->b1), c1 = _mm256_set1_ps(h->c1);
    const __m256 b2 = _mm256_set1_ps(h->b2), c2 = _mm256_set1_ps(h->c2);
    const __m256 bc2 = _mm256_set1_ps(h->bc2_sqrt), eps = _mm256_set1_ps(h->eps);
    const __m256 neg_step = _mm256_set1_ps(-h->step_size);
    for (size_t i = i0; i < i1; i += 8) {
        __m256i k = lanes(i1 - i < 8 ? i1 - i : 8);
        __m256 gi = _mm256_maskload_ps(g + i, k);
        __m256 mi = _mm256_fmadd_ps(c1, gi, _mm256_mul_ps(_mm256_maskload_ps(m + i, k), b1));
        __m256 vi = _mm256_fmadd_ps(_mm256_mul_ps(c2, gi), gi,
                                    _mm256_mul_ps(_mm256_maskload_ps(v + i, k), b2));
        __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
        __m256 pi = _mm256_add_ps(_mm256_maskload_ps(p + i, k),
                                  _mm256_div_ps(_mm256_mul_ps(neg_step, mi), denom));
        _mm256_maskstore_ps(m + i, k, mi);
        _mm256_maskstore_ps(v + i, k, vi);
        _mm256_maskstore_ps(p + i, k, pi);
    }
}

/* The peak: 12 independent FMA chains on __m256 registers (two FMA pipes of latency 4 need 8 of the 16 registers). */
static double fma_peak_avx2(size_t iters)
{
    __m256 a[12];
    const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int c = 0; c < 12; c++) a[c] = _mm256_set1_ps((float)c);
    for (size_t n = 0; n < iters; n++)
#pragma GCC unroll 32
        for (int c = 0; c < 12; c++) a[c] = _mm256_fmadd_ps(a[c], x, y);
    __m256 s = a[0];
    for (int c = 1; c < 12; c++) s = _mm256_add_ps(s, a[c]);
    volatile float sink = _mm256_cvtss_f32(s);
    (void)sink;
    return 192.0 * (double)iters;
}

const sg_kernels sg_kernels_avx2 = {
    SG_KERNELS_REF_SLOTS,
    .isa = "avx2",
    .ukr_name = "sgemm_ukr_avx2_6x16",
    .mr = MR,
    .nr = NR,
    .vec_floats = 8,
    .sgemm_ukr = sgemm_ukr_avx2_6x16,
    .pack = pack_avx2,
    .bias_act_fwd = bias_act_fwd_avx2,
    .act_bwd = act_bwd_avx2,
    .colsum = colsum_avx2,
    .sigmoid_bce = sigmoid_bce_avx2,
    .bce_bwd = bce_bwd_avx2,
    .adam = adam_avx2,
    .normal = normal_avx2,
    .fma_peak = fma_peak_avx2,
};
