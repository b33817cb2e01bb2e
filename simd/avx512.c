/* avx512.c: the AVX-512 (F/VL/BW/DQ) kernel table.
 *
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma and run
 * only when src/cpu.c finds those features and the OS saves ZMM and opmask
 * state. Starts from the reference table and overrides every slot but bce_fwd
 * (a log per element on 100-200 elements a step: the reference's libm logs are
 * kept there, and sigmoid_bce calls it for its loss).
 *
 * Micro-tile 10 x 32: 20 zmm accumulators, 2 zmm of B per k step, the A
 * element broadcast (from memory, into the FMA or one register). 20 FMAs per
 * k step keep two FMA pipes of latency 4 busy (>= 8 independent chains) and
 * leave registers free. Every geometry measured with 20-32 accumulators
 * (14x32, 12x32, 10x32, 16x32, 8x48, 10x48, 6x64, 7x64) ran at 94-99% of the
 * register-resident FMA peak on a Xeon with two 512-bit FMA pipes (as Zen 5
 * has; Zen 4 splits each over its 256-bit pipes and needs fewer chains), so the
 * choice is by padding: the tutorial's batch of 100 (and D's 200) is a whole
 * number of 10-row panels, where 12 rows pad it by 8%. Against 12 x 32 the
 * training step measured 4.84 against 5.02 ms at one thread and 2.89 against
 * 3.00 ms at two (bm_step, alternating runs). The B micro-panel at K = 256
 * (32 KiB) fits a 48 KiB L1.
 *
 * Remainders use opmasks; nothing reads or writes outside the caller's
 * ranges. exp, tanh and sigmoid are vectorized here (see exp_ps); the other
 * kernels follow ref.c's operations and roundings (FMA exactly where it has
 * fmaf), so they are bitwise equal to the reference. */
#include "simd.h"

#include <immintrin.h>

enum { MR = 10, NR = 32 };

/* ---- vector math ---------------------------------------------------------- */

/* e^x, within 1 ulp of glibc's expf over the whole float range (denormal
 * results included). Cody-Waite: x = n ln2 + r with n = round(x log2 e) and
 * ln2 split in two (the high part has 9 significant bits, so n * hi is exact),
 * |r| <= ln2/2; e^r = 1 + r + r^2 P(r) with Cephes expf's degree-5 minimax P;
 * the result is scaled by 2^n with scalef, which rounds once, into denormals
 * and to infinity as needed. x is clamped to [-110, 110] (e^-110 rounds to 0
 * and e^110 to inf anyway) so that r stays finite; NaN passes through because
 * max/min return their second operand when one is NaN. */
static inline __m512 exp_ps(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-110.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(110.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* tanh, within 2 ulp of glibc's tanhf. Computed on |x| and given x's sign
 * (so tanh(-0) = -0). |x| < 0.625: x + x^3 Q(x^2) with Cephes tanhf's
 * degree-4 Q (no cancellation near 0, tiny x returns x); otherwise
 * 1 - 2 / (e^{2|x|} + 1), which saturates to exactly 1 where tanhf does
 * (2 / (e^{2|x|} + 1) < 2^-25 past |x| ~ 9.01; e^{2|x|} = inf gives 1). */
static inline __m512 tanh_ps(__m512 x)
{
    __m512 ax = _mm512_abs_ps(x);
    __m512 z = _mm512_mul_ps(ax, ax);
    __m512 q = _mm512_set1_ps(-5.70498872745e-3f);
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(2.06390887954e-2f));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(-5.37397155531e-2f));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(1.33314422036e-1f));
    q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(-3.33332819422e-1f));
    __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(q, z), ax, ax);
    __m512 e = exp_ps(_mm512_add_ps(ax, ax));
    __m512 big =
        _mm512_sub_ps(_mm512_set1_ps(1.0f),
                      _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ);
    __m512 t = _mm512_mask_mov_ps(big, is_small, small);
    return _mm512_or_ps(t, _mm512_and_ps(x, _mm512_set1_ps(-0.0f)));
}

/* The reference's formula 1 / (1 + e^-x) with exp_ps: within 2 ulp of it for
 * x >= -16.6 and 4 ulp below, where e^-x > 2^24 and 1 + e^-x is itself
 * rounded to an even integer. Saturates to exactly 0 (e^-x = inf) and exactly
 * 1 (e^-x < 2^-24) as the reference does. */
