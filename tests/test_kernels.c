/* test_kernels.c: every kernel table built in and runnable here, slot by slot,
 * against the reference kernels (bitwise where the operations are the same)
 * or against double precision (the micro-kernel), with each tolerance written
 * beside its test. Tables this CPU cannot run are listed with the reason; an
 * ISA this CPU supports whose table did not run fails (tables.h). Also: CPU
 * detection, the default choice (the best ISA the CPU supports) and the
 * SIMDGAN_ISA override's errors. */
#define _POSIX_C_SOURCE 200809L
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu.h"
#include "simd.h"
#include "tables.h"
#include "util.h"

#define U_F32 (1.0 / 16777216.0) /* 2^-24, float's unit roundoff */

/* ---- helpers -------------------------------------------------------------- */

static uint64_t rng_state = 0x5eed5eed5eedULL;

static double urand(void) /* splitmix64, uniform in [0, 1) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

static void fill(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) x[i] = frand(lo, hi);
}

static float *alloc_f(size_t n) { return sg_xmalloc((n ? n : 1) * sizeof(float)); }

/* Distance in units in the last place: the number of floats between a and b
 * (0 when both are NaN, huge when one is). */
static int64_t ulp_dist(float a, float b)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return oa > ob ? oa - ob : ob - oa;
}

/* Index of the first element where a and b differ bitwise, or n. */
static size_t first_diff(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return n;
}

#define CHECK_SAME(what, a, b, n)                                                                  \
    do {                                                                                           \
        size_t at_ = first_diff((a), (b), (n));                                                    \
        CHECK(at_ == (n), "%s: %s: element %zu is %.9g, reference %.9g", k->isa, (what), at_,      \
              at_ < (n) ? (double)(a)[at_] : 0.0, at_ < (n) ? (double)(b)[at_] : 0.0);             \
    } while (0)

static const char *act_name(sg_act a)
{
    static const char *const names[] = {"none", "relu", "lrelu", "tanh", "sigmoid"};
    return names[a];
}

/* The vector tanh and sigmoid's bound against libm (tanhf; the reference's
 * 1 / (1 + expf(-x))). tanh: 2 ulp (a Cephes-style polynomial below |x| =
 * 0.625, 1 - 2 / (e^2|x| + 1) above, exp within 1 ulp). sigmoid: 2 ulp
 * where x >= -16.6; below, e^-x > 2^24 and the reference's 1 + e^-x is itself
 * rounded to an even integer, so one ulp of exp can move the result 4. */
static int64_t act_ulps(sg_act act, float x)
{
    if (act == SG_ACT_TANH) return 2;
    if (act == SG_ACT_SIGMOID) return x >= -16.6f ? 2 : 4;
    return 0;
}

/* A plausible activation output y for the backward tests. */
static float rand_y(sg_act act)
{
    float r = frand(-3.0f, 3.0f);
    if (urand() < 0.1) r = 0.0f;
    switch (act) {
    case SG_ACT_RELU: return r > 0.0f ? r : 0.0f;
    case SG_ACT_LRELU: return r > 0.0f ? r : r * SG_LRELU_SLOPE;
    case SG_ACT_TANH: return tanhf(r);
    case SG_ACT_SIGMOID: return 1.0f / (1.0f + expf(-r));
    case SG_ACT_NONE: break;
    }
    return r;
}

/* ---- the micro-kernel ----------------------------------------------------- */

typedef struct epi_case {
    const char *name;
    int bias;
    sg_act act, dact;
    int null_epi;
} epi_case;

/* The activation in double, and the backward factor act'(y) from float y. */
static double act_fwd_d(double v, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return v > 0.0 ? v : 0.0;
    case SG_ACT_LRELU: return v > 0.0 ? v : v * (double)SG_LRELU_SLOPE;
    case SG_ACT_TANH: return tanh(v);
    case SG_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case SG_ACT_NONE: break;
    }
    return v;
}

static double act_dfactor(double y, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return y > 0.0 ? 1.0 : 0.0;
    case SG_ACT_LRELU: return y > 0.0 ? 1.0 : (double)SG_LRELU_SLOPE;
    case SG_ACT_TANH: return 1.0 - y * y;
    case SG_ACT_SIGMOID: return (1.0 - y) * y;
    case SG_ACT_NONE: break;
    }
    return 1.0;
}

