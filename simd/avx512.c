/* avx512.c: the AVX-512 (F/VL/BW/DQ) kernel table.
 *
 * Built with -mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma and run
 * only when src/cpu.c finds those features and the OS saves ZMM and opmask
 * state. Starts from the reference table; the elementwise slots, the
 * micro-kernel's epilogue, the pack slot's dispatch and the peak loop come
 * from vec_kernels.h on the 16-lane shim vec_avx512.h (bitwise the other
 * tables' results); this file holds the micro-kernel and the packs.
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
 * ranges. */
#include "simd.h"
#include "vec_avx512.h"

enum { MR = 10, NR = 32 };

#define SG_VEC_FN(name) name##_avx512
#define SG_VEC_LINKAGE static
#include "vec_kernels.h"

/* ---- micro-kernel --------------------------------------------------------- */

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
    if (epi) v_epilogue(c, ldc, epi);
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

const sg_kernels sg_kernels_avx512 = {
    SG_KERNELS_REF_SLOTS,
    SG_VEC_SLOTS,
    .isa = "avx512",
    .ukr_name = "sgemm_ukr_avx512_10x32",
    .mr = MR,
    .nr = NR,
    .sgemm_ukr = sgemm_ukr_avx512_10x32,
};