static inline __m512 sigmoid_ps(__m512 x)
{
    __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* sg_act_fwd_scalar on 16 lanes (x > 0 compares false for NaN, as in C). */
static inline __m512 act_fwd_ps(__m512 x, sg_act act)
{
    __mmask16 pos;
    switch (act) {
    case SG_ACT_RELU:
        pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
        return _mm512_maskz_mov_ps(pos, x);
    case SG_ACT_LRELU:
        pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
        return _mm512_mask_mul_ps(x, (__mmask16)~pos, x, _mm512_set1_ps(SG_LRELU_SLOPE));
    case SG_ACT_TANH: return tanh_ps(x);
    case SG_ACT_SIGMOID: return sigmoid_ps(x);
    case SG_ACT_NONE: break;
    }
    return x;
}

/* sg_act_bwd_scalar on 16 lanes: gradient g at activation output y, with the
 * reference's roundings: g fma(-y, y, 1) (ATen fuses 1 - y y); (g (1 - y)) y. */
static inline __m512 act_bwd_ps(__m512 g, __m512 y, sg_act act)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __mmask16 pos;
    switch (act) {
    case SG_ACT_RELU:
        pos = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ);
        return _mm512_maskz_mov_ps(pos, g);
    case SG_ACT_LRELU:
        pos = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ);
        return _mm512_mask_mul_ps(g, (__mmask16)~pos, g, _mm512_set1_ps(SG_LRELU_SLOPE));
    case SG_ACT_TANH: return _mm512_mul_ps(g, _mm512_fnmadd_ps(y, y, one));
    case SG_ACT_SIGMOID: return _mm512_mul_ps(_mm512_mul_ps(g, _mm512_sub_ps(one, y)), y);
    case SG_ACT_NONE: break;
    }
    return g;
}

/* Lanes [0, n) of a 16-lane mask, n <= 16. */
static inline __mmask16 lanes(size_t n) { return (__mmask16)((1u << n) - 1u); }

/* ---- micro-kernel --------------------------------------------------------- */

/* The epilogue on a finished 10 x 32 tile of C: bias, forward activation,
 * backward activation against Y, as ref.c's epi_scalar does per element. The
 * fields are read once: stores to C could alias *epi as far as C knows. */
static void epilogue_10x32(float *c, size_t ldc, const sg_epi *epi)
{
    const float *bias = epi->bias, *y = epi->y;
    const sg_act act = epi->act, dact = epi->dact;
    const size_t ldy = epi->ldy;
    for (int i = 0; i < MR; i++)
        for (int h = 0; h < NR; h += 16) {
            float *ci = c + (size_t)i * ldc + h;
            __m512 v = _mm512_loadu_ps(ci);
            if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + h));
            v = act_fwd_ps(v, act);
            if (dact != SG_ACT_NONE)
                v = act_bwd_ps(v, _mm512_loadu_ps(y + (size_t)i * ldy + h), dact);
            _mm512_storeu_ps(ci, v);
        }
}

/* C[10, 32] (+)= A[10, K] B[K, 32], then the epilogue. Register use in the
 * K loop: acc[i][0..1] (zmm, 20) hold row i's two 16-column halves; b0, b1
 * (zmm, 2) are the k step's B row, loaded first because all 20 FMAs of the
 * step read them; each A element is broadcast once per step and feeds the
 * two FMAs of its row. The loop is unrolled by 4 (4 steps read 8 cache
 * lines of B and 2.5 of A). The C tile's 20 lines are prefetched one per
 * iteration over the last 20 iterations (all at entry when K is short): early
 * enough that the stores at the end do not wait on them, and spread so that
 * the misses (C is often in L3) do not take all the L1 fill buffers at once
 * while the A panel streams in. Prefetching them all at entry ran the
 * micro-kernel at 155 GFLOP/s against 170 with C spread over a 4 MiB
 * matrix (175 with C in L1). */
