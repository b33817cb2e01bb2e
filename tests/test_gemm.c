/* test_gemm.c: the full SGEMM driver against a double-precision reference,
 * for every kernel table this CPU runs (tables.h: a table the CPU supports
 * that did not run is a failure), through both of sg_gemm's blockings: per
 * panel and the classic KC x NC block of B (forced with e.path, so that a
 * 2 MiB L2, whose automatic choice is always per panel, runs the block path
 * that small-L2 laptops run).
 *
 * The shape grid: the three layouts a Linear layer uses, edge tiles (m < MR,
 * n < NR, K = 0, 1, odd), with and without accumulate and epilogues, each
 * product under two blockings: this machine's caches, and a small one (MC =
 * 2 MR, KC = 48, NC = 2 NR from SIMDGAN_MC/KC/NC) under which the grid's
 * largest M, N and K span 3 or more MC, NC and KC blocks for every table.
 * Asserted for every product: within a bound derived from K of the double
 * result; nothing written outside C (ldc has padding); and the block path's
 * C bit-identical to the panel path's (the same tile grid and K blocks, so
 * the same operations in the same order).
 *
 * The driver's other two entry points must give sg_gemm's bits: sg_gemm_packed
 * (B packed once by sg_pack_b, as the model keeps its weights) on both paths,
 * and sg_gemm_tiles (each finished tile handed to a function, as Adam
 * consumes a weight gradient) for the raw products.
 *
 * Then model-sized products, also under a laptop's blocking (48 KiB L1d,
 * 1.25 MiB L2): bit-identical results for 1 to 4 threads on both paths,
 * through all three entry points. And SIMDGAN_GEMM_PATH's parsing. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cpu.h"
#include "gemm.h"
#include "tables.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static uint32_t lcg = 12345;
static float frand(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    return (float)(lcg >> 8) / 16777216.0f * 2.0f - 1.0f;
}

enum { FWD, BWD_DATA, BWD_WEIGHTS };
static const char *layout_name[] = {"X.W^T", "dY.W", "dY^T.X"};

enum { BLK_CACHES, BLK_SMALL, BLK_LAPTOP, NBLK };
static const char *blk_name[] = {"caches", "small", "laptop"};
static const char *path_name[] = {"auto", "panel", "block"};

#define PAD 3          /* columns of padding after each row of C */
#define SENTINEL 777.25f

/* Index of the first element where a and b differ bitwise, or n. */
static size_t first_diff_f(const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)) != 0) return i;
    return n;
}

typedef struct gemm_case {
    size_t M, N, K;
    int layout, accumulate;
    sg_epi epi;
    const float *a, *b;
} gemm_case;

/* Views of the stored operands for each layout: A stored [M, K] or [K, M],
 * B stored [N, K] (a weight) or [K, N]. */
static void views(const gemm_case *g, sg_view *A, sg_view *B)
{
    switch (g->layout) {
    case FWD: *A = (sg_view){g->a, g->K, 1}, *B = (sg_view){g->b, 1, g->K}; break;
    case BWD_DATA: *A = (sg_view){g->a, g->K, 1}, *B = (sg_view){g->b, g->N, 1}; break;
    default: *A = (sg_view){g->a, 1, g->M}, *B = (sg_view){g->b, g->N, 1}; break;
    }
}

/* The three entry points of the driver: sg_gemm; sg_gemm_packed, with B
 * pre-packed by sg_pack_b (a weight kept packed); sg_gemm_tiles, each
 * finished tile handed to a function (a weight gradient consumed by Adam;
 * raw sums only: no accumulate, no epilogue). All three must give the same
 * bits. */
enum { VIA_GEMM, VIA_PACKED, VIA_TILES };
static const char *via_name[] = {"sg_gemm", "sg_gemm_packed", "sg_gemm_tiles"};

typedef struct tile_sink {
    float *c;
    size_t ldc, NR;
} tile_sink;

/* sg_gemm_tiles' function: stores the tile (c [mr, nr], ld NR) where sg_gemm
 * would. */