/* One tile: K steps, accumulate or not, one epilogue. C sits in a larger
 * buffer (ldc = NR + 5, one extra row) filled with a sentinel, which must
 * survive outside the tile.
 *
 * Tolerance, per element, from the double-precision value v (= sum a b
 * [+ c0] [+ bias]): the float sum of K products has error at most
 * 2K u sum|a b| (u = 2^-24; two roundings per step without FMA, as the
 * reference does, one with), the accumulate and bias additions add u each
 * of their magnitudes, so pre = (2K + 2) u (sum|a b| + |c0| + |bias|).
 * Forward activations have |f'| <= 1, so they carry pre and add their own
 * error: lrelu's 0.2 x one rounding, tanh and sigmoid the ulps of act_ulps
 * (an ulp is at most 2^-23 |result|). Backward: C = v act'(y),
 * act'(y) in [0, 1] computed in float with at most two roundings, each at
 * most u (|act'| + y^2), then the product: pre |act'| + 4 u |v| (|act'| +
 * y^2). A floor of 2^-126 covers results near zero. */
static void ukr_case(const sg_kernels *k, size_t K, int accumulate, const epi_case *ec)
{
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr, ldc = NR + 5, ldy = NR + 3;
    float *a = alloc_f(K * MR), *b = alloc_f(K * NR), *c = alloc_f((MR + 1) * ldc);
    float *c0 = alloc_f(MR * NR), *bias = alloc_f(NR), *y = alloc_f(MR * ldy);
    fill(a, K * MR, -1.0f, 1.0f);
    fill(b, K * NR, -1.0f, 1.0f);
    fill(c0, MR * NR, -2.0f, 2.0f);
    fill(bias, NR, -1.0f, 1.0f);
    for (size_t i = 0; i < MR * ldy; i++) y[i] = rand_y(ec->dact);
    const float sentinel = 12345.5f;
    for (size_t i = 0; i < (MR + 1) * ldc; i++) c[i] = sentinel;
    for (size_t i = 0; i < MR; i++)
        for (size_t j = 0; j < NR; j++) c[i * ldc + j] = accumulate ? c0[i * NR + j] : -777.0f;

    sg_epi epi = {ec->bias ? bias : NULL, ec->act, ec->dact, y, ldy};
    k->sgemm_ukr(K, a, b, c, ldc, accumulate, ec->null_epi ? NULL : &epi);

    double worst = 0.0;
    size_t wi = 0, wj = 0;
    for (size_t i = 0; i < MR; i++)
        for (size_t j = 0; j < NR; j++) {
            double s = 0.0, mag = 0.0;
            for (size_t p = 0; p < K; p++) {
                double t = (double)a[p * MR + i] * (double)b[p * NR + j];
                s += t;
                mag += fabs(t);
            }
            if (accumulate) {
                s += c0[i * NR + j];
                mag += fabs(c0[i * NR + j]);
            }
            if (!ec->null_epi && ec->bias) {
                s += bias[j];
                mag += fabs(bias[j]);
            }
            double pre = (double)(2 * K + 2) * U_F32 * mag, ref = s, tol = pre;
            if (!ec->null_epi) {
                ref = act_fwd_d(s, ec->act);
                if (ec->act == SG_ACT_LRELU) tol += U_F32 * fabs(ref);
                tol += (double)act_ulps(ec->act, (float)s) * 0x1p-23 * fabs(ref);
                if (ec->dact != SG_ACT_NONE) {
                    double yv = y[i * ldy + j], g = act_dfactor(yv, ec->dact);
                    tol = tol * fabs(g) + 4.0 * U_F32 * fabs(ref) * (fabs(g) + yv * yv);
                    ref *= g;
                }
            }
            tol += 0x1p-126;
            double err = fabs((double)c[i * ldc + j] - ref) / tol;
            if (!(err <= worst)) {
                worst = err;
                wi = i;
                wj = j;
            }
        }
    CHECK(worst <= 1.0, "%s ukr K=%zu acc=%d epi=%s: C[%zu][%zu] = %.9g is %.3g x tolerance",
          k->isa, K, accumulate, ec->name, wi, wj, (double)c[wi * ldc + wj], worst);

    size_t bad = 0;
    for (size_t i = 0; i < MR + 1; i++)
        for (size_t j = 0; j < ldc; j++)
            if ((i >= MR || j >= NR) && c[i * ldc + j] != sentinel) bad++;
    CHECK(bad == 0, "%s ukr K=%zu: %zu elements outside the tile were written", k->isa, K, bad);

    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias);
    free(y);
}