static void sgemm_ukr_avx512_10x32(size_t K, const float *a, const float *b, float *c, size_t ldc,
                                   int accumulate, const sg_epi *epi)
{
    const size_t iters = K / 4;
    for (size_t l = 0; l + iters < 2 * MR; l++)
        _mm_prefetch((const char *)(c + (l >> 1) * ldc + (l & 1) * 16), _MM_HINT_T0);

    __m512 acc[MR][2];
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();

    size_t p = 0;
    for (size_t it = 0; it < iters; it++, p += 4) {
        if (iters - it <= 2 * MR) {
            size_t l = 2 * MR - (iters - it);
            _mm_prefetch((const char *)(c + (l >> 1) * ldc + (l & 1) * 16), _MM_HINT_T0);
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m512 b0 = _mm512_loadu_ps(b + u * NR);
            __m512 b1 = _mm512_loadu_ps(b + u * NR + 16);
#pragma GCC unroll 10
            for (int i = 0; i < MR; i++) {
                __m512 ai = _mm512_set1_ps(a[u * MR + i]);
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            }
        }
        a += 4 * MR;
        b += 4 * NR;
    }
    for (; p < K; p++) {
        __m512 b0 = _mm512_loadu_ps(b);
        __m512 b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 10
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }

    /* The finished sums (C + acc when accumulating) go to C straight from
     * the accumulators; an epilogue then rereads the tile from L1, so that
     * its activation math does not compete with 20 live accumulators for
     * registers. */
#pragma GCC unroll 10
    for (int i = 0; i < MR; i++) {
        float *ci = c + (size_t)i * ldc;
        __m512 v0 = acc[i][0], v1 = acc[i][1];
        if (accumulate) {
            v0 = _mm512_add_ps(_mm512_loadu_ps(ci), v0);
            v1 = _mm512_add_ps(_mm512_loadu_ps(ci + 16), v1);
        }
        _mm512_storeu_ps(ci, v0);
        _mm512_storeu_ps(ci + 16, v1);
    }
    if (epi) epilogue_10x32(c, ldc, epi);
}

/* ---- packing -------------------------------------------------------------- */

/* rs == 1 with narrow panels (w < 16: the A panels of MR = 10), the whole
 * panels' first k / 16 * 16 steps. 16 k steps of a panel are 16 w-element
 * chunks of 16 source rows (chunk r is row p0 + r) and 16 w contiguous floats
 * of dst, so they are built as w whole vectors: vector j lane l is element
 * (16 j + l) % w of chunk (16 j + l) / w, one masked permute per chunk that
 * reaches vector j (16 + w - 1 in all). Against a masked w-lane store per k
 * step, which splits a cache line every other step, this packed a 256 x 100
 * operand in 3.6 against 6.3 us (784 x 200: 19 against 46 us). Returns the
 * steps done. */
static inline __attribute__((always_inline)) size_t
pack_narrow_blocks(float *dst, const float *src, size_t cs, size_t panels, size_t k, const size_t w)
{
    __m512i idx[16];
#pragma GCC unroll 16
    for (size_t j = 0; j < w; j++) {
        int e[16];
        for (int l = 0; l < 16; l++) e[l] = (int)((16 * j + (size_t)l) % w);
        idx[j] = _mm512_loadu_si512(e);
    }
    const __mmask16 load = lanes(w);
    const size_t steps = k / 16 * 16;
    for (size_t p0 = 0; p0 < steps; p0 += 16)
        for (size_t q = 0; q < panels; q++) {
            const float *s = src + p0 * cs + q * w;
            float *d = dst + q * k * w + p0 * w;
            __m512 chunk[16];
#pragma GCC unroll 16
            for (int r = 0; r < 16; r++) chunk[r] = _mm512_maskz_loadu_ps(load, s + (size_t)r * cs);
#pragma GCC unroll 16
            for (size_t j = 0; j < w; j++) {
                size_t f0 = 16 * j, r0 = f0 / w, r1 = (f0 + 15) / w;
                __m512 v = _mm512_setzero_ps();
#pragma GCC unroll 3
                for (size_t r = r0; r <= r1; r++) {
                    /* lanes l with (16 j + l) / w == r: l from r w - 16 j up to (r + 1) w - 16 j */
                    size_t lo = r * w > f0 ? r * w - f0 : 0, hi = (r + 1) * w - f0;
                    hi = hi < 16 ? hi : 16;
                    __mmask16 mk = (__mmask16)(lanes(hi) & ~lanes(lo));
                    v = _mm512_mask_permutexvar_ps(v, mk, idx[j], chunk[r]);
                }
                _mm512_storeu_ps(d + 16 * j, v);
            }
        }
    return steps;
}

