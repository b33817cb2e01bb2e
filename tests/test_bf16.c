/* test_bf16.c: the bf16 layer (simd/bf16.h, src/gemm_bf16.h, cpu.c's bf16
 * detection) against double references computed from the same bf16-rounded
 * inputs.
 *
 * 1. sg_bf16_round: round to nearest even on ties, carries into the
 *    exponent, overflow to Inf, Inf, NaN (stays NaN, sign kept, quiet),
 *    denormals (rounded, not flushed), signed zeros.
 * 2. Every bf16 micro-kernel this CPU runs (AMX, AVX512_BF16, BFMMLA, and the ref path
 *    over every fp32 kernel table this CPU runs), plus amx.c on amx_emu.h's
 *    emulated tile instructions (its layouts and tile logic on any CPU):
 *    K = 0, 1, odd, multiples of the K step and not; partial row panels;
 *    accumulate; nothing written past the tile's columns.
 * 3. The bf16 GEMM on the same paths: the three layouts of a Linear layer,
 *    edge tiles in M, N and K, raw, accumulate, bias + activation forward,
 *    activation backward; nothing written outside C; bit-identical at 1, 2
 *    and 3 threads; the pre-packed B entry bit-identical to packing per call.
 * 4. Selection: SIMDGAN_BF16's parsing and errors; where this CPU has AMX
 *    (CPUID, XCR0) the AMX table must be built, permitted, chosen by default
 *    and run here, and where it has AVX512_BF16 (and no AMX) or Arm BF16,
 *    the avx512bf16 or BFMMLA table likewise: a failure, not a skip.
 *
 * Tolerance (every path): the products of two bf16 values are exact in fp32;
 * each addition of the K-term sum then errs by less than one ulp, 2^-23
 * relative (half of it for IEEE's nearest: the fp32 FMA path, AMX and
 * vdpbf16ps; a
 * whole one for BFMMLA's round-to-odd), so |C - exact| <=
 * (K + 2) 2^-23 (|C0| + sum |a_p b_p|) + K 2^-126 (AMX and BFMMLA flush
 * denormal inputs and results). The epilogue adds its own fp32 rounding
 * (bias add, activation: 16 ulps of the result, the vector tanh's error). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"
#include "check.h"
#include "cpu.h"
#include "gemm_bf16.h"
#include "util.h"

/* amx.c compiled on amx_emu.h (tests/CMakeLists.txt). */
extern const sg_bf16_kernels sg_bf16_kernels_amx_emulated;

#define U23 (1.0 / 8388608.0)
#define DENORM_FLUSH 1.1754943508222875e-38 /* 2^-126 */
#define SENTINEL 777.25f