static void test_ukr(const sg_kernels *k)
{
    static const size_t Ks[] = {0, 1, 2, 3, 7, 16, 63, 64, 100, 257};
    static const epi_case cases[] = {
        {"NULL", 0, SG_ACT_NONE, SG_ACT_NONE, 1},
        {"none", 0, SG_ACT_NONE, SG_ACT_NONE, 0},
        {"bias", 1, SG_ACT_NONE, SG_ACT_NONE, 0},
        {"relu", 0, SG_ACT_RELU, SG_ACT_NONE, 0},
        {"bias+relu", 1, SG_ACT_RELU, SG_ACT_NONE, 0},
        {"bias+lrelu", 1, SG_ACT_LRELU, SG_ACT_NONE, 0},
        {"lrelu", 0, SG_ACT_LRELU, SG_ACT_NONE, 0},
        {"bias+tanh", 1, SG_ACT_TANH, SG_ACT_NONE, 0},
        {"tanh", 0, SG_ACT_TANH, SG_ACT_NONE, 0},
        {"bias+sigmoid", 1, SG_ACT_SIGMOID, SG_ACT_NONE, 0},
        {"sigmoid", 0, SG_ACT_SIGMOID, SG_ACT_NONE, 0},
        {"drelu", 0, SG_ACT_NONE, SG_ACT_RELU, 0},
        {"dlrelu", 0, SG_ACT_NONE, SG_ACT_LRELU, 0},
        {"dtanh", 0, SG_ACT_NONE, SG_ACT_TANH, 0},
        {"dsigmoid", 0, SG_ACT_NONE, SG_ACT_SIGMOID, 0},
    };
    int before = check_failures;
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
        for (int acc = 0; acc < 2; acc++)
            for (size_t e = 0; e < sizeof cases / sizeof cases[0]; e++)
                ukr_case(k, Ks[ki], acc, &cases[e]);
    printf("  %s: %dx%d micro-kernel vs double: %zu K values x accumulate 0/1 x %zu epilogues%s\n",
           k->ukr_name, k->mr, k->nr, sizeof Ks / sizeof Ks[0], sizeof cases / sizeof cases[0],
           check_failures == before ? "" : " FAILED");
}

/* ---- packing: bitwise equal to sg_pack_ref, and nothing written past the
 * ceil(m / w) panels ---------------------------------------------------------- */

static void pack_case(const sg_kernels *k, size_t m, size_t kk, int w, int layout)
{
    /* layout 0: rs = 1 (a panel's k step is contiguous), 1: cs = 1 (rows
     * contiguous along k), 2: both strides > 1. Leading dimensions padded. */
    size_t ld, rs, cs, n;
    if (layout == 0) {
        ld = m + 3;
        rs = 1;
        cs = ld;
        n = kk * ld;
    } else if (layout == 1) {
        ld = kk + 5;
        rs = ld;
        cs = 1;
        n = m * ld;
    } else {
        ld = 2 * kk + 1;
        rs = ld;
        cs = 2;
        n = m * ld;
    }
    size_t panels = (m + (size_t)w - 1) / (size_t)w, out = panels * (size_t)w * kk + 17;
    float *src = alloc_f(n), *d = alloc_f(out), *r = alloc_f(out);
    fill(src, n, -1.0f, 1.0f);
    for (size_t i = 0; i < out; i++) d[i] = r[i] = -99.0f;
    k->pack(d, src, rs, cs, m, kk, w);
    sg_pack_ref(r, src, rs, cs, m, kk, w);
    char what[96];
    snprintf(what, sizeof what, "pack m=%zu k=%zu w=%d rs=%zu cs=%zu", m, kk, w, rs, cs);
    CHECK_SAME(what, d, r, out);
    free(src);
    free(d);
    free(r);
}

static void test_pack(const sg_kernels *k)
{
    int ws[] = {k->mr, k->nr, 4, 8, 6, 16, 24, 32, 48};
    size_t ks[] = {1, 5, 16, 17, 64, 100};
    int before = check_failures;
    for (size_t wi = 0; wi < sizeof ws / sizeof ws[0]; wi++) {
        size_t w = (size_t)ws[wi];
        size_t ms[] = {1, w - 1 ? w - 1 : 1, w, w + 1, 3 * w + 5};
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int layout = 0; layout < 3; layout++)
                    pack_case(k, ms[mi], ks[ki], (int)w, layout);
    }
    printf("  pack vs reference (bitwise): 9 widths x 5 m x 6 k x 3 layouts%s\n",
           check_failures == before ? "" : " FAILED");
}

/* ---- random numbers ------------------------------------------------------- */

/* Philox4x32-10 against the known-answer vectors of Random123 (the
 * generator's reference implementation, kat_vectors): counter, key (low word
 * first), the four words out. */
static void test_philox(void)
{
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        sg_philox(out, kat[t], (uint64_t)kat[t][5] << 32 | kat[t][4]);
        CHECK(memcmp(out, kat[t] + 6, sizeof out) == 0, "Philox4x32-10 known answer %d: %08x %08x %08x %08x", t,
              out[0], out[1], out[2], out[3]);
    }
    printf("philox: Random123's 3 known-answer vectors\n");
}

/* The reference normals against Box-Muller in double on the same Philox
 * words (and the same float u1): the log, sin and cos of ref.c (which every
 * ISA repeats) stay within 8 float ulps of 1 times the radius, plus one;
 * measured: 3.1 ulps, 6e-7 at most. */
