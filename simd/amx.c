/* amx.c: the bf16 path on Intel AMX (AMX-TILE + AMX-BF16): tdpbf16ps on
 * 16 x 16 fp32 accumulator tiles.
 *
 * Tile use (palette 1; main configuration, every tile 16 rows x 64 bytes):
 *   tmm0 tmm1   C rows 0-15,  columns 0-15 and 16-31   (fp32 16 x 16 each)
 *   tmm2 tmm3   C rows 16-31, columns 0-15 and 16-31
 *   tmm4 tmm5   A rows 0-15 and 16-31, 32 k values     (bf16 16 x 32)
 *   tmm6 tmm7   B k-pairs 0-15, columns 0-15 and 16-31 (bf16 16 x (16 x 2))
 * A 32 x 32 micro-tile: each K block of 32 costs 4 tile loads for 4
 * tdpbf16ps (16 x 16 x 32 multiply-adds each), and the accumulators never
 * leave the tiles. The configuration is loaded once per thread per product
 * (thread_begin) and the tile state released after it (thread_end): a
 * thread holding tile data makes every context switch save 8 KiB more.
 *
 * Layouts (bf16, zero-padded; Kp a multiple of 32):
 *   A panel [Kp / 32][2 halves][16 rows][32 k]: each 16 x 32 block is one
 *     tile load with a 64-byte stride.
 *   B panel [Kp / 32][2 halves][16 k-pairs][16 columns][2]: the "VNNI"
 *     layout tdpbf16ps reads, row k/2 of a B tile holding, per column, the
 *     pair (k, k+1) it multiplies with A's columns k and k+1.
 * Edge tiles: the packs pad rows, columns and K with zeros, the driver runs
 * the edge on a scratch tile; a row panel of at most 16 rows uses only the
 * top half (tmm0, tmm1, tmm4), and a panel whose rows are not a multiple of
 * 16 runs under a second configuration whose partial half has only those
 * rows (4 of a 100-row product's last panel, 8 of a 200-row one's): the
 * main configuration comes back with the next full panel. Each thread keeps
 * track of which is loaded, so a switch costs one ldtilecfg. (Not timed:
 * no machine at hand had AMX.)
 *
 * tdpbf16ps rounds each of its two accumulations per k-pair to nearest even,
 * treats denormal inputs as zero and flushes denormal results (it ignores
 * MXCSR).
 *
 * Built with -mamx-tile -mamx-bf16 and AVX-512 (F, BW, VL: the packs) as its
 * own object. With SG_AMX_EMULATE
 * the same code runs on amx_emu.h's C emulation of the tile instructions
 * (tests/test_bf16 links it as sg_bf16_kernels_amx_emulated), so the
 * layouts and the tile logic are tested on every CPU. */
#include <stdint.h>

#include "bf16.h"

#ifdef __AVX512F__
#include "bf16_x86.h"
#endif

#ifdef SG_AMX_EMULATE
#include "amx_emu.h"
#define SG_AMX_TABLE sg_bf16_kernels_amx_emulated
#define SG_AMX_NAME "bf16_ukr_amx_emulated_32x32"
#else
#include <immintrin.h>
#define SG_AMX_TABLE sg_bf16_kernels_amx
#define SG_AMX_NAME "bf16_ukr_amx_32x32"
#endif

/* LDTILECFG's 64-byte operand. */
typedef struct amx_tilecfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16]; /* bytes per row of tile i */
    uint8_t rows[16];
} amx_tilecfg;

/* The row panel the loaded configuration is for: 32 (the main one, every
 * tile 16 rows), 1-31 (an edge panel of that many rows, not a multiple of
 * 16), 0 (none loaded). */
static _Thread_local unsigned amx_rows;

/* Loads the configuration for a row panel of mr rows, unless it is loaded:
 * the main one, or for an edge panel a second one in which the C and A
 * tiles of its partial 16-row half have only the rows that hold data, so
 * that the TMUL and the tile loads and stores skip the padding rows. */
static void amx_configure(size_t mr)
{
    const unsigned want = mr % 16 ? (unsigned)mr : 32;
    if (want == amx_rows) return;
    amx_tilecfg cfg = {.palette = 1};
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    if (want < 16) /* the top half (tmm0, tmm1 = C; tmm4 = A) */
        cfg.rows[0] = cfg.rows[1] = cfg.rows[4] = (uint8_t)want;
    else if (want < 32) /* the bottom half (tmm2, tmm3 = C; tmm5 = A) */
        cfg.rows[2] = cfg.rows[3] = cfg.rows[5] = (uint8_t)(want - 16);
    _tile_loadconfig(&cfg);
    amx_rows = want;
}

static void amx_begin(void) { amx_configure(32); }

static void amx_end(void)
{
    _tile_release();
    amx_rows = 0;
}

/* Packing. Element (i, p) of the operand is src[i rs + p cs]. Where one of
 * the strides is 1 (every product of the model) the packs round 16 floats
 * at a time with AVX-512 (every CPU with AMX has it) and write whole 64-byte
 * tile rows: a pack cost as much as AMX's whole product when it rounded and
 * placed one element at a time. Two bf16 that the layout puts side by side
 * (A's k and k+1 in a row, B's k-pair of a column) travel as one 32-bit
 * word, so the transposing cases scatter words 64 bytes apart. Other
 * strides take the element-by-element loops. The element of A at (i, p) and
 * of B at (column i, p): */
#define SG_AMX_A(i, p) (((p) / 32 * 2 + (i) / 16) * 512 + (i) % 16 * 32 + (p) % 32)
#define SG_AMX_B(i, p) (((p) / 32 * 2 + (i) / 16) * 512 + (p) % 32 / 2 * 32 + (i) % 16 * 2 + (p) % 2)