static void store_tile(void *ctx, const float *c, size_t i, size_t j, size_t mr, size_t nr)
{
    const tile_sink *s = ctx;
    for (size_t r = 0; r < mr; r++) memcpy(s->c + (i + r) * s->ldc + j, c + r * s->NR, nr * 4);
}

/* C [M, ldc = N + PAD]: the start values c0 [M, N] (accumulate) in the
 * product's columns, SENTINEL in the padding, then the product, computed
 * via sg_gemm, sg_gemm_packed (B packed into bp) or sg_gemm_tiles. */
static void run(sg_engine *e, const gemm_case *g, const float *c0, float *c, int via, float *bp)
{
    const size_t ldc = g->N + PAD;
    for (size_t i = 0; i < g->M; i++) {
        memcpy(c + i * ldc, c0 + i * g->N, g->N * sizeof(float));
        for (size_t j = g->N; j < ldc; j++) c[i * ldc + j] = SENTINEL;
    }
    sg_view A, B;
    views(g, &A, &B);
    const sg_epi *epi = g->epi.bias || g->epi.act || g->epi.dact ? &g->epi : NULL;
    tile_sink sink = {c, ldc, (size_t)e->k->nr};
    if (via == VIA_PACKED)
        sg_pack_b(e->k, bp, B, g->N, g->K, 0, (g->N + (size_t)e->k->nr - 1) / (size_t)e->k->nr);
#ifdef _OPENMP
#pragma omp parallel num_threads(e->nth)
#endif
    {
        int ith = sg_thread_id();
        if (via == VIA_GEMM)
            sg_gemm(e, g->M, g->N, g->K, A, B, c, ldc, g->accumulate, epi, ith);
        else if (via == VIA_PACKED)
            sg_gemm_packed(e, g->M, g->N, g->K, A, bp, c, ldc, g->accumulate, epi, "test", ith);
        else
            sg_gemm_tiles(e, g->M, g->N, g->K, A, B, store_tile, &sink, "test", ith);
    }
}

/* The reference in double; bound[i] = sum |a b| (+ |c0| + |bias|) for the
 * error bound. */
static void reference(const gemm_case *g, const float *c0, double *ref, double *bound)
{
    sg_view A, B;
    views(g, &A, &B);
    for (size_t i = 0; i < g->M; i++)
        for (size_t j = 0; j < g->N; j++) {
            double s = g->accumulate ? c0[i * g->N + j] : 0.0, mag = fabs(s);
            for (size_t p = 0; p < g->K; p++) {
                double t = (double)A.p[i * A.rs + p * A.cs] * B.p[p * B.rs + j * B.cs];
                s += t, mag += fabs(t);
            }
            const sg_epi *e = &g->epi;
            if (e->bias) s += e->bias[j], mag += fabs(e->bias[j]);
            double y = s;
            if (e->act == SG_ACT_RELU) y = s > 0 ? s : 0;
            if (e->act == SG_ACT_TANH) y = tanh(s);
            if (e->dact == SG_ACT_LRELU) y = e->y[i * e->ldy + j] > 0 ? s : 0.2 * s;
            if (e->dact == SG_ACT_TANH) {
                double yy = e->y[i * e->ldy + j];
                y = s * (1.0 - yy * yy);
            }
            ref[i * g->N + j] = y;
            bound[i * g->N + j] = mag;
        }
}

/* C against the reference: FP32 accumulation of K products has |err| <= K u
 * sum|ab| (u = 2^-24), doubled for the blocked order, plus 2 for the start
 * value and the bias; plus 4 ulp of the result for tanh (libm or the vector
 * tanh: <= 2 ulp). Then the padding must still hold SENTINEL. Returns the
 * worst error as a fraction of its bound. */