static uint32_t lcg = 2024;
static float frand(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    return (float)(lcg >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- 1. rounding --------------------------------------------------------- */

static void test_round(void)
{
    static const struct {
        uint32_t in;
        uint16_t out;
        const char *what;
    } cases[] = {
        {0x3f800000u, 0x3f80, "1.0 exact"},
        {0x3f808000u, 0x3f80, "tie, even below: down"},
        {0x3f818000u, 0x3f82, "tie, odd below: up"},
        {0x3f808001u, 0x3f81, "just above a tie: up"},
        {0x3f807fffu, 0x3f80, "just below a tie: down"},
        {0xbf818000u, 0xbf82, "negative tie, odd below: up in magnitude"},
        {0x3fffffffu, 0x4000, "carry into the exponent"},
        {0x7f7f7fffu, 0x7f7f, "largest value that stays finite"},
        {0x7f7fffffu, 0x7f80, "FLT_MAX rounds to Inf"},
        {0x7f800000u, 0x7f80, "+Inf"},
        {0xff800000u, 0xff80, "-Inf"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0"},
        {0x00008000u, 0x0000, "denormal tie, even below: to 0"},
        {0x00018000u, 0x0002, "denormal tie, odd below: up"},
        {0x00008001u, 0x0001, "denormal above a tie: smallest bf16 denormal"},
        {0x007fffffu, 0x0080, "largest denormal rounds to the smallest normal"},
        {0x80010000u, 0x8001, "negative denormal exact"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = sg_bf16_round(from_bits(cases[i].in));
        CHECK(got == cases[i].out, "sg_bf16_round(0x%08x) (%s) = 0x%04x, expected 0x%04x",
              cases[i].in, cases[i].what, got, cases[i].out);
    }
    /* NaNs: stay NaN (a payload in the low bits must not round into Inf),
     * keep their sign, come out quiet. */
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fffffffu,
                                    0xff80ffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t got = sg_bf16_round(from_bits(nans[i]));
        CHECK(isnan(sg_bf16_to_f32(got)) && (got & 0x8000) == ((nans[i] >> 16) & 0x8000) &&
                  (got & 0x0040),
              "sg_bf16_round(NaN 0x%08x) = 0x%04x, expected a quiet NaN of the same sign",
              nans[i], got);
    }
    /* Exhaustive over one binade's worth of low bits: the result is the
     * nearer of the two neighbours, the even one on a tie. */
    int bad = 0;
    for (uint32_t u = 0x40490000u; u < 0x404a0000u && !bad; u++) {
        const double x = from_bits(u);
        const double lo = sg_bf16_to_f32((uint16_t)(u >> 16)),
                     hi = sg_bf16_to_f32((uint16_t)((u >> 16) + 1));
        const double r = sg_bf16_roundf(from_bits(u));
        const double want = x - lo < hi - x ? lo : x - lo > hi - x ? hi : ((u >> 16) & 1) ? hi : lo;
        bad = r != want;
        CHECK(!bad, "sg_bf16_round(0x%08x) = %.9g, expected %.9g", u, r, want);
    }
}

/* ---- shared: operands and references ------------------------------------- */

/* The paths to test: a bf16 table with the fp32 table it runs beside. */
typedef struct path {
    const sg_bf16_kernels *k;
    const sg_kernels *fk;
    char label[64];
} path;

/* Element (i, p) of A and (p, j) of B as the layouts store them. */
typedef struct operands {
    const float *a, *b;
    size_t ars, acs, brs, bcs;
} operands;

enum { FWD, BWD_DATA, BWD_WEIGHTS };
static const char *const layout_name[] = {"X.W^T", "dY.W", "dY^T.X"};

/* The strides of layout L for M x N x K: A = X [M,K], dY [M,K] or dY [K,M]
 * transposed; B = W^T of W [N,K], W [K,N] or X [K,N]. */
static operands layout(int L, const float *a, const float *b, size_t M, size_t N, size_t K)
{
    operands o = {a, b, K, 1, N, 1};
    if (L == FWD) o.brs = 1, o.bcs = K;
    if (L == BWD_WEIGHTS) o.ars = 1, o.acs = M;
    return o;
}

static double act_fwd(double v, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return v > 0 ? v : 0;
    case SG_ACT_LRELU: return v > 0 ? v : 0.2 * v;
    case SG_ACT_TANH: return tanh(v);
    case SG_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    default: return v;
    }
}

static double act_grad(double y, sg_act act)
{
    switch (act) {
    case SG_ACT_RELU: return y > 0 ? 1 : 0;
    case SG_ACT_LRELU: return y > 0 ? 1 : 0.2;
    case SG_ACT_TANH: return 1 - y * y;
    case SG_ACT_SIGMOID: return y * (1 - y);
    default: return 1;
    }
}

/* Raw sum (i, j) from bf16-rounded operands in double, and its bound. */
static void dot(const operands *o, size_t K, size_t i, size_t j, double *sum, double *absum)
{
    double s = 0, t = 0;
    for (size_t p = 0; p < K; p++) {
        double x = (double)sg_bf16_roundf(o->a[i * o->ars + p * o->acs]) *
                   (double)sg_bf16_roundf(o->b[p * o->brs + j * o->bcs]);
        s += x, t += fabs(x);
    }
    *sum = s, *absum = t;
}

/* ---- 2. micro-kernels ---------------------------------------------------- */

static int amx_ukr_ran, avx512bf16_ukr_ran, bfmmla_ukr_ran;

static void test_ukr(const path *pt)
{
    sg_bf16_kernels k = *pt->k;
    if (!k.mr) k.mr = pt->fk->mr, k.nr = pt->fk->nr;
    const size_t MR = (size_t)k.mr, NR = (size_t)k.nr, ldc = NR + 3;
    static const size_t Ks[] = {0, 1, 3, 4, 5, 31, 32, 33, 64, 100, 257, 784};
    /* Edge row counts in both halves of a 32-row AMX panel, among others. */
    const size_t mrs[] = {MR, 1, MR / 2, MR / 2 + 1, MR - 1, MR > 4 ? 4 : 1};
    const size_t maxK = 784;
    float *a = malloc(MR * maxK * sizeof *a), *b = malloc(NR * maxK * sizeof *b);
    void *ap = sg_xalloc(MR * (maxK + 32) * 4), *bp = sg_xalloc(NR * (maxK + 32) * 4);
    float *c = malloc(MR * ldc * sizeof *c), *c0 = malloc(MR * ldc * sizeof *c0);
    double worst = 0;
    for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
        for (size_t mi = 0; mi < sizeof mrs / sizeof mrs[0]; mi++)
            for (int acc = 0; acc < 2; acc++) {
                const size_t K = Ks[ki], mr = mrs[mi];
                const size_t Kp = (K + (size_t)k.kstep - 1) / (size_t)k.kstep * (size_t)k.kstep;
                for (size_t x = 0; x < MR * K; x++) a[x] = frand();
                for (size_t x = 0; x < NR * K; x++) b[x] = frand();
                for (size_t x = 0; x < MR * ldc; x++) c0[x] = x % ldc < NR ? frand() : SENTINEL;
                memcpy(c, c0, MR * ldc * sizeof *c);
                /* A stored [mr, K] (rows contiguous) on even K indices,
                 * transposed [K, mr] on odd ones; B the other way round. */
                operands o = ki % 2 ? (operands){a, b, 1, mr, 1, NR}
                                    : (operands){a, b, K, 1, NR, 1};
                k.pack_a(ap, a, o.ars, o.acs, mr, K, k.mr, pt->fk);
                k.pack_b(bp, b, o.bcs, o.brs, NR, K, k.nr, pt->fk);
                if (k.thread_begin) k.thread_begin();
                k.ukr(Kp, ap, bp, c, ldc, acc, mr, pt->fk);
                if (k.thread_end) k.thread_end();
                for (size_t i = 0; i < mr; i++) {
                    for (size_t j = 0; j < NR; j++) {
                        double s, t;
                        dot(&o, K, i, j, &s, &t);
                        const double cin = acc ? c0[i * ldc + j] : 0.0;
                        const double want = cin + s;
                        const double tol = (double)(K + 2) * U23 * (fabs(cin) + t) +
                                           (double)K * DENORM_FLUSH;
                        const double err = fabs((double)c[i * ldc + j] - want);
                        if (err / (tol + 1e-300) > worst) worst = err / (tol + 1e-300);
                        CHECK(err <= tol, "%s %s: K=%zu mr=%zu acc=%d: c(%zu,%zu) = %.9g, "
                              "expected %.9g (bound %.3g)", pt->label, k.ukr_name, K, mr, acc,
                              i, j, (double)c[i * ldc + j], want, tol);
                        if (err > tol) goto done;
                    }
                    for (size_t j = NR; j < ldc; j++)
                        CHECK(c[i * ldc + j] == SENTINEL, "%s: K=%zu: wrote past the tile's "
                              "columns at (%zu, %zu)", pt->label, K, i, j);
                }
            }
done:
    printf("micro-kernel %s (%s, %zux%zu, K step %d): worst error %.3f of the bound\n",
           k.ukr_name, pt->label, MR, NR, k.kstep, worst);
    if (!strcmp(pt->k->path, "amx") && pt->k != &sg_bf16_kernels_amx_emulated) amx_ukr_ran++;
    if (!strcmp(pt->k->path, "avx512bf16")) avx512bf16_ukr_ran++;
    if (!strcmp(pt->k->path, "bfmmla")) bfmmla_ukr_ran++;
    free(a), free(b), free(c), free(c0);
    sg_free(ap), sg_free(bp);
}

/* ---- 3. the GEMM --------------------------------------------------------- */

typedef struct job {
    sg_bf16_engine *be;
    size_t M, N, K;
    sg_view A, B;
    const void *Bp; /* pre-packed B, or NULL */
    float *C;
    size_t ldc;
    int acc;
    const sg_epi *epi;
} job;

static void job_run(void *ctx, int ith)
{
    job *j = ctx;
    if (j->Bp)
        sg_gemm_bf16_packed(j->be, j->M, j->N, j->K, j->A, j->Bp, j->C, j->ldc, j->acc, j->epi,
                            NULL, ith);
    else
        sg_gemm_bf16(j->be, j->M, j->N, j->K, j->A, j->B, j->C, j->ldc, j->acc, j->epi, NULL, ith);
}

static int amx_gemm_ran, avx512bf16_gemm_ran, bfmmla_gemm_ran;

static void test_gemm(const path *pt)
{
    static const size_t shapes[][3] = {
        {1, 1, 1},   {1, 1, 0},    {3, 5, 7},     {17, 33, 31},  {33, 17, 65},
        {16, 32, 32}, {100, 256, 64}, {37, 70, 100}, {200, 1, 256}, {5, 300, 33},
    };
    const size_t maxM = 200, maxN = 300, maxK = 256;
    sg_engine e;
    sg_bf16_engine be;
    if (sg_engine_init(&e, pt->fk, 3) != 0 || sg_bf16_engine_init(&be, &e, pt->k) != 0) {
        CHECK(0, "%s: %s", pt->label, sg_last_error());
        return;
    }
    sg_bf16_engine_reserve(&be, maxM, maxN, maxK);
    const size_t ldc_pad = 2;
    float *a = malloc(maxM * maxK * sizeof *a), *b = malloc(maxK * maxN * sizeof *b);
    float *bias = malloc(maxN * sizeof *bias), *y = malloc(maxM * (maxN + 1) * sizeof *y);
    float *c0 = malloc(maxM * (maxN + ldc_pad) * sizeof *c0);
    float *c[4];
    for (int t = 0; t < 4; t++) c[t] = malloc(maxM * (maxN + ldc_pad) * sizeof(float));
    void *Bp = sg_xalloc(sg_bf16_b_panels(&be, maxN) * sg_bf16_b_panel_bytes(&be, maxK) + 64);
    static const sg_act acts[] = {SG_ACT_LRELU, SG_ACT_TANH, SG_ACT_SIGMOID, SG_ACT_RELU,
                                  SG_ACT_NONE};
    double worst = 0;
    int products = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int L = 0; L < 3; L++)
            for (int variant = 0; variant < 4; variant++) {
                const size_t M = shapes[s][0], N = shapes[s][1], K = shapes[s][2],
                             ldc = N + ldc_pad, ldy = N + 1;
                const sg_act act = acts[(s + (size_t)L) % 5];
                for (size_t x = 0; x < M * K; x++) a[x] = frand();
                for (size_t x = 0; x < K * N; x++) b[x] = frand();
                for (size_t x = 0; x < N; x++) bias[x] = frand();
                for (size_t x = 0; x < M * ldy; x++) y[x] = act == SG_ACT_SIGMOID ? 0.5f + 0.5f * frand() : frand();
                for (size_t x = 0; x < M * ldc; x++) c0[x] = x % ldc < N ? frand() : SENTINEL;
                sg_epi epi = {0};
                const int acc = variant == 1;
                if (variant == 2) epi = (sg_epi){s % 2 ? bias : NULL, act, SG_ACT_NONE, NULL, 0};
                if (variant == 3) epi = (sg_epi){NULL, SG_ACT_NONE, act == SG_ACT_NONE ? SG_ACT_TANH : act, y, ldy};
                const operands o = layout(L, a, b, M, N, K);
                job j = {&be, M, N, K, {a, o.ars, o.acs}, {b, o.brs, o.bcs}, NULL, NULL, ldc, acc,
                         variant >= 2 ? &epi : NULL};
                /* 1, 2 and 3 threads, then pre-packed B at 2. */
                for (int t = 0; t < 4; t++) {
                    const int nth = t < 3 ? t + 1 : 2;
                    if (nth > e.max_nth) {
                        memcpy(c[t], c[0], M * ldc * sizeof(float));
                        continue;
                    }
                    sg_engine_set_threads(&e, nth);
                    memcpy(c[t], c0, M * ldc * sizeof(float));
                    j.C = c[t];
                    j.Bp = NULL;
                    if (t == 3) {
                        sg_bf16_pack_b(&be, Bp, j.B, K, N, 0, sg_bf16_b_panels(&be, N));
                        j.Bp = Bp;
                    }
                    sg_parallel(&e, job_run, &j);
                    products++;
                }
                char what[128];
                snprintf(what, sizeof what, "%s %s M=%zu N=%zu K=%zu variant %d", pt->label,
                         layout_name[L], M, N, K, variant);
                for (int t = 1; t < 4; t++)
                    CHECK(memcmp(c[0], c[t], M * ldc * sizeof(float)) == 0,
                          "%s: %s differs from 1 thread", what,
                          t < 3 ? (t == 1 ? "2 threads" : "3 threads") : "pre-packed B");
                int bad = 0;
                for (size_t i = 0; i < M && !bad; i++)
                    for (size_t jj = 0; jj < ldc && !bad; jj++) {
                        const double got = c[0][i * ldc + jj];
                        if (jj >= N) {
                            bad = got != SENTINEL;
                            CHECK(!bad, "%s: wrote outside C at (%zu, %zu)", what, i, jj);
                            continue;
                        }
                        double sum, t;
                        dot(&o, K, i, jj, &sum, &t);
                        const double cin = acc ? c0[i * ldc + jj] : 0.0;
                        double want = cin + sum;
                        double tol = (double)(K + 2) * U23 * (fabs(cin) + t) + (double)K * DENORM_FLUSH;
                        if (variant == 2) {
                            const double v = want + (epi.bias ? bias[jj] : 0.0);
                            want = act_fwd(v, act);
                            tol += 2 * U23 * fabs(v) + 16 * U23 * fabs(want) + 1e-30;
                        } else if (variant == 3) {
                            const double g = act_grad(y[i * ldy + jj], epi.dact);
                            want *= g;
                            tol = tol * fabs(g) + 4 * U23 * fabs(want) + 1e-30;
                        }
                        const double err = fabs(got - want);
                        if (err / (tol + 1e-300) > worst) worst = err / (tol + 1e-300);
                        bad = !(err <= tol);
                        CHECK(!bad, "%s: C(%zu,%zu) = %.9g, expected %.9g (bound %.3g)", what, i,
                              jj, got, want, tol);
                    }
            }
    printf("gemm %s: %d products, worst error %.3f of the bound, bit-identical at 1 to %d "
           "thread(s) and pre-packed\n", pt->label, products, worst, e.max_nth);
    if (!strcmp(pt->k->path, "amx") && pt->k != &sg_bf16_kernels_amx_emulated) amx_gemm_ran++;
    if (!strcmp(pt->k->path, "avx512bf16")) avx512bf16_gemm_ran++;
    if (!strcmp(pt->k->path, "bfmmla")) bfmmla_gemm_ran++;
    free(a), free(b), free(bias), free(y), free(c0);
    for (int t = 0; t < 4; t++) free(c[t]);
    sg_free(Bp);
    sg_bf16_engine_free(&be);
    sg_engine_free(&e);
}

/* ---- 4. packing in pieces, and chained products -------------------------- */

/* B packed in runs of steps [p0, p1) (p0 a multiple of kstep, from the
 * panels' middle out) equals B packed whole, byte for byte: Adam rewrites
 * the copies of the weights it updates this way. */
static void test_pack_steps(const path *pt)
{
    static const size_t shapes[][2] = {{1, 1}, {5, 3}, {64, 33}, {256, 70}, {784, 32}, {33, 257}};
    sg_engine e;
    sg_bf16_engine be;
    if (sg_engine_init(&e, pt->fk, 1) != 0 || sg_bf16_engine_init(&be, &e, pt->k) != 0) {
        CHECK(0, "%s: %s", pt->label, sg_last_error());
        return;
    }
    const size_t ks = (size_t)be.k.kstep;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t K = shapes[s][0], N = shapes[s][1], np = sg_bf16_b_panels(&be, N);
        const size_t bytes = np * sg_bf16_b_panel_bytes(&be, K);
        float *b = malloc(K * N * sizeof *b);
        for (size_t x = 0; x < K * N; x++) b[x] = frand();
        unsigned char *whole = sg_xalloc(bytes), *pieces = sg_xalloc(bytes);
        for (int tr = 0; tr < 2; tr++) { /* B as [K, N], then as W^T */
            const sg_view B = tr ? (sg_view){b, 1, K} : (sg_view){b, N, 1};
            sg_bf16_pack_b(&be, whole, B, K, N, 0, np);
            memset(pieces, 0xa5, bytes);
            /* Runs of 1, 2, 3, ... K steps, rounded up to whole K steps. */
            size_t p0 = 0;
            for (size_t len = 1; p0 < K; len++) {
                size_t p1 = (p0 + len + ks - 1) / ks * ks;
                if (p1 > K) p1 = K;
                sg_bf16_pack_b_steps(&be, pieces, B, K, N, np / 2, np, p0, p1);
                sg_bf16_pack_b_steps(&be, pieces, B, K, N, 0, np / 2, p0, p1);
                p0 = p1;
            }
            CHECK(memcmp(whole, pieces, bytes) == 0,
                  "%s: B [%zu, %zu]%s packed in runs of steps differs from packed whole",
                  pt->label, K, N, tr ? " (transposed)" : "");
        }
        sg_free(whole), sg_free(pieces), free(b);
    }
    printf("pack_b_steps %s: %zu shapes x 2 layouts packed in runs of K steps\n", pt->label,
           sizeof shapes / sizeof shapes[0]);
    sg_bf16_engine_free(&be);
    sg_engine_free(&e);
}

