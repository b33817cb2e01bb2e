/* ref.c: the scalar reference kernels, portable C with no -m flags.
 *
 * Every slot of the kernel table has its definition here, written for
 * clarity and with PyTorch 1.13's element formulas and operation order, so
 * that the fast ISA files have something exact to be tested against and to
 * fall back on. The reference table itself uses a 4x8 micro-tile. */
#include "simd.h"

#include <math.h>
#include <string.h>

float sg_act_fwd_scalar(float x, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case SG_ACT_LRELU: return x > 0.0f ? x : x * SG_LRELU_SLOPE;
    case SG_ACT_TANH: return tanhf(x);
    case SG_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case SG_ACT_NONE: break;
    }
    return x;
}

/* threshold_backward, leaky_relu_backward, tanh_backward, sigmoid_backward. */
float sg_act_bwd_scalar(float g, float y, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return y > 0.0f ? g : 0.0f;
    case SG_ACT_LRELU: return y > 0.0f ? g : g * SG_LRELU_SLOPE;
    case SG_ACT_TANH: return g * fmaf(-y, y, 1.0f); /* ATen fuses 1 - y*y */
    case SG_ACT_SIGMOID: return g * (1.0f - y) * y;
    case SG_ACT_NONE: break;
    }
    return g;
}

/* The epilogue on one element: v is the finished sum (C + acc or acc). */
static float epi_scalar(float v, const sg_epi *epi, size_t i, size_t j)
{
    if (epi->bias) v += epi->bias[j];
    v = sg_act_fwd_scalar(v, epi->act);
    if (epi->dact != SG_ACT_NONE) v = sg_act_bwd_scalar(v, epi->y[i * epi->ldy + j], epi->dact);
    return v;
}

void sg_ukr_ref_4x8(size_t K, const float *a, const float *b, float *c, size_t ldc,
                    int accumulate, const sg_epi *epi)
{
    enum { MR = 4, NR = 8 };
    float acc[MR][NR] = {{0}};
    for (size_t p = 0; p < K; p++)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[p * MR + i] * b[p * NR + j];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float v = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
            c[i * ldc + j] = epi ? epi_scalar(v, epi, (size_t)i, (size_t)j) : v;
        }
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

void sg_bias_act_fwd_ref(float *y, size_t ldy, const float *bias, size_t i0, size_t i1, size_t N,
                         sg_act act)
{
    for (size_t i = i0; i < i1; i++)
        for (size_t j = 0; j < N; j++) {
            float v = y[i * ldy + j];
            if (bias) v += bias[j];
            y[i * ldy + j] = sg_act_fwd_scalar(v, act);
        }
}

void sg_act_bwd_ref(float *dx, size_t lddx, const float *dy, size_t lddy, const float *y,
                    size_t ldy, size_t i0, size_t i1, size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++)
        for (size_t j = 0; j < N; j++)
            dx[i * lddx + j] = sg_act_bwd_scalar(dy[i * lddy + j], y[i * ldy + j], act);
}

void sg_colsum_ref(float *db, const float *dz, size_t ldz, size_t M, size_t j0, size_t j1)
{
    for (size_t j = j0; j < j1; j++) db[j] = 0.0f;
    for (size_t i = 0; i < M; i++)
        for (size_t j = j0; j < j1; j++) db[j] += dz[i * ldz + j];
}

/* binary_cross_entropy_out_cpu: (t - 1) max(log(1 - y), -100) - t max(log y, -100),
 * log(1 - y) in float as PyTorch 1.13 computes it (not log1p). */
static float bce_elem(float y, float t)
{
    float l1 = fmaxf(logf(1.0f - y), -100.0f);
    float l0 = fmaxf(logf(y), -100.0f);
    return (t - 1.0f) * l1 - t * l0;
}

/* binary_cross_entropy_backward_out_cpu with grad_output 1, then the mean's
 * division by the element count. */
static float bce_grad_elem(float y, float t, float count)
{
    return (y - t) / fmaxf((1.0f - y) * y, 1e-12f) / count;
}

void sg_bce_fwd_ref(float *loss, const float *y, const float *t, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++) loss[i] = bce_elem(y[i], t[i]);
}

void sg_bce_bwd_ref(float *dy, const float *y, const float *t, float count, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++) dy[i] = bce_grad_elem(y[i], t[i], count);
}

void sg_sigmoid_bce_ref(float *y, float *loss, float *dz, const float *z, const float *t,
                        float count, size_t i0, size_t i1)
{
    for (size_t i = i0; i < i1; i++) {
        float s = sg_act_fwd_scalar(z[i], SG_ACT_SIGMOID);
        y[i] = s;
        loss[i] = bce_elem(s, t[i]);
        dz[i] = sg_act_bwd_scalar(bce_grad_elem(s, t[i], count), s, SG_ACT_SIGMOID);
    }
}