static double check_result(const char *what, const gemm_case *g, const float *c,
                           const double *ref, const double *bound)
{
    const size_t ldc = g->N + PAD;
    double worst = 0.0;
    size_t bad = 0;
    for (size_t i = 0; i < g->M; i++)
        for (size_t j = 0; j < ldc; j++) {
            const float v = c[i * ldc + j];
            if (j >= g->N) {
                bad += v != SENTINEL;
                continue;
            }
            const size_t r = i * g->N + j;
            double tol = 2.0 * ((double)g->K + 2) * 0x1p-24 * bound[r] +
                         4.0 * 0x1p-24 * fabs(ref[r]) + 1e-30;
            double err = fabs((double)v - ref[r]);
            if (!(err <= worst * tol)) worst = err / tol;
            if (!(err <= tol)) {
                CHECK(err <= tol, "%s M=%zu N=%zu K=%zu: C[%zu][%zu] is %.9g, expected %.9g "
                      "(bound %.3g)", what, g->M, g->N, g->K, i, j, (double)v, ref[r], tol);
                return worst;
            }
        }
    CHECK(bad == 0, "%s M=%zu N=%zu K=%zu: %zu padding elements of C were written", what, g->M,
          g->N, g->K, bad);
    return worst;
}

/* A 48 KiB L1d / 1.25 MiB L2 laptop core (an Intel P-core; Apple and AMD
 * have larger L1s, many have 1 MiB or less of L2). */
static const sg_hw laptop_hw = {4, 8, 48 << 10, 1280 << 10, 12 << 20, 4, "test"};

/* An engine for nth threads with the given blocking and path, its
 * workspace reserved for M x N x K. */
static void engine(sg_engine *e, const sg_kernels *k, int nth, int blk, int path, size_t M,
                   size_t N, size_t K)
{
    char mc[16], nc[16];
    if (blk == BLK_SMALL) {
        snprintf(mc, sizeof mc, "%d", 2 * k->mr);
        snprintf(nc, sizeof nc, "%d", 2 * k->nr);
        setenv("SIMDGAN_MC", mc, 1);
        setenv("SIMDGAN_KC", "48", 1);
        setenv("SIMDGAN_NC", nc, 1);
    }
    CHECK(sg_engine_init(e, k, nth) == 0, "%s", sg_last_error());
    unsetenv("SIMDGAN_MC"), unsetenv("SIMDGAN_KC"), unsetenv("SIMDGAN_NC");
    if (blk == BLK_SMALL)
        CHECK(e->blk.mc == 2 * k->mr && e->blk.kc == 48 && e->blk.nc == 2 * k->nr &&
                  strcmp(e->blk.source, "environment") == 0,
              "%s: SIMDGAN_MC/KC/NC=%s/48/%s gave %d/%d/%d (%s)", k->isa, mc, nc, e->blk.mc,
              e->blk.kc, e->blk.nc, e->blk.source);
    if (blk == BLK_LAPTOP) {
        CHECK(sg_blocking_init(&e->blk, k, &laptop_hw) == 0, "%s", sg_last_error());
        e->l2 = laptop_hw.l2;
    }
    e->path = path;
    sg_engine_reserve(e, M, N, K);
}

/* got (computed via) must be want (sg_gemm on the panel path), bit for bit;
 * both [M, N + PAD]. */
static void check_bits(const char *what, int via, const gemm_case *g, const float *got,
                       const float *want)
{
    const size_t n = g->M * (g->N + PAD), at = first_diff_f(got, want, n);
    CHECK(at == n, "%s, %s, M=%zu N=%zu K=%zu: C[%zu][%zu] is %.9g, sg_gemm on the panel path "
          "%.9g", what, via_name[via], g->M, g->N, g->K, at / (g->N + PAD), at % (g->N + PAD),
          (double)got[at], (double)want[at]);
}