typedef struct chain_job {
    sg_bf16_engine *be;
    size_t M, N1, K1, N2;
    sg_view A, C1view;
    const void *B1p, *B2p;
    float *C1, *C2;
    const sg_epi *epi1;
    int link; /* 1: product 2 reads the A product 1's epilogue packed */
} chain_job;

static void chain_run(void *ctx, int ith)
{
    chain_job *j = ctx;
    void *out = j->link ? j->be->alink[1] : NULL;
    sg_gemm_bf16_chain(j->be, j->M, j->N1, j->K1, j->A, NULL, j->B1p, j->C1, j->N1, j->epi1, out,
                       NULL, ith);
    sg_gemm_bf16_chain(j->be, j->M, j->N2, j->N1, j->C1view, out, j->B2p, j->C2, j->N2, NULL,
                       NULL, NULL, ith);
}

/* Two products where the first's output is the second's A: with the first's
 * epilogue packing it (and the second not reading the view A, here all NaN)
 * the bits are those of the second packing A itself, at 1 to 3 threads,
 * with a forward's epilogue (bias + activation), a backward-data one
 * (activation gradient) and none. */
static void test_chain(const path *pt)
{
    static const size_t shapes[][4] = {{1, 1, 1, 1},     {37, 33, 5, 3},   {200, 256, 64, 40},
                                       {100, 70, 31, 17}, {13, 784, 9, 1}, {200, 1, 256, 5}};
    sg_engine e;
    sg_bf16_engine be;
    if (sg_engine_init(&e, pt->fk, 3) != 0 || sg_bf16_engine_init(&be, &e, pt->k) != 0) {
        CHECK(0, "%s: %s", pt->label, sg_last_error());
        return;
    }
    int chains = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const size_t M = shapes[s][0], N1 = shapes[s][1], K1 = shapes[s][2], N2 = shapes[s][3];
        sg_bf16_engine_reserve(&be, M, N1, K1);
        sg_bf16_engine_reserve(&be, M, N2, N1);
        float *a = malloc(M * K1 * sizeof *a), *b1 = malloc(K1 * N1 * sizeof *b1);
        float *b2 = malloc(N1 * N2 * sizeof *b2), *bias = malloc(N1 * sizeof *bias);
        float *y = malloc(M * N1 * sizeof *y), *nan = malloc(M * N1 * sizeof *nan);
        float *c1 = malloc(M * N1 * sizeof *c1), *c2[2];
        c2[0] = malloc(M * N2 * sizeof(float)), c2[1] = malloc(M * N2 * sizeof(float));
        for (size_t x = 0; x < M * K1; x++) a[x] = frand();
        for (size_t x = 0; x < K1 * N1; x++) b1[x] = frand();
        for (size_t x = 0; x < N1 * N2; x++) b2[x] = frand();
        for (size_t x = 0; x < N1; x++) bias[x] = frand();
        for (size_t x = 0; x < M * N1; x++) y[x] = frand(), nan[x] = NAN;
        void *B1p = sg_xalloc(sg_bf16_b_panels(&be, N1) * sg_bf16_b_panel_bytes(&be, K1));
        void *B2p = sg_xalloc(sg_bf16_b_panels(&be, N2) * sg_bf16_b_panel_bytes(&be, N1));
        sg_bf16_pack_b(&be, B1p, (sg_view){b1, N1, 1}, K1, N1, 0, sg_bf16_b_panels(&be, N1));
        sg_bf16_pack_b(&be, B2p, (sg_view){b2, 1, N1}, N1, N2, 0, sg_bf16_b_panels(&be, N2));
        for (int v = 0; v < 3; v++) {
            const sg_epi fwd = {bias, SG_ACT_LRELU, SG_ACT_NONE, NULL, 0};
            const sg_epi bwd = {NULL, SG_ACT_NONE, SG_ACT_TANH, y, N1};
            chain_job j = {&be, M, N1, K1, N2, {a, K1, 1}, {c1, N1, 1}, B1p, B2p, c1, NULL,
                           v == 0 ? &fwd : v == 1 ? &bwd : NULL, 0};
            sg_engine_set_threads(&e, 1);
            j.C2 = c2[0];
            sg_parallel(&e, chain_run, &j);
            for (int nth = 1; nth <= e.max_nth; nth++) {
                sg_engine_set_threads(&e, nth);
                j.link = 1, j.C2 = c2[1], j.C1view = (sg_view){nan, N1, 1};
                memset(c2[1], 0, M * N2 * sizeof(float));
                sg_parallel(&e, chain_run, &j);
                CHECK(memcmp(c2[0], c2[1], M * N2 * sizeof(float)) == 0,
                      "%s: M=%zu N=%zu K=%zu then N=%zu, epilogue %d, %d thread(s): the product "
                      "on the A its predecessor's epilogue packed differs", pt->label, M, N1, K1,
                      N2, v, nth);
                chains++;
            }
        }
        free(a), free(b1), free(b2), free(bias), free(y), free(nan), free(c1);
        free(c2[0]), free(c2[1]);
        sg_free(B1p), sg_free(B2p);
    }
    printf("chain %s: %d chained pairs bit-identical to packing A\n", pt->label, chains);
    sg_bf16_engine_free(&be);
    sg_engine_free(&e);
}