static void test_normal_accuracy(void)
{
    enum { N = 1 << 20 };
    float *z = alloc_f(N);
    sg_normal_ref(z, 0, N, 0x5eedULL, 17, 3, 1);
    double worst = 0.0, maxerr = 0.0;
    size_t at = 0;
    for (size_t blk = 0; blk < N / 4; blk++) {
        uint32_t ctr[4] = {(uint32_t)blk, 1, 3, 17}, r[4];
        sg_philox(r, ctr, 0x5eedULL);
        for (int h = 0; h < 2; h++) {
            double u1 = ((float)r[2 * h] + 1.0f) * 0x1p-32f, u2 = (r[2 * h + 1] >> 8) * 0x1p-24;
            double rad = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
            double e[2] = {rad * cos(a), rad * sin(a)};
            for (int j = 0; j < 2; j++) {
                double err = fabs(z[4 * blk + 2 * h + j] - e[j]);
                double q = err / ((8.0 * rad + 1.0) * U_F32);
                if (err > maxerr) maxerr = err;
                if (q > worst) worst = q, at = 4 * blk + 2 * h + j;
            }
        }
    }
    CHECK(worst <= 1.0, "normal %zu is %.9g: %.2f times the tolerance", at, (double)z[at], worst);
    printf("normal: reference vs double Box-Muller, max error %.2g\n", maxerr);
    free(z);
}

/* Every table's normal slot draws the reference's numbers bit for bit, the
 * same whatever the split into pieces, with the moments of a standard
 * normal. */
static void test_normal(const sg_kernels *k)
{
    enum { N = 1 << 20 };
    const size_t off = 1001; /* an odd start splits a block and a vector group */
    const uint64_t seed = 0x5eedULL;
    float *z = alloc_f(N), *r = alloc_f(N), *w = alloc_f(N);
    k->normal(z, off, N, seed, 17, 3, 1);
    sg_normal_ref(r, off, N, seed, 17, 3, 1);
    size_t at = first_diff(z + off, r + off, N - off);
    CHECK(at == N - off, "normal: element %zu is %.9g, the reference's %.9g", off + at,
          (double)z[off + at], (double)r[off + at]);
    for (size_t i = off, e; i < N; i = e) {
        e = i + 1 + (size_t)(urand() * 200);
        if (e > N) e = N;
        k->normal(w, i, e, seed, 17, 3, 1);
    }
    at = first_diff(w + off, z + off, N - off);
    CHECK(at == N - off, "normal drawn in pieces differs at element %zu", off + at);
    /* Moments over about 2^20 draws, 5 standard errors wide: mean (se
     * 1e-3), variance (se 1.4e-3), kurtosis (se 4.9e-3); |z| <= 6.67. */
    double m1 = 0, m2 = 0, m4 = 0, zmax = 0;
    for (size_t i = off; i < N; i++) {
        double x = z[i];
        m1 += x, m2 += x * x, m4 += x * x * x * x;
        if (fabs(x) > zmax) zmax = fabs(x);
    }
    const double n = (double)(N - off);
    m1 /= n, m2 /= n, m4 /= n;
    CHECK(fabs(m1) < 0.005 && fabs(m2 - 1.0) < 0.007 && fabs(m4 / (m2 * m2) - 3.0) < 0.025 &&
              zmax <= 6.67,
          "normal moments: mean %.5f variance %.5f kurtosis %.4f max |z| %.3f", m1, m2, m4 / (m2 * m2),
          zmax);
    printf("  normal: bitwise the reference's, in any split; mean %.4f var %.4f kurtosis %.3f\n", m1,
           m2, m4 / (m2 * m2));
    free(z);
    free(r);
    free(w);
}

/* ---- elementwise kernels -------------------------------------------------- */

/* bias_act_fwd on rows [1, M - 1) of an M x N matrix with ldy = N + 3:
 * bitwise for none/relu/lrelu (same operations), act_ulps for tanh and
 * sigmoid; rows outside the slice and the padding must be untouched (the
 * reference leaves them alone too, so the whole buffers are compared). */
static void test_bias_act_fwd(const sg_kernels *k)
{
    static const size_t Ns[] = {1, 15, 16, 17, 33, 100, 257};
    const size_t M = 7;
    for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
        for (int act = SG_ACT_NONE; act <= SG_ACT_SIGMOID; act++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                size_t N = Ns[ni], ldy = N + 3, n = M * ldy;
                float *y = alloc_f(n), *r = alloc_f(n), *x = alloc_f(n), *bias = alloc_f(N);
                fill(y, n, -6.0f, 6.0f);
                fill(bias, N, -1.0f, 1.0f);
                memcpy(r, y, n * sizeof(float));
                memcpy(x, y, n * sizeof(float));
                const float *bp = with_bias ? bias : NULL;
                k->bias_act_fwd(y, ldy, bp, 1, M - 1, N, (sg_act)act);
                sg_bias_act_fwd_ref(r, ldy, bp, 1, M - 1, N, (sg_act)act);
                int64_t worst = 0;
                size_t at = 0;
                for (size_t i = 0; i < n; i++) {
                    size_t row = i / ldy, col = i % ldy;
                    int in_slice = row >= 1 && row < M - 1 && col < N;
                    float in =
                        x[i] + (bp && in_slice ? bp[col] : 0.0f); /* the activation's input */
                    int64_t d = ulp_dist(y[i], r[i]);
                    if (d > (in_slice ? act_ulps((sg_act)act, in) : 0) && d > worst) {
                        worst = d;
                        at = i;
                    }
                }
                CHECK(worst == 0,
                      "%s bias_act_fwd N=%zu act=%s bias=%d: element %zu is %.9g, reference %.9g "
                      "(%lld ulp)",
                      k->isa, N, act_name((sg_act)act), with_bias, at, (double)y[at], (double)r[at],
                      (long long)worst);
                free(y);
                free(r);
                free(x);
                free(bias);
            }
}