/* The shape grid, on every table (each shape's reference computed once). */
static void test_grid(const sg_kernels *const *tables, const float *a, const float *b,
                      const float *bias, const float *y, const float *c0)
{
    static const size_t Ms[] = {1, 3, 7, 13, 15, 37, 61};
    static const size_t Ns[] = {1, 5, 16, 31, 33, 67, 193};
    static const size_t Ks[] = {0, 1, 2, 7, 64, 201};
    const size_t maxM = 61, maxN = 193, maxK = 201;
    enum { MAXT = 8 };
    size_t nt = 0;
    while (tables[nt]) nt++;
    sg_engine e[MAXT][2][2]; /* [table][blocking][path - SG_PATH_PANEL] */
    double worst[MAXT] = {0};
    int failed[MAXT] = {0};
    for (size_t t = 0; t < nt; t++) {
        const sg_kernels *k = tables[t];
        for (int blk = 0; blk < 2; blk++)
            for (int p = 0; p < 2; p++)
                engine(&e[t][blk][p], k, 1, blk, SG_PATH_PANEL + p, maxM, maxN, maxK);
        /* The small blocking's blocks over the grid's largest shape. */
        const sg_blocking *sb = &e[t][BLK_SMALL][0].blk;
        const size_t mcb = (maxM + (size_t)sb->mc - 1) / (size_t)sb->mc,
                     ncb = (maxN + (size_t)sb->nc - 1) / (size_t)sb->nc,
                     kcb = (maxK + (size_t)sb->kc - 1) / (size_t)sb->kc;
        CHECK(mcb >= 3 && ncb >= 3 && kcb >= 3, "%s: the small blocking spans only %zu MC, %zu "
              "NC, %zu KC blocks", k->isa, mcb, ncb, kcb);
    }

    float *c[3];
    for (int i = 0; i < 3; i++) c[i] = sg_xalloc(maxM * (maxN + PAD) * 4);
    float *bp = sg_xalloc((maxN + 64) * maxK * 4); /* sg_pack_b's panels, NR <= 64 */
    double *ref = malloc(maxM * maxN * sizeof(double));
    double *bound = malloc(maxM * maxN * sizeof(double));
    int shapes = 0, raw = 0;
    for (int layout = 0; layout < 3; layout++)
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
            for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
                for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
                    /* The four variants in turn, so that each layout, M, N and
                     * K meets each of them (all four on every shape would cost
                     * four times as much: a minute more under qemu). */
                    const int variant = (int)((layout + mi + ni + ki) % 4);
                    gemm_case g = {Ms[mi], Ns[ni], Ks[ki], layout, variant == 1, {0}, a, b};
                    if (variant == 2) g.epi = (sg_epi){bias, SG_ACT_TANH, 0, NULL, 0};
                    if (variant == 3)
                        g.epi = (sg_epi){NULL, 0, ki % 2 ? SG_ACT_TANH : SG_ACT_LRELU, y,
                                         g.N + 1};
                    reference(&g, c0, ref, bound);
                    shapes++, raw += variant == 0;
                    for (size_t t = 0; t < nt; t++)
                        for (int blk = 0; blk < 2; blk++) {
                            const int before = check_failures;
                            char what[96];
                            for (int p = 0; p < 2; p++) {
                                snprintf(what, sizeof what, "%s %s variant %d, %s blocking, "
                                         "%s path", tables[t]->isa, layout_name[layout],
                                         variant, blk_name[blk], path_name[SG_PATH_PANEL + p]);
                                run(&e[t][blk][p], &g, c0, c[p], VIA_GEMM, NULL);
                                double r = check_result(what, &g, c[p], ref, bound);
                                worst[t] = fmax(worst[t], r);
                                if (p) check_bits(what, VIA_GEMM, &g, c[1], c[0]);
                                run(&e[t][blk][p], &g, c0, c[2], VIA_PACKED, bp);
                                check_bits(what, VIA_PACKED, &g, c[2], c[0]);
                                if (variant == 0 && p == 0) {
                                    run(&e[t][blk][p], &g, c0, c[2], VIA_TILES, NULL);
                                    check_bits(what, VIA_TILES, &g, c[2], c[0]);
                                }
                            }
                            failed[t] |= check_failures != before;
                        }
                }
    for (size_t t = 0; t < nt; t++) {
        const sg_blocking *cb = &e[t][BLK_CACHES][0].blk, *sb = &e[t][BLK_SMALL][0].blk;
        printf("%s: grid: %d shapes x 2 blockings (caches %d/%d/%d, small %d/%d/%d) x 2 paths: "
               "worst error %.3f of the bound; block == panel, and sg_gemm_packed and (%d raw "
               "sums) sg_gemm_tiles == sg_gemm, bitwise%s\n", tables[t]->isa, shapes, cb->mc,
               cb->kc, cb->nc, sb->mc, sb->kc, sb->nc, worst[t], raw,
               failed[t] ? "  FAILED" : "");
        for (int blk = 0; blk < 2; blk++)
            for (int p = 0; p < 2; p++) sg_engine_free(&e[t][blk][p]);
    }
    sg_free(c[0]), sg_free(c[1]), sg_free(c[2]), sg_free(bp);
    free(ref), free(bound);
}