/* ---- 5. selection -------------------------------------------------------- */

static int built(const char *name)
{
    for (const sg_bf16_kernels *const *t = sg_bf16_built(); *t; t++)
        if (!strcmp((*t)->path, name)) return 1;
    return 0;
}

static void test_select(const sg_cpu_info *ci)
{
    char why[256];
    unsetenv("SIMDGAN_BF16");
    const sg_bf16_kernels *k = sg_bf16_select(NULL, why, sizeof why);
    CHECK(k != NULL, "default bf16 path: %s", sg_last_error());
    char feat[256];
    sg_cpu_bf16_features(ci, feat, sizeof feat);
    printf("bf16 path: %s\nbf16 features: %s\n", why, feat);

    setenv("SIMDGAN_BF16", "ref", 1);
    k = sg_bf16_select(NULL, why, sizeof why);
    CHECK(k == &sg_bf16_kernels_ref && strstr(why, "SIMDGAN_BF16=ref"),
          "SIMDGAN_BF16=ref: got %s (%s)", k ? k->path : "NULL", k ? why : sg_last_error());
    setenv("SIMDGAN_BF16", "fp16", 1);
    k = sg_bf16_select(NULL, why, sizeof why);
    CHECK(!k && strstr(sg_last_error(), "SIMDGAN_BF16=fp16: unknown bf16 path 'fp16'; expected"),
          "SIMDGAN_BF16=fp16: %s", k ? "accepted" : sg_last_error());
    unsetenv("SIMDGAN_BF16");
    const int amx_here = ci->amx_tile && ci->amx_bf16 && ci->os_amx;
    if (!amx_here && built("amx")) {
        k = sg_bf16_select("amx", why, sizeof why);
        CHECK(!k && (strstr(sg_last_error(), "lacks AMX") || strstr(sg_last_error(), "XCR0")),
              "amx requested on a CPU without it: %s", k ? "accepted" : sg_last_error());
    }
    if (!ci->arm_bf16 && built("bfmmla")) {
        k = sg_bf16_select("bfmmla", why, sizeof why);
        CHECK(!k && strstr(sg_last_error(), "lacks Arm BF16"), "bfmmla requested on a CPU "
              "without it: %s", k ? "accepted" : sg_last_error());
    }

    /* A CPU with a bf16 matrix unit must have run it. */
    if (amx_here) {
        CHECK(built("amx"), "this CPU has AMX-BF16 but the AMX kernels are not built in");
        CHECK(ci->amx_perm, "this CPU has AMX-BF16 but the OS refused tile data "
              "(arch_prctl ARCH_REQ_XCOMP_PERM)");
        k = sg_bf16_select(NULL, why, sizeof why);
        CHECK(k && !strcmp(k->path, "amx"), "this CPU has AMX-BF16 but the default bf16 path "
              "is %s", k ? k->path : sg_last_error());
        CHECK(amx_ukr_ran && amx_gemm_ran, "this CPU has AMX-BF16 but the AMX kernel did not "
              "run (micro-kernel %d, gemm %d)", amx_ukr_ran, amx_gemm_ran);
    }
    const int avx512bf16_here = ci->avx512f && ci->avx512_bf16 && ci->os_zmm;
    if (avx512bf16_here) {
        CHECK(built("avx512bf16"), "this CPU has AVX512_BF16 but its kernels are not built in");
        k = sg_bf16_select(NULL, why, sizeof why);
        CHECK(k && (!strcmp(k->path, "avx512bf16") || (amx_here && !strcmp(k->path, "amx"))),
              "this CPU has AVX512_BF16 but the default bf16 path is %s",
              k ? k->path : sg_last_error());
        CHECK(avx512bf16_ukr_ran && avx512bf16_gemm_ran, "this CPU has AVX512_BF16 but its "
              "kernel did not run (micro-kernel %d, gemm %d)", avx512bf16_ukr_ran,
              avx512bf16_gemm_ran);
    }
    if (ci->arm_bf16) {
        CHECK(built("bfmmla"), "this CPU has Arm BF16 but the BFMMLA kernels are not built in");
        k = sg_bf16_select(NULL, why, sizeof why);
        CHECK(k && !strcmp(k->path, "bfmmla"), "this CPU has Arm BF16 but the default bf16 "
              "path is %s", k ? k->path : sg_last_error());
        CHECK(bfmmla_ukr_ran && bfmmla_gemm_ran, "this CPU has Arm BF16 but the BFMMLA kernel "
              "did not run (micro-kernel %d, gemm %d)", bfmmla_ukr_ran, bfmmla_gemm_ran);
    }
}