/* act_bwd: the same operations as the reference, so bitwise, on a slice. */
static void test_act_bwd(const sg_kernels *k)
{
    static const size_t Ns[] = {1, 16, 17, 100};
    const size_t M = 6;
    for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
        for (int act = SG_ACT_NONE; act <= SG_ACT_SIGMOID; act++) {
            size_t N = Ns[ni], lddx = N + 1, lddy = N + 2, ldy = N + 7;
            float *dx = alloc_f(M * lddx), *r = alloc_f(M * lddx), *dy = alloc_f(M * lddy),
                  *y = alloc_f(M * ldy);
            fill(dy, M * lddy, -2.0f, 2.0f);
            for (size_t i = 0; i < M * ldy; i++) y[i] = rand_y((sg_act)act);
            for (size_t i = 0; i < M * lddx; i++) dx[i] = r[i] = -5.0f;
            k->act_bwd(dx, lddx, dy, lddy, y, ldy, 2, M - 1, N, (sg_act)act);
            sg_act_bwd_ref(r, lddx, dy, lddy, y, ldy, 2, M - 1, N, (sg_act)act);
            char what[64];
            snprintf(what, sizeof what, "act_bwd N=%zu act=%s", N, act_name((sg_act)act));
            CHECK_SAME(what, dx, r, M * lddx);
            free(dx);
            free(r);
            free(dy);
            free(y);
        }
}

/* colsum: rows summed in order, so bitwise, for column ranges that start and
 * end off the vector width; db outside [j0, j1) untouched. */
static void test_colsum(const sg_kernels *k)
{
    static const size_t shapes[][4] = {/* M, N, j0, j1 */
                                       {1, 10, 0, 10},     {7, 100, 3, 70}, {100, 256, 0, 256},
                                       {200, 784, 5, 779}, {3, 40, 17, 18}, {5, 130, 64, 130}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t M = shapes[s][0], N = shapes[s][1], j0 = shapes[s][2], j1 = shapes[s][3],
               ldz = N + 4;
        float *dz = alloc_f(M * ldz), *db = alloc_f(N), *r = alloc_f(N);
        fill(dz, M * ldz, -1.0f, 1.0f);
        for (size_t j = 0; j < N; j++) db[j] = r[j] = 42.0f;
        k->colsum(db, dz, ldz, M, j0, j1);
        sg_colsum_ref(r, dz, ldz, M, j0, j1);
        char what[64];
        snprintf(what, sizeof what, "colsum M=%zu [%zu, %zu)", M, j0, j1);
        CHECK_SAME(what, db, r, N);
        free(dz);
        free(db);
        free(r);
    }
}

/* BCE pieces on n elements, slice [3, n - 2). bce_fwd and bce_bwd use the
 * reference's operations: bitwise. sigmoid_bce: y within act_ulps of the
 * reference's sigmoid; then loss and dz must be exactly what the reference
 * formulas give for that y (so the only difference is the sigmoid's), and
 * dz is exactly 0 wherever y is exactly 0 or 1. */