/* Model-sized products (D's first layer forward on 2B rows, D's input
 * gradient times tanh' on B rows, D's first weight gradient, and a narrow
 * one whose threads also split rows), under each blocking (the laptop's
 * included) and path, at 1 to 4 threads, through sg_gemm, sg_gemm_packed
 * and (raw sums) sg_gemm_tiles: the bits of 1 thread's sg_gemm on the panel
 * path under the same blocking, which is also checked against the double
 * reference. */
enum { NMODEL = 4 };
static const struct model_shape {
    size_t M, N, K;
    int layout, epi;
} model_shapes[NMODEL] = {
    {200, 256, 784, FWD, 1}, {100, 784, 256, BWD_DATA, 2}, {256, 784, 200, BWD_WEIGHTS, 0},
    {100, 40, 64, FWD, 0}};

static gemm_case model_case(int s, const float *a, const float *b, const float *bias,
                            const float *y)
{
    const struct model_shape *m = &model_shapes[s];
    gemm_case g = {m->M, m->N, m->K, m->layout, 0, {0}, a, b};
    if (m->epi == 1) g.epi = (sg_epi){bias, SG_ACT_RELU, 0, NULL, 0};
    if (m->epi == 2) g.epi = (sg_epi){NULL, 0, SG_ACT_TANH, y, g.N};
    return g;
}

static void test_threads(const sg_kernels *k, const float *a, const float *b, const float *bias,
                         const float *y, const float *c0, double *const ref[NMODEL],
                         double *const bound[NMODEL])
{
    size_t cmax = 0;
    for (int s = 0; s < NMODEL; s++) {
        const size_t n = model_shapes[s].M * (model_shapes[s].N + PAD);
        cmax = n > cmax ? n : cmax;
    }
    float *c = sg_xalloc(cmax * 4), *c1 = sg_xalloc(cmax * 4);
    float *bp = sg_xalloc(sg_packed_floats(k, 784, 784) * 4);
    int runs = 0, maxth = 1, before = check_failures;
    double worst = 0.0;
    for (int s = 0; s < NMODEL; s++) {
        gemm_case g = model_case(s, a, b, bias, y);
        const int raw = !g.epi.bias && !g.epi.act && !g.epi.dact && !g.accumulate;
        for (int blk = 0; blk < NBLK; blk++)
            for (int path = SG_PATH_PANEL; path <= SG_PATH_BLOCK; path++)
                for (int nth = 1; nth <= 4; nth++) {
                    sg_engine e;
                    engine(&e, k, nth, blk, path, g.M, g.N, g.K);
                    if (e.max_nth < nth) { /* a build without OpenMP */
                        sg_engine_free(&e);
                        break;
                    }
                    maxth = nth > maxth ? nth : maxth;
                    char what[96];
                    snprintf(what, sizeof what, "%s %s, %s blocking, %s path, %d thread%s",
                             k->isa, layout_name[g.layout], blk_name[blk], path_name[path], nth,
                             nth > 1 ? "s" : "");
                    for (int via = VIA_GEMM; via <= (raw ? VIA_TILES : VIA_PACKED); via++) {
                        run(&e, &g, c0, c, via, bp);
                        runs++;
                        if (via == VIA_GEMM && path == SG_PATH_PANEL && nth == 1) {
                            worst = fmax(worst, check_result(what, &g, c, ref[s], bound[s]));
                            memcpy(c1, c, g.M * (g.N + PAD) * 4);
                        }
                        check_bits(what, via, &g, c, c1);
                    }
                    sg_engine_free(&e);
                }
    }
    printf("%s: model shapes: %d shapes x %d blockings x 2 paths x 1-%d threads x sg_gemm, "
           "_packed (and _tiles) = %d products, worst error %.3f of the bound; all the bits of "
           "1 thread's sg_gemm on the panel path%s\n", k->isa, NMODEL, NBLK, maxth, runs, worst,
           check_failures == before ? "" : "  FAILED");
    sg_free(c), sg_free(c1), sg_free(bp);
}