/* rs == 1: for each k step a panel's w elements are contiguous in src. The
 * k steps go in the outer loop, so src is read row by row, sequentially
 * across all of its panels (the order the hardware prefetcher follows; the
 * other order walks down columns a page apart), and each panel's step is
 * w/16 vector copies, masked only at the panel's last 16 lanes and in the
 * last panel, whose rows past m load as zeros. Narrow panels take their
 * blocks of 16 steps from pack_narrow_blocks. */
static void pack_rows_contiguous(float *dst, const float *src, size_t cs, size_t m, size_t k,
                                 size_t w)
{
    const size_t full = m / w, rest = m % w; /* whole panels, rows of the last */
    const size_t w16 = w / 16 * 16;
    const __mmask16 tail = lanes(w - w16);
    size_t p0 = 0;
    if (w == MR) p0 = pack_narrow_blocks(dst, src, cs, full, k, MR);
    for (size_t p = p0; p < k; p++) {
        const float *s = src + p * cs;
        float *d = dst + p * w;
        for (size_t q = 0; q < full; q++, s += w, d += k * w) {
            for (size_t j = 0; j < w16; j += 16) _mm512_storeu_ps(d + j, _mm512_loadu_ps(s + j));
            if (tail) _mm512_mask_storeu_ps(d + w16, tail, _mm512_maskz_loadu_ps(tail, s + w16));
        }
    }
    for (size_t p = 0; rest && p < k; p++) {
        const float *s = src + p * cs + full * w;
        float *d = dst + full * k * w + p * w;
        for (size_t j = 0; j < w; j += 16) {
            size_t width = w - j < 16 ? w - j : 16;
            size_t valid = rest > j ? (rest - j < width ? rest - j : width) : 0;
            _mm512_mask_storeu_ps(d + j, lanes(width), _mm512_maskz_loadu_ps(lanes(valid), s + j));
        }
    }
}

/* In-register transpose of 16 rows of 16: r[i] lane j becomes r[j] lane i.
 * Stages: interleave 32-bit pairs, 64-bit pairs, then 128-bit lanes twice. */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    /* t[2m] holds, per 128-bit lane L, columns 4L and 4L + 1 of rows 2m and
     * 2m + 1 interleaved; t[2m + 1] columns 4L + 2 and 4L + 3. */
    for (int i = 0; i < 16; i += 4)
        for (int j = 0; j < 2; j++) {
            __m512d lo = _mm512_castps_pd(t[i + j]), hi = _mm512_castps_pd(t[i + j + 2]);
            r[i + 2 * j] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi));
            r[i + 2 * j + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi));
        }
    /* r[4g + c] now holds, in each 128-bit lane L, column 4L + c of rows
     * 4g..4g+3. Two rounds of 128-bit shuffles gather column c's four
     * pieces (0x88 takes lanes 0 and 2 of both sources, 0xdd lanes 1 and 3). */
    for (int i = 0; i < 8; i++) {
        int g = i / 4 * 8 + i % 4; /* r[g], r[g + 4]: same c, row groups 4 apart */
        t[i] = _mm512_shuffle_f32x4(r[g], r[g + 4], 0x88);
        t[i + 8] = _mm512_shuffle_f32x4(r[g], r[g + 4], 0xdd);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 4], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 4], 0xdd);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 8], t[i + 12], 0x88);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 8], t[i + 12], 0xdd);
    }
}

/* cs == 1: each of the panel's rows is contiguous along k, so blocks of 16
 * rows x 16 k steps are loaded (masked at the edges, zeros past m) and
 * transposed in registers, then stored as 16 k steps of the panel. */