int main(void)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    test_round();

    path paths[16];
    size_t n = 0;
    for (const sg_bf16_kernels *const *t = sg_bf16_built(); *t; t++) {
        if (!sg_bf16_runnable(*t, &ci)) {
            printf("bf16 %s: not run here\n", (*t)->path);
            continue;
        }
        if ((*t)->mr) {
            paths[n].k = *t, paths[n].fk = &sg_kernels_ref;
            snprintf(paths[n].label, sizeof paths[n].label, "%s", (*t)->path);
            n++;
            continue;
        }
        /* The ref path runs beside whichever fp32 table is chosen: all of them. */
        for (const sg_kernels *const *f = sg_kernels_built(); *f && n < 15; f++)
            if (sg_kernels_runnable(*f, &ci)) {
                paths[n].k = *t, paths[n].fk = *f;
                snprintf(paths[n].label, sizeof paths[n].label, "ref over %s", (*f)->isa);
                n++;
            }
    }
    /* On x86 the emulated object is built with amx.c's AVX-512 packs. */
#if defined(__x86_64__) || defined(__i386__)
    const int emulated_runs = ci.avx512f && ci.os_zmm;
#else
    const int emulated_runs = 1;
#endif
    if (emulated_runs) {
        paths[n].k = &sg_bf16_kernels_amx_emulated, paths[n].fk = &sg_kernels_ref;
        snprintf(paths[n].label, sizeof paths[n].label, "amx on emulated tiles");
        n++;
    } else {
        printf("amx on emulated tiles: not run (its packs need AVX-512F)\n");
    }

    for (size_t i = 0; i < n; i++) test_ukr(&paths[i]);
    for (size_t i = 0; i < n; i++) test_gemm(&paths[i]);
    for (size_t i = 0; i < n; i++) test_pack_steps(&paths[i]), test_chain(&paths[i]);
    test_select(&ci);
    return check_finish("test_bf16");
}