static void test_bce(const sg_kernels *k)
{
    const size_t n = 203, i0 = 3, i1 = n - 2;
    const float count = 100.0f;
    float *z = alloc_f(n), *t = alloc_f(n), *y = alloc_f(n), *loss = alloc_f(n), *dz = alloc_f(n);
    float *ry = alloc_f(n), *rloss = alloc_f(n), *rdz = alloc_f(n), *yl = alloc_f(n),
          *zl = alloc_f(n);
    static const float special[] = {100.0f, -100.0f, 20.0f,  -20.0f, 0.0f,   -0.0f, 16.7f,  -16.7f,
                                    -17.5f, 88.0f,   -88.0f, 89.0f,  -89.0f, 1e-8f, -1e-8f, 9.0f};
    const size_t ns = sizeof special / sizeof special[0];
    for (size_t i = 0; i < n; i++) {
        z[i] = i >= i0 && i - i0 < 2 * ns ? special[(i - i0) / 2] : frand(-12.0f, 12.0f);
        t[i] = (float)(i % 2); /* each special value with both targets */
    }
    for (size_t i = 0; i < n; i++) y[i] = loss[i] = dz[i] = ry[i] = rloss[i] = rdz[i] = -3.0f;
    k->sigmoid_bce(y, loss, dz, z, t, count, i0, i1);
    sg_sigmoid_bce_ref(ry, rloss, rdz, z, t, count, i0, i1);

    int64_t worst = 0;
    size_t at = 0;
    for (size_t i = i0; i < i1; i++) {
        int64_t d = ulp_dist(y[i], ry[i]);
        if (d > act_ulps(SG_ACT_SIGMOID, z[i]) && d > worst) {
            worst = d;
            at = i;
        }
    }
    CHECK(worst == 0, "%s sigmoid_bce: y[%zu] = %.9g for z = %.9g, reference %.9g", k->isa, at,
          (double)y[at], (double)z[at], (double)ry[at]);
    /* loss and dz as the reference computes them from this y; outside the
     * slice all three outputs keep their -3 */
    for (size_t i = 0; i < n; i++) {
        yl[i] = i >= i0 && i < i1 ? y[i] : -3.0f;
        zl[i] = rloss[i] = rdz[i] = -3.0f;
    }
    sg_bce_fwd_ref(rloss, yl, t, i0, i1);
    sg_bce_bwd_ref(zl, yl, t, count, i0, i1);
    sg_act_bwd_ref(rdz + i0, n, zl + i0, n, yl + i0, n, 0, 1, i1 - i0, SG_ACT_SIGMOID);
    CHECK_SAME("sigmoid_bce y", y, yl, n);
    CHECK_SAME("sigmoid_bce loss", loss, rloss, n);
    CHECK_SAME("sigmoid_bce dz", dz, rdz, n);
    for (size_t i = i0; i < i1; i++)
        if (y[i] == 0.0f || y[i] == 1.0f)
            CHECK(dz[i] == 0.0f, "%s sigmoid_bce: z = %g saturated to y = %g but dz = %g", k->isa,
                  (double)z[i], (double)y[i], (double)dz[i]);
    /* the saturating specials: z = +-100, +-20 at i0 .. i0 + 7 */
    CHECK(y[i0] == 1.0f && y[i0 + 1] == 1.0f && y[i0 + 2] == 0.0f && y[i0 + 3] == 0.0f,
          "%s sigmoid_bce: sigmoid(+-100) must be exactly 1 and 0", k->isa);
    CHECK(y[i0 + 4] == 1.0f && y[i0 + 5] == 1.0f && y[i0 + 6] > 0.0f && y[i0 + 6] < 1e-8f,
          "%s sigmoid_bce: sigmoid(20) must be 1.0f and sigmoid(-20) tiny but > 0", k->isa);
    /* targets alternate 1, 0 from i0: y = 1 with t = 0 and y = 0 with t = 1
     * take the log of 0, clamped to -100 */
    CHECK(loss[i0] == 0.0f && loss[i0 + 1] == 100.0f && loss[i0 + 2] == 100.0f &&
              loss[i0 + 3] == 0.0f,
          "%s sigmoid_bce: saturated logs must clamp the loss at 100 (got %g %g %g %g)", k->isa,
          (double)loss[i0], (double)loss[i0 + 1], (double)loss[i0 + 2], (double)loss[i0 + 3]);
    CHECK(y[i0 + 8] == 0.5f && y[i0 + 10] == 0.5f, "%s sigmoid_bce: sigmoid(+-0) must be 0.5",
          k->isa);

    /* bce_fwd and bce_bwd alone, with the clamps: y = 0 and 1 exactly */
    for (size_t i = 0; i < n; i++) yl[i] = frand(0.0f, 1.0f);
    yl[i0] = 0.0f;     /* t = 1: log 0 clamps, loss 100 */
    yl[i0 + 1] = 0.0f; /* t = 0: loss 0 */
    yl[i0 + 2] = 1.0f; /* t = 1: loss 0 */
    yl[i0 + 3] = 1.0f; /* t = 0: log1p(-1) clamps, loss 100 */
    for (size_t i = 0; i < n; i++) t[i] = (float)((i + 1 - i0 % 2) % 2);
    for (size_t i = 0; i < n; i++) loss[i] = rloss[i] = dz[i] = rdz[i] = -3.0f;
    k->bce_fwd(loss, yl, t, i0, i1);
    sg_bce_fwd_ref(rloss, yl, t, i0, i1);
    CHECK_SAME("bce_fwd", loss, rloss, n);
    CHECK(t[i0] == 1.0f && loss[i0] == 100.0f && loss[i0 + 1] == 0.0f && loss[i0 + 2] == 0.0f &&
              loss[i0 + 3] == 100.0f,
          "%s bce_fwd clamps: %g %g %g %g, expected 100 0 0 100", k->isa, (double)loss[i0],
          (double)loss[i0 + 1], (double)loss[i0 + 2], (double)loss[i0 + 3]);
    k->bce_bwd(dz, yl, t, count, i0, i1);
    sg_bce_bwd_ref(rdz, yl, t, count, i0, i1);
    CHECK_SAME("bce_bwd", dz, rdz, n);

    free(z);
    free(t);
    free(y);
    free(loss);
    free(dz);
    free(ry);
    free(rloss);
    free(rdz);
    free(yl);
    free(zl);
}

