/* test_gemm.c: the full SGEMM driver against a double-precision reference,
 * for every kernel table this CPU runs, over shapes with edge tiles (m < MR,
 * n < NR, k = 0, 1, odd) and several K blocks, in the three layouts a Linear
 * layer uses, with and without epilogues; and bit-identical results for 1,
 * 2 and 3 threads. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "cpu.h"
#include "gemm.h"
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

typedef struct gemm_case {
    size_t M, N, K;
    int layout, accumulate;
    sg_epilogue epi;
    const float *a, *b;
    float *c;
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

static void run(sg_engine *e, gemm_case *g)
{
    sg_view A, B;
    views(g, &A, &B);
    const sg_epilogue *epi = g->epi.bias || g->epi.act || g->epi.dact ? &g->epi : NULL;
#ifdef _OPENMP
#pragma omp parallel num_threads(e->nth)
    sg_gemm(e, g->M, g->N, g->K, A, B, g->c, g->N, g->accumulate, epi, omp_get_thread_num());
#else
    sg_gemm(e, g->M, g->N, g->K, A, B, g->c, g->N, g->accumulate, epi, 0);
#endif
}

/* The reference in double; bound[i] = sum |a b| for the error bound. */
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
            const sg_epilogue *e = &g->epi;
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

int main(void)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    static const size_t Ms[] = {1, 3, 7, 13, 15, 37};
    static const size_t Ns[] = {1, 5, 16, 31, 33, 67};
    static const size_t Ks[] = {0, 1, 2, 7, 64, 201};
    size_t maxe = 100 * 300;
    float *a = sg_xalloc(maxe * 4), *b = sg_xalloc(maxe * 4), *bias = sg_xalloc(100 * 4);
    float *y = sg_xalloc(100 * 100 * 4), *c = sg_xalloc(100 * 100 * 4), *c0 = sg_xalloc(100 * 100 * 4);
    float *c1 = sg_xalloc(100 * 100 * 4);
    double *ref = malloc(100 * 100 * sizeof(double)), *bound = malloc(100 * 100 * sizeof(double));
    for (size_t i = 0; i < maxe; i++) a[i] = frand(), b[i] = frand();
    for (size_t i = 0; i < 100; i++) bias[i] = frand();
    for (size_t i = 0; i < 100 * 100; i++) y[i] = frand(), c0[i] = frand();

    for (const sg_kernels *const *t = sg_kernels_built(); *t; t++) {
        const sg_kernels *k = *t;
        if (!sg_kernels_runnable(k, &ci)) {
            printf("skip %s: not supported by this CPU\n", k->isa);
            continue;
        }
        /* A small KC forces three K blocks on K = 201; 1 thread here. */
        setenv("SIMDGAN_KC", "96", 1);
        sg_engine e;
        CHECK(sg_engine_init(&e, k, 1) == 0, "%s", sg_last_error());
        unsetenv("SIMDGAN_KC");
        sg_engine_reserve(&e, 300, 300, 300);
        double worst = 0.0;
        int cases = 0;
        for (int layout = 0; layout < 3; layout++)
            for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
                for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
                    for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
                        for (int variant = 0; variant < 4; variant++) {
                            gemm_case g = {Ms[mi], Ns[ni], Ks[ki], layout, variant == 1,
                                           {0}, a, b, c};
                            if (variant == 2) g.epi = (sg_epilogue){bias, SG_ACT_TANH, 0, NULL, 0};
                            if (variant == 3)
                                g.epi = (sg_epilogue){NULL, 0, ki % 2 ? SG_ACT_TANH : SG_ACT_LRELU,
                                                      y, g.N};
                            memcpy(c, c0, g.M * g.N * 4);
                            run(&e, &g);
                            reference(&g, c0, ref, bound);
                            /* FP32 accumulation of K products: |err| <= K u sum|ab|
                             * (u = 2^-24), doubled for the blocked order; plus 4 ulp of
                             * the result for tanh (libm or the vector tanh: <= 2 ulp). */
                            for (size_t i = 0; i < g.M * g.N; i++) {
                                double tol = 2.0 * ((double)g.K + 2) * 0x1p-24 * bound[i] +
                                             4.0 * 0x1p-24 * fabs(ref[i]) + 1e-30;
                                double err = fabs((double)c[i] - ref[i]);
                                if (err / tol > worst) worst = err / tol;
                                if (err > tol) {
                                    CHECK(err <= tol, "%s %s M=%zu N=%zu K=%zu variant %d: "
                                          "element %zu is %.9g, expected %.9g",
                                          k->isa, layout_name[layout], g.M, g.N, g.K, variant, i,
                                          (double)c[i], ref[i]);
                                    break;
                                }
                            }
                            cases++;
                        }
        printf("%s: %d GEMM cases, worst error %.3f of the bound\n", k->isa, cases, worst);
        sg_engine_free(&e);

        /* Same bits at any thread count, on model-sized products: a wide one
         * (threads split the columns) and a narrow one (threads also split
         * the rows). */
        static const size_t shapes[2][3] = {{100, 100, 257}, {100, 40, 64}};
        for (int s = 0; s < 2; s++) {
            gemm_case g = {shapes[s][0], shapes[s][1], shapes[s][2], FWD, 0,
                           {bias, SG_ACT_RELU, 0, NULL, 0}, a, b, c};
            for (int nth = 1; nth <= 5; nth++) {
                sg_engine et;
                CHECK(sg_engine_init(&et, k, nth) == 0, "%s", sg_last_error());
                sg_engine_reserve(&et, g.M, g.N, g.K);
                memset(c, 0, g.M * g.N * 4);
                run(&et, &g);
                if (nth == 1) memcpy(c1, c, g.M * g.N * 4);
                CHECK(memcmp(c1, c, g.M * g.N * 4) == 0, "%s: %zux%zux%zu: %d threads differ "
                      "from 1 thread", k->isa, g.M, g.N, g.K, nth);
                sg_engine_free(&et);
            }
        }
    }
    sg_free(a), sg_free(b), sg_free(bias), sg_free(y), sg_free(c), sg_free(c0), sg_free(c1);
    free(ref), free(bound);
    return check_finish("test_gemm");
}