static void pack_rows_transposed(float *dst, const float *src, size_t rs, size_t m, size_t k,
                                 size_t w)
{
    for (size_t i0 = 0; i0 < m; i0 += w) {
        size_t rows = m - i0 < w ? m - i0 : w;
        for (size_t g = 0; g < w; g += 16) {
            size_t width = w - g < 16 ? w - g : 16;
            size_t valid = rows > g ? (rows - g < width ? rows - g : width) : 0;
            for (size_t p0 = 0; p0 < k; p0 += 16) {
                size_t steps = k - p0 < 16 ? k - p0 : 16;
                __m512 r[16];
                for (size_t i = 0; i < 16; i++)
                    r[i] = i < valid
                               ? _mm512_maskz_loadu_ps(lanes(steps), src + (i0 + g + i) * rs + p0)
                               : _mm512_setzero_ps();
                transpose16(r);
                for (size_t q = 0; q < steps; q++)
                    _mm512_mask_storeu_ps(dst + (p0 + q) * w + g, lanes(width), r[q]);
            }
        }
        dst += k * w;
    }
}

static void pack_avx512(float *dst, const float *src, size_t rs, size_t cs, size_t m, size_t k,
                        int w)
{
    if (rs == 1)
        pack_rows_contiguous(dst, src, cs, m, k, (size_t)w);
    else if (cs == 1)
        pack_rows_transposed(dst, src, rs, m, k, (size_t)w);
    else
        sg_pack_ref(dst, src, rs, cs, m, k, w);
}

/* ---- normals for z ----------------------------------------------------------- */

/* Philox4x32-10 on 16 counters at once: lane l of c[0..3] is one block's
 * counter, and becomes its four words, bit for bit sg_philox's. The 32 x 32
 * multiplies keep their low halves with mullo and take their high halves
 * from the 64-bit products of the even lanes and of the odd lanes shifted
 * down. */
static inline __m512i mulhi32(__m512i a, __m512i m)
{
    __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(a, m), 32);
    __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    return _mm512_mask_mov_epi32(even, 0xaaaa, odd);
}

static void philox16(__m512i c[4], uint64_t key)
{
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53u), m1 = _mm512_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m512i hi0 = mulhi32(c[0], m0), lo0 = _mm512_mullo_epi32(c[0], m0);
        __m512i hi1 = mulhi32(c[2], m1), lo1 = _mm512_mullo_epi32(c[2], m1);
        c[0] = _mm512_xor_si512(_mm512_xor_si512(hi1, c[1]), _mm512_set1_epi32((int)k0));
        c[1] = lo1;
        c[2] = _mm512_xor_si512(_mm512_xor_si512(hi0, c[3]), _mm512_set1_epi32((int)k1));
        c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* ref.c's log_cephes on 16 lanes, operation for operation (getmant and
 * getexp give its frexpf's mantissa in [1, 2) and exponent exactly). */
static inline __m512 log_ps(__m512 x)
{
    __m512 m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __m512 e = _mm512_getexp_ps(x);
    __mmask16 big = _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_ps(e, big, e, _mm512_set1_ps(1.0f));
    __m512 f = _mm512_sub_ps(m, _mm512_set1_ps(1.0f)), z = _mm512_mul_ps(f, f);
    __m512 p = _mm512_set1_ps(7.0376836292e-2f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.1514610310e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.1676998740e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.2420140846e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.4249322787e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-1.6668057665e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.0000714765e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(-2.4999993993e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(3.3333331174e-1f));
    __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, f), z);
    y = _mm512_fmadd_ps(e, _mm512_set1_ps(-2.12194440e-4f), y);
    y = _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, y);
    return _mm512_fmadd_ps(e, _mm512_set1_ps(0.693359375f), _mm512_add_ps(f, y));
}

/* ref.c's sincos_turns on 16 lanes: sin and cos of 2 pi u, reduced exactly
 * in quarter turns. */
