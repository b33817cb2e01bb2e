/* simd.h: the kernel table, the one interface between portable src/ and the
 * per-ISA files in simd/.
 *
 * Each ISA file (ref.c, avx2.c, avx512.c, neon.c) is compiled with its own -m
 * flags and exports exactly one `const sg_kernels` table. The ISA tables start
 * from the reference table (sg_kernels_ref_init) and overwrite the slots they
 * have fast versions for, so a missing fast kernel falls back with no extra
 * code. src/ never includes an intrinsics header; it calls only through the
 * table selected at run time (src/cpu.c).
 *
 * Conventions: matrices are row-major with an explicit leading dimension;
 * shapes are in capitals (M rows, N columns, K reduction). Elementwise kernels
 * take a slice [i0, i1) of rows so that callers split work as (ith, nth)
 * without any kernel opening its own parallel region. */
#ifndef SIMDGAN_SIMD_H
#define SIMDGAN_SIMD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum sg_act {
    SG_ACT_NONE = 0,
    SG_ACT_RELU,
    SG_ACT_LRELU, /* negative slope SG_LRELU_SLOPE */
    SG_ACT_TANH,
    SG_ACT_SIGMOID,
} sg_act;

#define SG_LRELU_SLOPE 0.2f

/* What the GEMM does to an MR x NR tile after its last K block.
 *   forward :  C = act(acc + bias[n])             (bias may be NULL)
 *   backward:  C = acc * act'(Y)                   (dact != SG_ACT_NONE)
 * act' is computed from the activation's output Y, as PyTorch does for ReLU,
 * Tanh and Sigmoid; for LeakyReLU, Y > 0 exactly when its input X > 0.
 * Pointers are already offset to the tile's first row/column. */
typedef struct sg_epi {
    const float *bias; /* [NR] slice of the bias, or NULL              */
    sg_act act;        /* forward activation applied after the bias    */
    sg_act dact;       /* backward: multiply by the derivative at Y    */
    const float *y;    /* [MR, ldy] activation output, for dact        */
    size_t ldy;
} sg_epi;

/* The micro-kernel: one full MR x NR tile.
 *   a   packed A micro-panel: K steps of MR contiguous floats   [K][MR]
 *   b   packed B micro-panel: K steps of NR contiguous floats   [K][NR]
 *   c   [MR, ldc] row-major output tile
 *   accumulate: 0 -> C = A*B (then epilogue); 1 -> C += A*B (then epilogue)
 *   epi NULL on every K block but the last, and always NULL when the caller
 *       wants raw sums.
 * K may be 0 (then C = 0 or C unchanged, and the epilogue still applies). */
typedef void (*sg_ukr_fn)(size_t K, const float *a, const float *b, float *c,
                          size_t ldc, int accumulate, const sg_epi *epi);

/* Packing, one routine for both operands. Packs an m x k operand whose
 * element (i, p) is src[i * rs + p * cs] into ceil(m / w) panels, each [k][w]
 * (w floats per k step, rows past m zero). A is packed with w = MR and i its
 * row; B with w = NR and i its column, so normal and transposed storage of
 * either operand need no explicit transpose. */
typedef void (*sg_pack_fn)(float *dst, const float *src, size_t rs, size_t cs,
                           size_t m, size_t k, int w);

/* Adam's per-step scalars. PyTorch computes them in double and the float
 * kernels round them once: c1 is (float)(1.0 - 0.9), not 1.0f - 0.9f. */
typedef struct sg_adam_coef {
    float b1, c1;      /* beta1 and 1 - beta1                       */
    float b2, c2;      /* beta2 and 1 - beta2                       */
    float step_size;   /* lr / (1 - beta1^t)                        */
    float bc2_sqrt;    /* sqrt(1 - beta2^t)                         */
    float eps;
} sg_adam_coef;