static void pack_a_amx(void *dst, const float *src, size_t rs, size_t cs, size_t m, size_t K,
                       int w, const sg_kernels *fk)
{
    (void)w, (void)fk; /* w is always 32 */
    uint16_t *d = dst;
    const size_t Kp = (K + 31) / 32 * 32;
    memset(d, 0, Kp * 32 * sizeof *d);
#ifdef __AVX512F__
    if (cs == 1) { /* rows contiguous: 32 k values of a row make one 64-byte row */
        for (size_t i = 0; i < m; i++)
            for (size_t p = 0; p < K; p += 32)
                _mm512_storeu_si512(d + SG_AMX_A(i, p),
                                    sg_round32(src + i * rs + p, K - p < 32 ? K - p : 32));
        return;
    }
    if (rs == 1) { /* columns contiguous: pairs (k, k+1) of 16 rows, scattered */
        for (size_t h = 0; h * 16 < m; h++) {
            const __mmask16 mask = sg_lanes16(m - h * 16);
            for (size_t p = 0; p < K; p += 2)
                _mm512_i32scatter_epi32(d + SG_AMX_A(h * 16, p), sg_stride16(16),
                                        sg_pair16(src + h * 16, cs, p, K, mask), 4);
        }
        return;
    }
#endif
    for (size_t p = 0; p < K; p++)
        for (size_t i = 0; i < m; i++) d[SG_AMX_A(i, p)] = sg_bf16_round(src[i * rs + p * cs]);
}

/* B's "rows" i are its columns. */
static void pack_b_amx(void *dst, const float *src, size_t rs, size_t cs, size_t m, size_t K,
                       int w, const sg_kernels *fk)
{
    (void)w, (void)fk; /* w is always 32 */
    uint16_t *d = dst;
    const size_t Kp = (K + 31) / 32 * 32;
    memset(d, 0, Kp * 32 * sizeof *d);
#ifdef __AVX512F__
    if (rs == 1) { /* B row-major: pairs of rows, 16 columns, one 64-byte tile row */
        for (size_t h = 0; h * 16 < m; h++) {
            const __mmask16 mask = sg_lanes16(m - h * 16);
            for (size_t p = 0; p < K; p += 2)
                _mm512_storeu_si512(d + SG_AMX_B(h * 16, p), sg_pair16(src + h * 16, cs, p, K, mask));
        }
        return;
    }
    if (cs == 1) { /* a column's k values contiguous (W^T): its 16 pairs, scattered */
        for (size_t i = 0; i < m; i++)
            for (size_t p = 0; p < K; p += 32)
                _mm512_i32scatter_epi32(d + SG_AMX_B(i, p), sg_stride16(16),
                                        sg_round32(src + i * rs + p, K - p < 32 ? K - p : 32), 4);
        return;
    }
#endif
    for (size_t p = 0; p < K; p++)
        for (size_t i = 0; i < m; i++) d[SG_AMX_B(i, p)] = sg_bf16_round(src[i * rs + p * cs]);
}

static void ukr_amx(size_t Kp, const void *a_, const void *b_, float *c, size_t ldc,
                    int accumulate, size_t mr, const sg_kernels *fk)
{
    (void)fk;
    const uint16_t *a = a_, *b = b_;
    const size_t ldb = ldc * sizeof(float);
    const int lower = mr > 16; /* rows 16-31 hold data */
    amx_configure(mr);
    if (accumulate) {
        _tile_loadd(0, c, ldb);
        _tile_loadd(1, c + 16, ldb);
        if (lower) {
            _tile_loadd(2, c + 16 * ldc, ldb);
            _tile_loadd(3, c + 16 * ldc + 16, ldb);
        }
    } else {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    }
    for (size_t kb = 0; kb < Kp / 32; kb++) {
        const uint16_t *ak = a + kb * 1024, *bk = b + kb * 1024;
        _tile_loadd(4, ak, 64);
        _tile_loadd(6, bk, 64);
        _tile_loadd(7, bk + 512, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        if (lower) {
            _tile_loadd(5, ak + 512, 64);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, c, ldb);
    _tile_stored(1, c + 16, ldb);
    if (lower) {
        _tile_stored(2, c + 16 * ldc, ldb);
        _tile_stored(3, c + 16 * ldc + 16, ldb);
    }
}

/* The matrix unit's peak: 4 independent accumulator tiles, each tdpbf16ps
 * 16 x 16 x 32 multiply-adds, operands resident in tmm4-tmm7 (loaded once).
 * The products' inputs are zeros: the unit's speed does not depend on the
 * values. */
static double peak_amx(size_t iters)
{
    static _Alignas(64) uint16_t zero[1024];
    static _Alignas(64) float out[4][256];
    amx_begin();
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, zero, 64);
    _tile_loadd(5, zero + 512, 64);
    _tile_loadd(6, zero, 64);
    _tile_loadd(7, zero + 512, 64);
    for (size_t it = 0; it < iters; it++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, out[0], 64);
    _tile_stored(1, out[1], 64);
    _tile_stored(2, out[2], 64);
    _tile_stored(3, out[3], 64);
    amx_end();
    return (double)iters * 4.0 * 16 * 16 * 32 * 2;
}

const sg_bf16_kernels SG_AMX_TABLE = {
    .path = "amx",
    .ukr_name = SG_AMX_NAME,
    .mr = 32,
    .nr = 32,
    .kstep = 32,
    .elem = 2,
    .pack_a = pack_a_amx,
    .pack_b = pack_b_amx,
    .ukr = ukr_amx,
    .thread_begin = amx_begin,
    .thread_end = amx_end,
    .peak = peak_amx,
};