static inline void sincos_turns_ps(__m512 u, __m512 *s, __m512 *c)
{
    __m512 q = _mm512_roundscale_ps(_mm512_mul_ps(u, _mm512_set1_ps(4.0f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(q, _mm512_set1_ps(0.25f), u);
    __m512 r = _mm512_fmadd_ps(f, _mm512_set1_ps(6.28318548202514648f),
                               _mm512_mul_ps(f, _mm512_set1_ps(-1.7484555314e-7f)));
    __m512 z = _mm512_mul_ps(r, r);
    __m512 sp = _mm512_set1_ps(-1.9515295891e-4f);
    sp = _mm512_fmadd_ps(sp, z, _mm512_set1_ps(8.3321608736e-3f));
    sp = _mm512_fmadd_ps(sp, z, _mm512_set1_ps(-1.6666654611e-1f));
    __m512 sr = _mm512_fmadd_ps(_mm512_mul_ps(sp, z), r, r);
    __m512 cp = _mm512_set1_ps(2.443315711809948e-5f);
    cp = _mm512_fmadd_ps(cp, z, _mm512_set1_ps(-1.388731625493765e-3f));
    cp = _mm512_fmadd_ps(cp, z, _mm512_set1_ps(4.166664568298827e-2f));
    __m512 cr = _mm512_fmadd_ps(_mm512_mul_ps(cp, z), z,
                                _mm512_fnmadd_ps(_mm512_set1_ps(0.5f), z, _mm512_set1_ps(1.0f)));
    /* Quarter turns q mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s). */
    __m512i qi = _mm512_cvtps_epi32(q);
    __mmask16 odd = _mm512_test_epi32_mask(qi, _mm512_set1_epi32(1));
    __mmask16 sneg = _mm512_test_epi32_mask(qi, _mm512_set1_epi32(2));
    __mmask16 cneg = _mm512_test_epi32_mask(_mm512_add_epi32(qi, _mm512_set1_epi32(1)),
                                            _mm512_set1_epi32(2));
    __m512 sv = _mm512_mask_mov_ps(sr, odd, cr), cv = _mm512_mask_mov_ps(cr, odd, sr);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    *s = _mm512_mask_xor_ps(sv, sneg, sv, sign);
    *c = _mm512_mask_xor_ps(cv, cneg, cv, sign);
}

/* 64 normals, elements 64 g .. 64 g + 63 (blocks 16 g .. 16 g + 15). */
static void normal64(float out[64], size_t g, uint64_t seed, uint32_t stream, uint32_t c2,
                     uint32_t c1)
{
    __m512i c[4];
    c[0] = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)(16 * g)),
                            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    c[1] = _mm512_set1_epi32((int)c1);
    c[2] = _mm512_set1_epi32((int)c2);
    c[3] = _mm512_set1_epi32((int)stream);
    philox16(c, seed);
    __m512 z[4];
    for (int h = 0; h < 2; h++) {
        /* u1 = (r + 1) 2^-32 and u2 = (r >> 8) 2^-24 as sg_normal_ref forms them. */
        __m512 u1 = _mm512_mul_ps(_mm512_add_ps(_mm512_cvtepu32_ps(c[2 * h]), _mm512_set1_ps(1.0f)),
                                  _mm512_set1_ps(0x1p-32f));
        __m512 u2 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c[2 * h + 1], 8)),
                                  _mm512_set1_ps(0x1p-24f));
        __m512 rad = _mm512_sqrt_ps(_mm512_mul_ps(_mm512_set1_ps(-2.0f), log_ps(u1)));
        __m512 sn, cs;
        sincos_turns_ps(u2, &sn, &cs);
        z[2 * h] = _mm512_mul_ps(rad, cs);
        z[2 * h + 1] = _mm512_mul_ps(rad, sn);
    }
    /* Lane b of z[0..3] holds block b's four outputs; into memory order. */
    __m512 a0 = _mm512_unpacklo_ps(z[0], z[1]), a1 = _mm512_unpackhi_ps(z[0], z[1]);
    __m512 b0 = _mm512_unpacklo_ps(z[2], z[3]), b1 = _mm512_unpackhi_ps(z[2], z[3]);
    /* 128-bit lane L of v[j]: block 4 L + j's four outputs. */
    __m512 v[4] = {
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a0), _mm512_castps_pd(b0))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a0), _mm512_castps_pd(b0))),
        _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a1), _mm512_castps_pd(b1))),
        _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a1), _mm512_castps_pd(b1))),
    };
    /* out[16 L + 4 j ..] = lane L of v[j]: a 4 x 4 transpose of 128-bit lanes. */
    __m512 t0 = _mm512_shuffle_f32x4(v[0], v[1], 0x44), t1 = _mm512_shuffle_f32x4(v[0], v[1], 0xee);
    __m512 t2 = _mm512_shuffle_f32x4(v[2], v[3], 0x44), t3 = _mm512_shuffle_f32x4(v[2], v[3], 0xee);
    _mm512_storeu_ps(out, _mm512_shuffle_f32x4(t0, t2, 0x88));
    _mm512_storeu_ps(out + 16, _mm512_shuffle_f32x4(t0, t2, 0xdd));
    _mm512_storeu_ps(out + 32, _mm512_shuffle_f32x4(t1, t3, 0x88));
    _mm512_storeu_ps(out + 48, _mm512_shuffle_f32x4(t1, t3, 0xdd));
}

