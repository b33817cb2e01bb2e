/* ref.c: the reference kernel table, portable C with no -m flags.
 *
 * Every slot of the kernel table has its definition here, with PyTorch
 * 1.13's element formulas and operation order, so that the fast ISA files
 * have something exact to be tested against and to fall back on. The
 * elementwise slots, the micro-kernel's epilogue and the normal generator's
 * math are vec_kernels.h on the one-lane shim vec_scalar.h, the same code
 * every ISA runs, so that every table computes the same bits; the
 * micro-kernel (a 4x8 tile), the pack, bce_fwd (libm's logs) and the peak
 * loop are written here.
 *
 * tanh and sigmoid are libm's tanhf and 1 / (1 + expf(-x)) here, not the
 * shim's Cephes-style ones: they are the yardstick the vector ones are
 * tested against, and the reference's micro-kernel (no FMA) leaves less
 * room in the PyTorch fixtures: with the shim's tanh, the saturated one
 * (tests/fixtures/step_sat) went from 1.37e-4 to 2.75e-4 in the gradients,
 * past tests/test_parity.c's bound, where the FMA tables stay at 7.6e-5. */
#include "simd.h"
#include "vec_scalar.h"

#include <math.h>
#include <string.h>

enum { MR = 4, NR = 8 };

static inline float libm_tanh(float x) { return tanhf(x); }
static inline float libm_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

#define SG_VEC_FN(name) sg_##name##_ref
#define SG_VEC_LINKAGE
#define SG_VEC_TANH libm_tanh
#define SG_VEC_SIGMOID libm_sigmoid
#include "vec_kernels.h"

float sg_act_fwd_scalar(float x, sg_act act) { return v_act_fwd(x, act); }

float sg_act_bwd_scalar(float g, float y, sg_act act) { return v_act_bwd(g, y, act); }

void sg_ukr_ref_4x8(size_t K, const float *a, const float *b, float *c, size_t ldc,
                    int accumulate, const sg_epi *epi)
{
    float acc[MR][NR] = {{0}};
    for (size_t p = 0; p < K; p++)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[p * MR + i] * b[p * NR + j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
    if (epi) v_epilogue(c, ldc, epi);
}

void sg_pack_ref(float *dst, const float *src, size_t rs, size_t cs, size_t m, size_t k, int w)
{
    for (size_t i0 = 0; i0 < m; i0 += (size_t)w) {
        size_t rows = m - i0 < (size_t)w ? m - i0 : (size_t)w;
        for (size_t p = 0; p < k; p++) {
            float *d = dst + p * (size_t)w;
            for (size_t i = 0; i < rows; i++) d[i] = src[(i0 + i) * rs + p * cs];
            for (size_t i = rows; i < (size_t)w; i++) d[i] = 0.0f;
        }
        dst += k * (size_t)w;
    }
}

/* binary_cross_entropy_out_cpu: (t - 1) max(log(1 - y), -100) - t max(log y, -100),
 * log(1 - y) in float as PyTorch 1.13 computes it (not log1p). */
static float bce_elem(float y, float t)
{
    float l1 = fmaxf(logf(1.0f - y), -100.0f);
    float l0 = fmaxf(logf(y), -100.0f);
    return (t - 1.0f) * l1 - t * l0;
}

void sg_bce_fwd_ref(float *loss, const float *y, const float *t, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++) loss[i] = bce_elem(y[i], t[i]);
}

/* Thirty-two independent multiply-add chains. The reference kernels build
 * with the target's baseline flags only, so the compiler may vectorize them
 * with its baseline vectors (SSE2 on x86-64, NEON on aarch64) as it does the
 * reference GEMM; this loop vectorizes the same way, so that the peak it
 * measures is the one the reference kernels can reach (a multiply and an add
 * each: the build contracts nothing). */
double sg_fma_peak_ref(size_t iters)
{
    float a[32];
    const float x = 0.999999f, y = 1e-7f;
    for (int c = 0; c < 32; c++) a[c] = (float)c;
    for (size_t n = 0; n < iters; n++)
        for (int c = 0; c < 32; c++) a[c] = a[c] * x + y;
    float s = 0.0f;
    for (int c = 0; c < 32; c++) s += a[c];
    volatile float sink = s;
    (void)sink;
    return 64.0 * (double)iters;
}

const sg_kernels sg_kernels_ref = {SG_KERNELS_REF_SLOTS};

/* ---- random numbers ------------------------------------------------------- */

/* vec_kernels.h's Philox on one lane. */
void sg_philox(uint32_t out[4], const uint32_t ctr[4], uint64_t key)
{
    vu c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    v_philox(c, key);
    memcpy(out, c, sizeof c);
}

void sg_normal_groups(float *z, size_t i0, size_t i1, size_t width, sg_normal_group_fn group,
                      uint64_t seed, uint32_t stream, uint32_t c2, uint32_t c1)
{
    for (size_t g = i0 / width; g * width < i1; g++) {
        size_t g0 = g * width, a = g0 > i0 ? g0 : i0, b = g0 + width < i1 ? g0 + width : i1;
        if (a == g0 && b == g0 + width) {
            group(z + a, g, seed, stream, c2, c1);
        } else {
            float t[64];
            group(t, g, seed, stream, c2, c1);
            memcpy(z + a, t + (a - g0), (b - a) * sizeof(float));
        }
    }
}