typedef struct sg_kernels {
    const char *isa;      /* "ref", "avx2", "avx512", "neon"              */
    const char *ukr_name; /* e.g. "sgemm_ukr_avx512_10x32"                */
    int mr, nr;           /* micro-tile geometry                          */
    int vec_floats;       /* floats per vector register (peak arithmetic) */

    sg_ukr_fn sgemm_ukr;
    sg_pack_fn pack;

    /* Unfused epilogue pieces, rows [i0, i1) of an [., N] matrix.
     * bias_act_fwd: Y = act(Y + bias). act_bwd: dX = dY * act'(Y). */
    void (*bias_act_fwd)(float *y, size_t ldy, const float *bias, size_t i0,
                         size_t i1, size_t N, sg_act act);
    void (*act_bwd)(float *dx, size_t lddx, const float *dy, size_t lddy,
                    const float *y, size_t ldy, size_t i0, size_t i1, size_t N,
                    sg_act act);

    /* Bias gradient: db[j] = sum_i dz[i, j] over rows [0, M), for columns
     * [j0, j1). Summed in row order, so the result does not depend on how
     * the columns are split. */
    void (*colsum)(float *db, const float *dz, size_t ldz, size_t M, size_t j0,
                   size_t j1);

    /* Sigmoid + BCE on logits z[i0, i1) with targets t (0 or 1):
     *   y[i] = sigmoid(z[i]);
     *   loss[i] = -(t log y + (1 - t) log(1 - y)), each log clamped at -100;
     *   dy[i] = (y - t) / max((1 - y) y, 1e-12) / count;  dz[i] = dy (1 - y) y,
     * PyTorch's BCELoss backward followed by the sigmoid's, so dz is exactly
     * 0 where y saturated to 0.0f or 1.0f. Unfused callers use sigmoid,
     * bce_fwd and bce_bwd and the act_bwd slot. */
    void (*sigmoid_bce)(float *y, float *loss, float *dz, const float *z,
                        const float *t, float count, size_t i0, size_t i1);
    void (*bce_fwd)(float *loss, const float *y, const float *t, size_t i0,
                    size_t i1);
    void (*bce_bwd)(float *dy, const float *y, const float *t, float count,
                    size_t i0, size_t i1);

    /* Adam, PyTorch 1.13 (torch.optim.Adam, no weight decay, no amsgrad),
     * elements [i0, i1):
     *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;
     *   p = p - step_size * m / (sqrt(v) / bc2_sqrt + eps)
     * with the coefficients of sg_adam_coef. adam is the one-pass
     * fused kernel; the unfused path (src/model.c) runs PyTorch's separate
     * tensor ops as separate passes. */
    void (*adam)(float *p, float *m, float *v, const float *g, size_t i0,
                 size_t i1, const struct sg_adam_coef *h);

    /* Standard normals z[i] for i in [i0, i1): element i is one of the four
     * Box-Muller outputs of Philox4x32-10 block i / 4, counter
     * (i / 4, c1, c2, stream) under key seed (words r0..r3: r0 and r2 give
     * the radius sqrt(-2 ln u1), u1 = (r + 1) 2^-32 in (0, 1]; r1 and r3
     * the angle 2 pi u2, u2 = (r >> 8) 2^-24 in [0, 1); z = radius cos,
     * radius sin). A value depends on i alone, never on [i0, i1), so any
     * split across threads draws the same numbers, and every ISA runs the
     * same operations (vec_kernels.h: its log, sin and cos included), so a
     * seed draws the same z bit for bit on every ISA. */
    void (*normal)(float *z, size_t i0, size_t i1, uint64_t seed,
                   uint32_t stream, uint32_t c2, uint32_t c1);

    /* The ISA's arithmetic peak, for benchmarks: iters rounds of independent
     * FMAs on register-resident accumulators (enough chains to cover the FMA
     * latency); returns the flops performed. */
    double (*fma_peak)(size_t iters);
} sg_kernels;

/* Each ISA file defines its table; those not built for this target are absent
 * and src/cpu.c knows which exist from SIMDGAN_HAVE_* definitions. */
extern const sg_kernels sg_kernels_ref;
extern const sg_kernels sg_kernels_avx2;
extern const sg_kernels sg_kernels_avx512;
extern const sg_kernels sg_kernels_neon;