/* z[i0, i1) by groups of 64 (sg_normal_groups, ref.c). */
static void normal_avx512(float *z, size_t i0, size_t i1, uint64_t seed, uint32_t stream,
                          uint32_t c2, uint32_t c1)
{
    sg_normal_groups(z, i0, i1, 64, normal64, seed, stream, c2, c1);
}

/* ---- elementwise kernels -------------------------------------------------- */

static void bias_act_fwd_avx512(float *y, size_t ldy, const float *bias, size_t i0, size_t i1,
                                size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++) {
        float *yi = y + i * ldy;
        for (size_t j = 0; j < N; j += 16) {
            __mmask16 k = lanes(N - j < 16 ? N - j : 16);
            __m512 v = _mm512_maskz_loadu_ps(k, yi + j);
            if (bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, bias + j));
            _mm512_mask_storeu_ps(yi + j, k, act_fwd_ps(v, act));
        }
    }
}

static void act_bwd_avx512(float *dx, size_t lddx, const float *dy, size_t lddy, const float *y,
                           size_t ldy, size_t i0, size_t i1, size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++)
        for (size_t j = 0; j < N; j += 16) {
            __mmask16 k = lanes(N - j < 16 ? N - j : 16);
            __m512 g = _mm512_maskz_loadu_ps(k, dy + i * lddy + j);
            __m512 yv = _mm512_maskz_loadu_ps(k, y + i * ldy + j);
            _mm512_mask_storeu_ps(dx + i * lddx + j, k, act_bwd_ps(g, yv, act));
        }
}

/* Four vectors of columns at a time, each summed over the rows in order
 * (0 + dz[0] + dz[1] + ..., the reference's order), so the result is
 * bitwise the reference's. */
static void colsum_avx512(float *db, const float *dz, size_t ldz, size_t M, size_t j0, size_t j1)
{
    size_t j = j0;
    for (; j + 64 <= j1; j += 64) {
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < M; i++) {
            const float *row = dz + i * ldz + j;
            s0 = _mm512_add_ps(s0, _mm512_loadu_ps(row));
            s1 = _mm512_add_ps(s1, _mm512_loadu_ps(row + 16));
            s2 = _mm512_add_ps(s2, _mm512_loadu_ps(row + 32));
            s3 = _mm512_add_ps(s3, _mm512_loadu_ps(row + 48));
        }
        _mm512_storeu_ps(db + j, s0);
        _mm512_storeu_ps(db + j + 16, s1);
        _mm512_storeu_ps(db + j + 32, s2);
        _mm512_storeu_ps(db + j + 48, s3);
    }
    for (; j < j1; j += 16) {
        __mmask16 k = lanes(j1 - j < 16 ? j1 - j : 16);
        __m512 s = _mm512_setzero_ps();
        for (size_t i = 0; i < M; i++)
            s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(k, dz + i * ldz + j));
        _mm512_mask_storeu_ps(db + j, k, s);
    }
}

/* (y - t) / max((1 - y) y, 1e-12) / count, the reference's bce_grad_elem. */
static inline __m512 bce_grad_ps(__m512 y, __m512 t, __m512 count)
{
    __m512 w = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(1.0f), y), y);
    w = _mm512_max_ps(w, _mm512_set1_ps(1e-12f)); /* NaN w gives 1e-12, as fmaxf */
    return _mm512_div_ps(_mm512_div_ps(_mm512_sub_ps(y, t), w), count);
}

static void bce_bwd_avx512(float *dy, const float *y, const float *t, float count, size_t i0,
                           size_t i1)
{
    const __m512 cnt = _mm512_set1_ps(count);
    for (size_t i = i0; i < i1; i += 16) {
        __mmask16 k = lanes(i1 - i < 16 ? i1 - i : 16);
        __m512 g =
            bce_grad_ps(_mm512_maskz_loadu_ps(k, y + i), _mm512_maskz_loadu_ps(k, t + i), cnt);
        _mm512_mask_storeu_ps(dy + i, k, g);
    }
}

