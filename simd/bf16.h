/* bf16.h: the bf16 kernel table, the interface between the portable bf16
 * GEMM driver (src/gemm_bf16.c) and the per-path files in simd/: amx.c
 * (x86 AMX-BF16, tdpbf16ps), avx512_bf16.c (x86 AVX512_BF16, vdpbf16ps),
 * neon_bf16.c (Arm BF16, BFMMLA) and bf16_ref.c
 * (every other CPU: bf16-rounded operands through the fp32 micro-kernel of
 * the running kernel table, i.e. fp32 FMAs on bf16-rounded inputs).
 *
 * bf16 here means what `simdgan train --precision bf16` means: each GEMM
 * operand is rounded to bf16 (round to nearest even) when it is packed; the
 * products of two bf16 values are exact in fp32, and accumulation is fp32.
 * Every path rounds with sg_bf16_round below, in software, so that every path
 * packs the same bits (hardware converts differ on denormals: Intel's
 * vcvtneps2bf16 flushes them, Arm's BFCVT follows FPCR.FZ).
 *
 * A path packs each operand into its own panel layout (whatever its matrix
 * instruction reads), zero-padded to whole MR x NR tiles and to a multiple
 * of kstep in K, so edge tiles need no second kernel: the driver runs them on
 * a scratch tile and copies the valid part out. Every layout (A's and B's)
 * is K-major in blocks of kstep steps by the panel's width, one block after
 * the other, and NR is a multiple of kstep: steps [p0, p1) of a panel (p0 a
 * multiple of kstep) can then be packed on their own, p0 w elements in. So
 * Adam rewrites the bf16 copies of the weights it has just updated, and a
 * product's epilogue packs each finished tile of its output (columns [j, j +
 * NR)) as steps of the next product's A. */
#ifndef SIMDGAN_BF16_H
#define SIMDGAN_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "simd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* fp32 -> bf16, round to nearest, ties to even. Inf stays Inf, a finite
 * value that rounds past the largest bf16 becomes Inf (as IEEE rounding
 * does), denormals round like any other value (no flush), and a NaN stays a
 * NaN of the same sign with its quiet bit set (so that rounding can never
 * carry a NaN's payload into Inf). PyTorch writes every NaN as 0x7fc0. */
static inline uint16_t sg_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    /* Branch-free, so that loops of it vectorize. */
    const uint32_t nan = (u >> 16) | 0x0040u, rne = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rne);
}

static inline float sg_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x rounded to the nearest bf16, as a float. */
static inline float sg_bf16_roundf(float x) { return sg_bf16_to_f32(sg_bf16_round(x)); }

/* Packs one panel: the m <= w rows of an operand whose element (i, p) is
 * src[i * rs + p * cs], p in [0, K), into the path's layout for a panel of
 * w rows (MR for A, NR for B; B's "rows" are its columns) and Kp =
 * round_up(K, kstep) steps, zeros past m and past K. w is the table's mr or
 * nr (the ref path takes them from the fp32 table at run time, and packs
 * with its pack slot). */
typedef void (*sg_bf16_pack_fn)(void *dst, const float *src, size_t rs, size_t cs, size_t m,
                                size_t K, int w, const sg_kernels *fk);

/* One MR x NR tile of raw sums over Kp (a multiple of kstep):
 *   c[MR, ldc] = (accumulate ? c : 0) + A panel . B panel
 * mr (1..MR) is how many of the tile's rows hold data: a kernel may skip
 * work past it (rows past mr of c are then left with garbage, which the
 * driver discards). fk is the fp32 kernel table of this run (the ref path
 * calls its micro-kernel; the others ignore it). */
typedef void (*sg_bf16_ukr_fn)(size_t Kp, const void *a, const void *b, float *c, size_t ldc,
                               int accumulate, size_t mr, const sg_kernels *fk);

typedef struct sg_bf16_kernels {
    const char *path;     /* "amx", "avx512bf16", "bfmmla", "ref"          */
    const char *ukr_name; /* e.g. "bf16_ukr_amx_32x32"                     */
    int mr, nr;           /* tile geometry; 0: the fp32 table's (ref path) */
    int kstep;            /* K is zero-padded to a multiple of this        */
    int elem;             /* bytes per packed element: 2 (bf16), 4 (fp32)  */
    sg_bf16_pack_fn pack_a, pack_b;
    sg_bf16_ukr_fn ukr;
    /* Per-thread set-up around a thread's tiles, or NULL: AMX loads its tile
     * configuration in begin and frees the tile state (tilerelease) in end,
     * so that a thread holds no tile state between products. */
    void (*thread_begin)(void);
    void (*thread_end)(void);
    /* The matrix unit's register-resident peak, for benchmarks: iters rounds
     * of independent products on register-resident accumulators; returns the
     * flops performed. NULL where the path has no matrix unit. */
    double (*peak)(size_t iters);
} sg_bf16_kernels;

/* The tables; amx, avx512bf16 and bfmmla exist only where built
 * (SIMDGAN_HAVE_AMX, SIMDGAN_HAVE_AVX512BF16, SIMDGAN_HAVE_BFMMLA), and
 * src/cpu.c chooses among them. */
extern const sg_bf16_kernels sg_bf16_kernels_ref;
extern const sg_bf16_kernels sg_bf16_kernels_amx;
extern const sg_bf16_kernels sg_bf16_kernels_avx512bf16;
extern const sg_bf16_kernels sg_bf16_kernels_bfmmla;

#ifdef __cplusplus
}
#endif
#endif