/* The reference kernels, which every ISA table starts from:
 *   const sg_kernels sg_kernels_avx2 = { SG_KERNELS_REF_SLOTS, .isa = ..., };
 * overrides the slots it has fast versions for (later designated initializers
 * win in C; the simd/ objects build with -Wno-override-init). */
void sg_ukr_ref_4x8(size_t K, const float *a, const float *b, float *c,
                    size_t ldc, int accumulate, const sg_epi *epi);
void sg_pack_ref(float *dst, const float *src, size_t rs, size_t cs, size_t m,
                 size_t k, int w);
void sg_bias_act_fwd_ref(float *y, size_t ldy, const float *bias, size_t i0,
                         size_t i1, size_t N, sg_act act);
void sg_act_bwd_ref(float *dx, size_t lddx, const float *dy, size_t lddy,
                    const float *y, size_t ldy, size_t i0, size_t i1, size_t N,
                    sg_act act);
void sg_colsum_ref(float *db, const float *dz, size_t ldz, size_t M, size_t j0,
                   size_t j1);
void sg_sigmoid_bce_ref(float *y, float *loss, float *dz, const float *z,
                        const float *t, float count, size_t i0, size_t i1);
void sg_bce_fwd_ref(float *loss, const float *y, const float *t, size_t i0,
                    size_t i1);
void sg_bce_bwd_ref(float *dy, const float *y, const float *t, float count,
                    size_t i0, size_t i1);
void sg_adam_ref(float *p, float *m, float *v, const float *g, size_t i0,
                 size_t i1, const sg_adam_coef *h);
double sg_fma_peak_ref(size_t iters);
void sg_normal_ref(float *z, size_t i0, size_t i1, uint64_t seed, uint32_t stream,
                   uint32_t c2, uint32_t c1);
/* The vector normal kernels' driver: they draw whole groups of `width`
 * normals (group g is elements g width .. g width + width - 1, width <= 64)
 * with group(); this writes z[i0, i1), whole groups in place and partial
 * ones through a scratch group, so each element's arithmetic is the same
 * wherever the range starts and ends. */
typedef void (*sg_normal_group_fn)(float *out, size_t g, uint64_t seed,
                                   uint32_t stream, uint32_t c2, uint32_t c1);
void sg_normal_groups(float *z, size_t i0, size_t i1, size_t width,
                      sg_normal_group_fn group, uint64_t seed, uint32_t stream,
                      uint32_t c2, uint32_t c1);

/* Philox4x32-10 (Salmon et al., SC'11): four 32-bit words from a 128-bit
 * counter and a 64-bit key (low word first), the generator behind every
 * random number simdgan draws (src/rng.h). */
void sg_philox(uint32_t out[4], const uint32_t ctr[4], uint64_t key);

/* One element's activation and its backward (gradient g at output y), with
 * PyTorch's element formulas: the reference table's, whose tanh and sigmoid
 * are libm's (the yardstick the vector tables' are tested against). */
float sg_act_fwd_scalar(float x, sg_act act);
float sg_act_bwd_scalar(float g, float y, sg_act act);


#define SG_KERNELS_REF_SLOTS                                                   \
    .isa = "ref", .ukr_name = "sgemm_ukr_ref_4x8", .mr = 4, .nr = 8,          \
    .vec_floats = 1, .sgemm_ukr = sg_ukr_ref_4x8, .pack = sg_pack_ref,         \
    .bias_act_fwd = sg_bias_act_fwd_ref, .act_bwd = sg_act_bwd_ref,            \
    .colsum = sg_colsum_ref, .sigmoid_bce = sg_sigmoid_bce_ref,                \
    .bce_fwd = sg_bce_fwd_ref, .bce_bwd = sg_bce_bwd_ref, .adam = sg_adam_ref,  \
    .normal = sg_normal_ref, .fma_peak = sg_fma_peak_ref

#ifdef __cplusplus
}
#endif
#endif