/* y by sigmoid_ps, dz from y with the reference's operations (so dz is 0
 * exactly where y is 0 or 1), the loss by the reference's libm logs. */
static void sigmoid_bce_avx512(float *y, float *loss, float *dz, const float *z, const float *t,
                               float count, size_t i0, size_t i1)
{
    const __m512 cnt = _mm512_set1_ps(count);
    for (size_t i = i0; i < i1; i += 16) {
        __mmask16 k = lanes(i1 - i < 16 ? i1 - i : 16);
        __m512 s = sigmoid_ps(_mm512_maskz_loadu_ps(k, z + i));
        __m512 g = bce_grad_ps(s, _mm512_maskz_loadu_ps(k, t + i), cnt);
        _mm512_mask_storeu_ps(y + i, k, s);
        _mm512_mask_storeu_ps(dz + i, k, act_bwd_ps(g, s, SG_ACT_SIGMOID));
    }
    sg_bce_fwd_ref(loss, y, t, i0, i1);
}

/* One pass over p, m, v, g with the reference's roundings: ATen's fused
 * m = fma(c1, g, m b1) and v = fma(c2 g, g, v b2), the rest op by op (no
 * other contraction): bitwise the reference. */
static void adam_avx512(float *p, float *m, float *v, const float *g, size_t i0, size_t i1,
                        const sg_adam_coef *h)
{
    const __m512 b1 = _mm512_set1_ps(h->b1), c1 = _mm512_set1_ps(h->c1);
    const __m512 b2 = _mm512_set1_ps(h->b2), c2 = _mm512_set1_ps(h->c2);
    const __m512 bc2 = _mm512_set1_ps(h->bc2_sqrt), eps = _mm512_set1_ps(h->eps);
    const __m512 neg_step = _mm512_set1_ps(-h->step_size);
    for (size_t i = i0; i < i1; i += 16) {
        __mmask16 k = lanes(i1 - i < 16 ? i1 - i : 16);
        __m512 gi = _mm512_maskz_loadu_ps(k, g + i);
        __m512 mi = _mm512_fmadd_ps(c1, gi, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, m + i), b1));
        __m512 vi = _mm512_fmadd_ps(_mm512_mul_ps(c2, gi), gi,
                                    _mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), b2));
        __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2), eps);
        __m512 pi = _mm512_add_ps(_mm512_maskz_loadu_ps(k, p + i),
                                  _mm512_div_ps(_mm512_mul_ps(neg_step, mi), denom));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, pi);
    }
}

/* The peak: 24 independent FMA chains on __m512 registers (two FMA pipes of latency 4 need 8; 24 leave room). */
static double fma_peak_avx512(size_t iters)
{
    __m512 a[24];
    const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int c = 0; c < 24; c++) a[c] = _mm512_set1_ps((float)c);
    for (size_t n = 0; n < iters; n++)
#pragma GCC unroll 32
        for (int c = 0; c < 24; c++) a[c] = _mm512_fmadd_ps(a[c], x, y);
    __m512 s = a[0];
    for (int c = 1; c < 24; c++) s = _mm512_add_ps(s, a[c]);
    volatile float sink = _mm512_cvtss_f32(s);
    (void)sink;
    return 768.0 * (double)iters;
}

const sg_kernels sg_kernels_avx512 = {
    SG_KERNELS_REF_SLOTS,
    .isa = "avx512",
    .ukr_name = "sgemm_ukr_avx512_10x32",
    .mr = MR,
    .nr = NR,
    .vec_floats = 16,
    .sgemm_ukr = sgemm_ukr_avx512_10x32,
    .pack = pack_avx512,
    .bias_act_fwd = bias_act_fwd_avx512,
    .act_bwd = act_bwd_avx512,
    .colsum = colsum_avx512,
    .sigmoid_bce = sigmoid_bce_avx512,
    .bce_bwd = bce_bwd_avx512,
    .adam = adam_avx512,
    .normal = normal_avx512,
    .fma_peak = fma_peak_avx512,
};