/* SIMDGAN_GEMM_PATH sets e.path; anything else than auto, panel, block or
 * empty is refused with one line. */
static void test_path_env(void)
{
    static const char *const vals[] = {"", "auto", "panel", "block"};
    static const int want[] = {SG_PATH_AUTO, SG_PATH_AUTO, SG_PATH_PANEL, SG_PATH_BLOCK};
    for (int i = 0; i < 4; i++) {
        setenv("SIMDGAN_GEMM_PATH", vals[i], 1);
        sg_engine e;
        int rc = sg_engine_init(&e, &sg_kernels_ref, 1);
        CHECK(rc == 0 && e.path == want[i], "SIMDGAN_GEMM_PATH='%s': rc %d, path %d, expected %d",
              vals[i], rc, e.path, want[i]);
        if (rc == 0) sg_engine_free(&e);
    }
    setenv("SIMDGAN_GEMM_PATH", "blocks", 1);
    sg_engine e;
    CHECK(sg_engine_init(&e, &sg_kernels_ref, 1) == -1 &&
              strcmp(sg_last_error(),
                     "SIMDGAN_GEMM_PATH=blocks: expected auto, panel or block") == 0,
          "SIMDGAN_GEMM_PATH=blocks: '%s'", sg_last_error());
    unsetenv("SIMDGAN_GEMM_PATH");
    sg_engine_init(&e, &sg_kernels_ref, 1);
    CHECK(e.path == SG_PATH_AUTO, "unset SIMDGAN_GEMM_PATH: path %d, expected auto", e.path);
    sg_engine_free(&e);
    printf("SIMDGAN_GEMM_PATH: '', auto, panel, block and a refused 'blocks'\n");
}

int main(void)
{
    /* The test chooses every blocking and path itself. */
    unsetenv("SIMDGAN_MC"), unsetenv("SIMDGAN_KC"), unsetenv("SIMDGAN_NC");
    test_path_env();

    const size_t maxe = 256 * 784, maxc = 256 * (784 + PAD);
    float *a = sg_xalloc(maxe * 4), *b = sg_xalloc(maxe * 4), *bias = sg_xalloc(784 * 4);
    float *y = sg_xalloc(maxc * 4), *c0 = sg_xalloc(maxc * 4);
    for (size_t i = 0; i < maxe; i++) a[i] = frand(), b[i] = frand();
    for (size_t i = 0; i < 784; i++) bias[i] = frand();
    for (size_t i = 0; i < maxc; i++) y[i] = frand(), c0[i] = frand();
    /* The model shapes' references, shared by every table. */
    double *ref[NMODEL], *bound[NMODEL];
    for (int s = 0; s < NMODEL; s++) {
        gemm_case g = model_case(s, a, b, bias, y);
        ref[s] = malloc(g.M * g.N * sizeof(double));
        bound[s] = malloc(g.M * g.N * sizeof(double));
        reference(&g, c0, ref[s], bound[s]);
    }

    const sg_kernels *tables[8];
    tables_to_run(tables, 8);
    for (const sg_kernels **t = tables; *t; t++)
        printf("%s: %s, %dx%d\n", (*t)->isa, (*t)->ukr_name, (*t)->mr, (*t)->nr);
    test_grid(tables, a, b, bias, y, c0);
    for (const sg_kernels **t = tables; *t; t++) {
        test_threads(*t, a, b, bias, y, c0, ref, bound);
        table_ran(*t);
    }
    tables_all_ran("test_gemm");

    for (int s = 0; s < NMODEL; s++) free(ref[s]), free(bound[s]);
    sg_free(a), sg_free(b), sg_free(bias), sg_free(y), sg_free(c0);
    return check_finish("test_gemm");
}