/* Adam: the same operations and roundings as the reference: bitwise, for a
 * slice that starts and ends off the vector width, at steps 1 and 1000. */
static void test_adam(const sg_kernels *k)
{
    const size_t n = 1000, i0 = 3, i1 = n - 5;
    for (int step = 1; step <= 1000; step += 999) {
        float *p = alloc_f(n), *m = alloc_f(n), *v = alloc_f(n), *g = alloc_f(n);
        float *rp = alloc_f(n), *rm = alloc_f(n), *rv = alloc_f(n);
        fill(p, n, -0.1f, 0.1f);
        fill(m, n, -1e-3f, 1e-3f);
        fill(v, n, 0.0f, 1e-5f);
        fill(g, n, -0.05f, 0.05f);
        g[i0] = 0.0f;
        v[i0] = 0.0f; /* denom = eps */
        memcpy(rp, p, n * sizeof(float));
        memcpy(rm, m, n * sizeof(float));
        memcpy(rv, v, n * sizeof(float));
        double lr = 2e-4, b1 = 0.9, b2 = 0.999;
        sg_adam_coef h = {(float)b1,
                          (float)(1.0 - b1),
                          (float)b2,
                          (float)(1.0 - b2),
                          (float)(lr / (1.0 - pow(b1, step))),
                          (float)sqrt(1.0 - pow(b2, step)),
                          1e-8f};
        k->adam(p, m, v, g, i0, i1, &h);
        sg_adam_ref(rp, rm, rv, g, i0, i1, &h);
        CHECK_SAME("adam p", p, rp, n);
        CHECK_SAME("adam m", m, rm, n);
        CHECK_SAME("adam v", v, rv, n);
        free(p);
        free(m);
        free(v);
        free(g);
        free(rp);
        free(rm);
        free(rv);
    }
}

/* tanh and sigmoid (and with them the vector exp) against libm through
 * bias_act_fwd, within act_ulps: every 1e-3 in [-20, 20], every 251st float
 * in [-20, 20] by bit pattern, and edge values. */
static void test_vector_math(const sg_kernels *k)
{
    static const float edges[] = {
        0.0f,   -0.0f,   1e-45f,      -1e-45f,      FLT_MIN,  -FLT_MIN,  1e-20f, -1e-20f,
        0.625f, -0.625f, 0.62499994f, -0.62499994f, 9.0f,     -9.0f,     9.01f,  -9.01f,
        16.6f,  -16.6f,  17.0f,       -17.0f,       44.0f,    -44.0f,    87.0f,  -87.0f,
        88.72f, -88.72f, 88.73f,      -88.73f,      103.9f,   -103.9f,   105.0f, -105.0f,
        1e30f,  -1e30f,  FLT_MAX,     -FLT_MAX,     INFINITY, -INFINITY, NAN};
    const size_t ne = sizeof edges / sizeof edges[0], nd = 40001;
    size_t nb = 0;
    for (uint32_t u = 0; u <= 0x41a00000u; u += 251) nb += 2; /* |x| <= 20 */
    size_t n = ne + nd + nb, at = 0;
    float *x = alloc_f(n);
    for (size_t i = 0; i < ne; i++) x[at++] = edges[i];
    for (size_t i = 0; i < nd; i++) x[at++] = (float)(-20.0 + 1e-3 * (double)i);
    for (uint32_t u = 0; u <= 0x41a00000u; u += 251) {
        float f;
        memcpy(&f, &u, 4);
        x[at++] = f;
        x[at++] = -f;
    }
    float *y = alloc_f(n);
    for (int act = SG_ACT_TANH; act <= SG_ACT_SIGMOID; act++) {
        memcpy(y, x, n * sizeof(float));
        k->bias_act_fwd(y, n, NULL, 0, 1, n, (sg_act)act);
        int64_t worst = 0, worst_over = 0;
        size_t wi = 0;
        for (size_t i = 0; i < n; i++) {
            float r = sg_act_fwd_scalar(x[i], (sg_act)act);
            int64_t d = ulp_dist(y[i], r);
            if (d > worst) worst = d;
            if (d > act_ulps((sg_act)act, x[i]) && d > worst_over) {
                worst_over = d;
                wi = i;
            }
        }
        CHECK(worst_over == 0, "%s %s(%.9g) = %.9g, libm %.9g: %lld ulp", k->isa,
              act_name((sg_act)act), (double)x[wi], (double)y[wi],
              (double)sg_act_fwd_scalar(x[wi], (sg_act)act), (long long)worst_over);
        printf("  %s vs libm: max %lld ulp over %zu values\n", act_name((sg_act)act),
               (long long)worst, n);
    }
    free(x);
    free(y);
}