/* exp_avg.mul_(b1).add_(g, alpha=c1); exp_avg_sq.mul_(b2).addcmul_(g, g, value=c2);
 * denom = exp_avg_sq.sqrt() / bc2_sqrt + eps; p.addcdiv_(exp_avg, denom, value=-step_size).
 * ATen's add and addcmul kernels fuse their multiply-add: m = fma(c1, g, m b1),
 * v = fma(c2 g, g, v b2); the rest rounds op by op. */
void sg_adam_ref(float *p, float *m, float *v, const float *g, size_t i0, size_t i1,
                 const sg_adam_coef *h)
{
    for (size_t i = i0; i < i1; i++) {
        float gi = g[i];
        float mi = fmaf(h->c1, gi, m[i] * h->b1);
        float vi = fmaf(h->c2 * gi, gi, v[i] * h->b2);
        float denom = sqrtf(vi) / h->bc2_sqrt + h->eps;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] + -h->step_size * mi / denom;
    }
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

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void sg_philox(uint32_t out[4], const uint32_t ctr[4], uint64_t key)
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* The generator's float math, which every ISA's normal kernel repeats
 * operation for operation (fmaf where they fuse, the same roundings), so that
 * a seed draws the same z bit for bit on every ISA.
 *
 * ln x for normal positive x, Cephes logf's reduction and polynomial: x =
 * m 2^e with m in [sqrt(1/2), sqrt(2)), ln x = e ln 2 + ln m, ln 2 split in
 * two so that e ln 2 adds no rounding of its own. */
static float log_cephes(float x)
{
    int e2;
    float m = 2.0f * frexpf(x, &e2), e = (float)(e2 - 1); /* m in [1, 2) */
    if (m > 1.41421356237f) {
        m *= 0.5f;
        e += 1.0f;
    }
    float f = m - 1.0f, z = f * f;
    float p = 7.0376836292e-2f;
    p = fmaf(p, f, -1.1514610310e-1f);
    p = fmaf(p, f, 1.1676998740e-1f);
    p = fmaf(p, f, -1.2420140846e-1f);
    p = fmaf(p, f, 1.4249322787e-1f);
    p = fmaf(p, f, -1.6668057665e-1f);
    p = fmaf(p, f, 2.0000714765e-1f);
    p = fmaf(p, f, -2.4999993993e-1f);
    p = fmaf(p, f, 3.3333331174e-1f);
    float y = p * f * z;
    y = fmaf(e, -2.12194440e-4f, y);
    y = fmaf(-0.5f, z, y);
    return fmaf(e, 0.693359375f, f + y);
}

/* sin and cos of 2 pi u for u in [0, 1) a multiple of 2^-24. The reduction
 * is exact in turns: q = round(4 u), f = u - q / 4 in [-1/8, 1/8]; then r =
 * 2 pi f (2 pi in two parts) and Cephes sinf's and cosf's polynomials on
 * |r| <= pi / 4, rotated by q quarter turns. */
static void sincos_turns(float u, float *s, float *c)
{
    float q = nearbyintf(u * 4.0f);
    float f = fmaf(-q, 0.25f, u);
    float r = fmaf(f, 6.28318548202514648f, f * -1.7484555314e-7f);
    float z = r * r;
    float sp = fmaf(fmaf(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f);
    float sr = fmaf(sp * z, r, r);
    float cp = fmaf(fmaf(2.443315711809948e-5f, z, -1.388731625493765e-3f), z,
                    4.166664568298827e-2f);
    float cr = fmaf(cp * z, z, fmaf(-0.5f, z, 1.0f));
    /* Quarter turns q mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s). */
    int qi = (int)q;
    float sv = qi & 1 ? cr : sr, cv = qi & 1 ? sr : cr;
    *s = qi & 2 ? -sv : sv;
    *c = (qi + 1) & 2 ? -cv : cv;
}

/* Box-Muller on two words gives two normals: r cos(2 pi u2), r sin(2 pi u2)
 * with r = sqrt(-2 ln u1), u1 = (w + 1) 2^-32 in (0, 1] from all 32 bits of
 * one word (so the tails reach 6.66 sigma) and u2 = (w >> 8) 2^-24 from
 * the other. */
void sg_normal_ref(float *dst, size_t i0, size_t i1, uint64_t seed, uint32_t stream, uint32_t c2,
                   uint32_t c1)
{
    uint32_t r[4];
    size_t block = (size_t)-1;
    float z[4] = {0};
    for (size_t i = i0; i < i1; i++) {
        if (i / 4 != block) {
            block = i / 4;
            uint32_t ctr[4] = {(uint32_t)block, c1, c2, stream};
            sg_philox(r, ctr, seed);
            for (int h = 0; h < 2; h++) {
                float u1 = ((float)r[2 * h] + 1.0f) * 0x1p-32f;
                float u2 = (float)(r[2 * h + 1] >> 8) * 0x1p-24f;
                float rad = sqrtf(-2.0f * log_cephes(u1)), sn, cs;
                sincos_turns(u2, &sn, &cs);
                z[2 * h] = rad * cs;
                z[2 * h + 1] = rad * sn;
            }
        }
        dst[i] = z[i % 4];
    }
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