/* ---- CPU detection and the override --------------------------------------- */

static void test_cpu(void)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    printf("cpu: %s [%s]%s%s%s%s\n", ci.brand, ci.vendor, ci.avx2 && ci.fma ? " avx2+fma" : "",
           ci.avx512f && ci.avx512vl && ci.avx512bw && ci.avx512dq ? " avx512f/vl/bw/dq" : "",
           ci.os_zmm   ? " os:zmm"
           : ci.os_ymm ? " os:ymm"
                       : "",
           ci.neon ? " neon" : "");

    const sg_kernels *const *built = sg_kernels_built();
    size_t nb = 0;
    while (built[nb]) nb++;
    CHECK(nb >= 1 && built[nb - 1] == &sg_kernels_ref, "the reference table must be built, last");
    CHECK(sg_kernels_runnable(&sg_kernels_ref, &ci), "the reference table must always run");

    char why[256];
    unsetenv("SIMDGAN_ISA"); /* this test sets it itself */
    const sg_kernels *best = sg_kernels_select(NULL, why, sizeof why);
    CHECK(best && strstr(why, best->isa) == why, "select: why = '%s'", why);
    printf("chosen: %s\n", why);
    /* The default is the first ISA, best first, that this CPU supports as
     * tables.h judges it (a supported one that is not built fails there). */
    const char *want = "ref";
    for (size_t i = TABLES_NKNOWN; i-- > 0;)
        if (!*tables_lacks(tables_known[i], &ci) && sg_kernels_by_name(tables_known[i]))
            want = tables_known[i];
    CHECK(best && strcmp(best->isa, want) == 0, "the default table is %s; this CPU's best is %s",
          best ? best->isa : "none", want);

    CHECK(sg_kernels_by_name("foo") == NULL &&
              strstr(sg_last_error(), "unknown ISA 'foo'; expected ref, avx2, avx512 or neon"),
          "by_name(foo): '%s'", sg_last_error());
    CHECK(sg_kernels_by_name("ref") == &sg_kernels_ref, "by_name(ref)");
    const char *absent = NULL;
    static const char *const names[] = {"avx2", "avx512", "neon"};
    for (size_t i = 0; i < 3; i++) {
        int found = 0;
        for (size_t j = 0; j < nb; j++) found |= strcmp(built[j]->isa, names[i]) == 0;
        if (!found) absent = names[i];
    }
    if (absent)
        CHECK(sg_kernels_by_name(absent) == NULL &&
                  strstr(sg_last_error(), "not built into this binary"),
              "by_name(%s): '%s'", absent, sg_last_error());

    CHECK(sg_kernels_select("foo", why, sizeof why) == NULL &&
              strstr(sg_last_error(), "--isa foo: unknown ISA 'foo'"),
          "--isa foo: '%s'", sg_last_error());
    CHECK(sg_kernels_select("ref", why, sizeof why) == &sg_kernels_ref &&
              strcmp(why, "ref: --isa ref") == 0,
          "--isa ref: '%s'", why);
    setenv("SIMDGAN_ISA", "ref", 1);
    const sg_kernels *r = sg_kernels_select(NULL, why, sizeof why);
    CHECK(r == &sg_kernels_ref && strcmp(why, "ref: SIMDGAN_ISA=ref") == 0, "SIMDGAN_ISA=ref: '%s'",
          why);
    setenv("SIMDGAN_ISA", "bogus", 1);
    CHECK(sg_kernels_select(NULL, why, sizeof why) == NULL &&
              strstr(sg_last_error(), "SIMDGAN_ISA=bogus: unknown ISA 'bogus'"),
          "SIMDGAN_ISA=bogus: '%s'", sg_last_error());
    unsetenv("SIMDGAN_ISA");
}

int main(void)
{
    test_cpu();
    test_philox();
    test_normal_accuracy();
    const sg_kernels *tables[8];
    tables_to_run(tables, 8);
    for (const sg_kernels **t = tables; *t; t++) {
        const sg_kernels *k = *t;
        printf("%s:\n", k->isa);
        test_ukr(k);
        test_pack(k);
        test_bias_act_fwd(k);
        test_act_bwd(k);
        test_colsum(k);
        test_bce(k);
        test_adam(k);
        test_vector_math(k);
        test_normal(k);
        table_ran(k);
    }
    tables_all_ran("test_kernels");
    return check_finish("test_kernels");
}
