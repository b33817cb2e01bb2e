/* test_autothreads.c: changing the thread count between steps, the engine's
 * barrier, binding policies, and the autothreads controller.
 *
 * - Training steps give bit-identical networks whether the count stays at 1
 *   or changes every step (1, 2, 3, 2, ...; and as the controller picks it),
 *   with threads bound, unbound, or switching between the two; each binding
 *   policy binds the step's thread 0 or not, as it says.
 * - A training step crosses the barriers its data flow needs, as many at 1,
 *   2 and 3 threads: 31 fused (listed in test_step_barriers), 65 unfused.
 * - The barrier keeps phases apart when its waiters sleep at once (spin 0)
 *   and when they spin, at 2 and 3 threads (3 is more than this machine's
 *   cores in the 2-core CI: the sleeping path is what makes that work).
 * - The controller, fed synthetic step times (it reads no clock), keeps the
 *   most threads on a model of an idle machine, with few probe steps; moves
 *   to 1 thread on a model of a busy one, within a few steps of the load
 *   arriving, and back after it leaves; and stops probing down as soon as a
 *   count is slower. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <string.h>

#include "autothreads.h"
#include "check.h"
#include "cpu.h"
#include "gemm.h"
#include "hw.h"
#include "model.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- bit-identical steps at changing thread counts ---------------------- */

static void fill(void *ctx, sg_gan *g, int ith, int nth)
{
    const int step = *(const int *)ctx;
    const size_t B = (size_t)g->cfg.batch, img = (size_t)g->cfg.image, lat = (size_t)g->cfg.latent;
    size_t r0, r1;
    sg_slice(B, ith, nth, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        uint32_t s = (uint32_t)(step * 7919 + (int)r * 104729 + 1);
        for (size_t j = 0; j < img; j++) {
            s = s * 1664525u + 1013904223u;
            g->xd[r * img + j] = (float)(s >> 8) / 8388608.0f - 1.0f;
        }
        for (size_t j = 0; j < lat; j++) {
            s = s * 1664525u + 1013904223u;
            g->z1[r * lat + j] = (float)(s >> 8) / 4194304.0f - 2.0f;
            s = s * 1664525u + 1013904223u;
            g->z2[r * lat + j] = (float)(s >> 8) / 4194304.0f - 2.0f;
        }
    }
}

enum { FIXED_1, CYCLE, CONTROLLER };
#define STEPS 12 /* the controller's first round: 3, 2 and 1 thread, 4 steps each */

/* Runs STEPS steps with the counts of `mode` on an engine for max_nth
 * threads; copies G's and D's parameters into gp, dp. */
static void train(const sg_kernels *k, int max_nth, int mode, int bind, float *gp, float *dp)
{
    sg_engine e;
    CHECK(sg_engine_init(&e, k, max_nth) == 0, "%s", sg_last_error());
    e.bind = bind;
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.hidden = 96; /* edge tiles in every product */
    c.batch = 30;
    sg_gan g;
    sg_gan_init(&g, &c, &e, 7);
    sg_autothreads a;
    sg_autothreads_init(&a, e.max_nth);
    int n = sg_autothreads_next(&a, -1.0), used[4] = {0};
    static const int cycle[STEPS] = {1, 2, 3, 2, 3, 1, 3, 2, 1, 1, 2, 3};
    for (int s = 0; s < STEPS; s++) {
        int nth = mode == FIXED_1 ? 1 : mode == CYCLE ? cycle[s] : n;
        if (nth > e.max_nth) nth = e.max_nth;
        if (mode == CYCLE && s % 2) /* bound, unbound, bound, ... */
            e.bind = e.bind == SG_BIND_ALWAYS ? SG_BIND_NEVER : SG_BIND_ALWAYS;
        CHECK(sg_engine_set_threads(&e, nth) == 0, "%s", sg_last_error());
        used[nth] = 1;
        sg_gan_run_step(&g, fill, &s);
        /* Times that make the controller switch: fewer threads "faster". */
        n = sg_autothreads_next(&a, 1e-3 * (1.0 + nth + (s % 3)));
    }
    if (mode != FIXED_1)
        CHECK(used[1] && used[e.max_nth], "counts 1 and %d not both used", e.max_nth);
    memcpy(gp, g.G.param, g.G.total * sizeof(float));
    memcpy(dp, g.D.param, g.D.total * sizeof(float));
    sg_gan_free(&g);
    sg_engine_free(&e);
}

static void test_switching(const sg_kernels *k)
{
    const size_t most = 1 << 20; /* floats: more than either network at hidden 96 */
    float *g1 = sg_xmalloc(most * 4), *d1 = sg_xmalloc(most * 4);
    float *g2 = sg_xmalloc(most * 4), *d2 = sg_xmalloc(most * 4);
    memset(g1, 0, most * 4), memset(d1, 0, most * 4);
    train(k, 1, FIXED_1, SG_BIND_NEVER, g1, d1);
    static const struct {
        int mode, bind;
        const char *what;
    } runs[] = {{CYCLE, SG_BIND_NEVER, "1, 2, 3 threads in turn, binding switched"},
                {CONTROLLER, SG_BIND_NEVER, "the controller's counts"},
                {CONTROLLER, SG_BIND_AUTO, "the controller's counts, binding auto"},
                {FIXED_1, SG_BIND_ALWAYS, "1 thread, bound"}};
    for (size_t r = 0; r < sizeof runs / sizeof *runs; r++) {
        memset(g2, 0, most * 4), memset(d2, 0, most * 4);
        train(k, 3, runs[r].mode, runs[r].bind, g2, d2);
        CHECK(!memcmp(g1, g2, most * 4) && !memcmp(d1, d2, most * 4),
              "[%s] %s: parameters differ from 1 thread's", k->isa, runs[r].what);
    }
    free(g1), free(d1), free(g2), free(d2);
}

static void test_set_threads(const sg_kernels *k)
{
    sg_engine e;
    CHECK(sg_engine_init(&e, k, 2) == 0, "%s", sg_last_error());
    CHECK(sg_engine_set_threads(&e, 0) == -1, "0 threads accepted");
    CHECK(strstr(sg_last_error(), "threads 0") != NULL, "error: %s", sg_last_error());
    CHECK(sg_engine_set_threads(&e, e.max_nth + 1) == -1, "more than max_nth accepted");
    CHECK(sg_engine_set_threads(&e, 1) == 0 && e.nth == 1, "%s", sg_last_error());
    CHECK(e.bind == SG_BIND_AUTO, "default binding %d", e.bind);
    sg_engine_free(&e);
}

/* The calling thread is the region's thread 0: after a step it is bound as
 * the policy says (where binding works here at all). */
static void test_binding(const sg_kernels *k)
{
    sg_engine e;
    CHECK(sg_engine_init(&e, k, 2) == 0, "%s", sg_last_error());
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.hidden = 32, c.batch = 8;
    sg_gan g;
    sg_gan_init(&g, &c, &e, 1);
    int works = sg_hw_bind(0) == 0;
    printf("binding threads to cores: %s here\n", works ? "available" : "not available");
    sg_hw_unbind();
    CHECK(sg_hw_bound() == -1, "unbound: %d", sg_hw_bound());
    static const struct {
        int bind, nth, bound;
    } cases[] = {{SG_BIND_AUTO, 2, 1}, {SG_BIND_AUTO, 1, 0}, {SG_BIND_ALWAYS, 1, 1},
                 {SG_BIND_NEVER, 2, 0}, {SG_BIND_AUTO, 2, 1}, {SG_BIND_NEVER, 1, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].nth > e.max_nth) continue;
        e.bind = cases[i].bind;
        sg_engine_set_threads(&e, cases[i].nth);
        int s = (int)i;
        sg_gan_run_step(&g, fill, &s);
        int want = works && cases[i].bound ? 0 : -1;
        CHECK(sg_hw_bound() == want, "policy %d at %d threads: bound for %d, expected %d",
              cases[i].bind, cases[i].nth, sg_hw_bound(), want);
    }
    sg_gan_free(&g);
    sg_engine_free(&e);
}

/* ---- the barrier -------------------------------------------------------- */

static void test_barrier(const sg_kernels *k, int nth, long spin_ns, int rounds)
{
#ifdef _OPENMP
    sg_engine e;
    CHECK(sg_engine_init(&e, k, nth) == 0, "%s", sg_last_error());
    e.spin_ns = spin_ns;
    volatile int seen[8] = {0};
    int bad = 0;
#pragma omp parallel num_threads(nth) reduction(+ : bad)
    {
        int ith = omp_get_thread_num();
        for (int p = 1; p <= rounds; p++) {
            seen[ith] = p;
            sg_barrier(&e);
            for (int t = 0; t < nth; t++) bad += seen[t] != p;
            sg_barrier(&e);
        }
    }
    CHECK(bad == 0, "%d threads, spin %ld ns: %d phase violations", nth, spin_ns, bad);
    sg_engine_free(&e);
#else
    (void)k, (void)nth, (void)spin_ns, (void)rounds;
#endif
}

/* ---- the controller ----------------------------------------------------- */

/* A machine model: the step time at n threads, by phase of the run. */
typedef double (*model_fn)(int n, long step);
static double idle2(int n, long step) { (void)step; return n == 2 ? 3.4e-3 : 6.1e-3; }
static double busy2(int n, long step) { (void)step; return n == 2 ? 12.0e-3 : 6.4e-3; }
static double busy_between(int n, long step)
{
    return step >= 1000 && step < 3000 ? busy2(n, step) : idle2(n, step);
}
/* 16 cores, one of them busy: 15 threads best. */
static double one_busy16(int n, long step)
{
    (void)step;
    return n == 16 ? 4e-3 : 16.0 / n * 0.9e-3;
}
static double idle16(int n, long step) { (void)step; return 16.0 / n * 1e-3; }

/* Runs the controller for `steps` steps on model m; returns the steps run at
 * each count in at[0..16], and the first step at or after `from` where the
 * count returned is `want` (-1 if none). */
static long simulate(int max, model_fn m, long steps, long at[17], long from, int want)
{
    sg_autothreads a;
    sg_autothreads_init(&a, max);
    memset(at, 0, 17 * sizeof(long));
    long first = -1, outside = 0;
    int n = sg_autothreads_next(&a, -1.0);
    for (long s = 0; s < steps; s++) {
        at[n]++;
        if (first < 0 && s >= from && n == want) first = s;
        n = sg_autothreads_next(&a, m(n, s) * (s == 0 ? 3.0 : 1.0)); /* a cold first step */
        if (n < 1 || n > max) outside++, n = 1;
    }
    CHECK(outside == 0, "%ld counts outside 1..%d", outside, max);
    return first;
}

static void test_controller(void)
{
    sg_autothreads a;
    sg_autothreads_init(&a, 2);
    CHECK(a.ncand == 2 && a.cand[0] == 2 && a.cand[1] == 1, "candidates for 2: %d", a.ncand);
    sg_autothreads_init(&a, 16);
    CHECK(a.ncand == 6 && a.cand[1] == 15 && a.cand[2] == 8 && a.cand[5] == 1,
          "candidates for 16: %d, %d, %d ...", a.cand[0], a.cand[1], a.cand[2]);
    sg_autothreads_init(&a, 1);
    CHECK(sg_autothreads_next(&a, -1.0) == 1 && sg_autothreads_next(&a, 1e-3) == 1, "1 thread");
    char line[200];
    sg_autothreads_describe(&a, line, sizeof line);
    CHECK(!strcmp(line, "1 thread (0 rounds)"), "describe: %s", line);
    /* Step times of 0 (a coarse clock) must not derail the choice. */
    sg_autothreads_init(&a, 4);
    int n = sg_autothreads_next(&a, -1.0);
    for (int s = 0; s < 500; s++) n = sg_autothreads_next(&a, 0.0);
    CHECK(n == 4, "all steps 0 s: %d threads", n);

    long at[17];
    const long N = 20000;
    simulate(2, idle2, N, at, 0, 0);
    CHECK(at[1] * 100 < N, "idle, 2 cores: %ld of %ld steps at 1 thread", at[1], N);
    simulate(2, busy2, N, at, 0, 0);
    CHECK(at[2] * 100 < N * 3, "busy, 2 cores: %ld of %ld steps at 2 threads", at[2], N);
    long to1 = simulate(2, busy_between, 5000, at, 1000, 1);
    CHECK(to1 >= 1000 && to1 < 1000 + 2 * SG_AT_WINDOW + 2 * (SG_AT_PROBE + 1),
          "load from step 1000: 1 thread from step %ld", to1);
    /* The load leaves at step 3000: 2 threads held again by the next round. */
    sg_autothreads_init(&a, 2);
    n = sg_autothreads_next(&a, -1.0);
    long back = -1;
    for (long s = 0; s < 6000 && back < 0; s++) {
        if (s >= 3000 && n == 2 && a.probing < 0) back = s;
        n = sg_autothreads_next(&a, busy_between(n, s));
    }
    CHECK(back > 3000 && back <= 3000 + SG_AT_HOLD + 4 * (SG_AT_PROBE + 1),
          "load gone at step 3000: 2 threads held from step %ld", back);
    simulate(16, one_busy16, N, at, 0, 0);
    CHECK(at[15] > N * 9 / 10, "16 cores, one busy: %ld of %ld steps at 15", at[15], N);
    simulate(16, idle16, N, at, 0, 0);
    CHECK(at[16] * 100 > N * 99 && at[8] == 0 && at[1] == 0,
          "16 idle cores: %ld steps at 16, %ld at 8, %ld at 1", at[16], at[8], at[1]);
    sg_autothreads_init(&a, 2);
    n = sg_autothreads_next(&a, -1.0);
    for (int s = 0; s < 20; s++) n = sg_autothreads_next(&a, busy2(n, s));
    sg_autothreads_describe(&a, line, sizeof line);
    CHECK(!strcmp(line, "1 thread (probed 2: 12.00 ms, 1: 6.40 ms; 1 round)"), "describe: %s",
          line);
}

/* Barriers of one step (after a first one, which may repack weights in a
 * region of its own). Fused, 31: the fill; each product whose B is a packed
 * weight ends in one (forward: G's 3 on [z1; z2], D's 3 on 2B rows and 3 on
 * B; backward-data: D's 2 in the D step, 3 in the G step, G's 2); each
 * weight-gradient product (Adam in its tiles) packs A and ends, 2 each, 3
 * per network; the two losses. Unfused, 65: each forward and activation
 * backward pass also ends in one, every product packs A behind one, and
 * each Adam pass is one. */
static unsigned long step_barriers(const sg_kernels *k, int nth, int fusion)
{
    sg_engine e;
    CHECK(sg_engine_init(&e, k, nth) == 0, "%s", sg_last_error());
    e.fusion = fusion;
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.hidden = 40, c.batch = 12;
    sg_gan g;
    sg_gan_init(&g, &c, &e, 3);
    int s = 0;
    sg_gan_run_step(&g, fill, &s);
    s = 1;
    unsigned long before = sg_barrier_count(&e);
    sg_gan_run_step(&g, fill, &s);
    unsigned long n = sg_barrier_count(&e) - before;
    sg_gan_free(&g);
    sg_engine_free(&e);
    return n;
}

static void test_step_barriers(const sg_kernels *k)
{
    static const unsigned long want[2] = {65, 31};
    for (int fusion = 0; fusion <= 1; fusion++)
        for (int nth = 1; nth <= 3; nth++) {
            unsigned long n = step_barriers(k, nth, fusion);
            CHECK(n == want[fusion], "[%s] %s step at %d threads: %lu barriers, expected %lu",
                  k->isa, fusion ? "fused" : "unfused", nth, n, want[fusion]);
        }
}

int main(void)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const sg_kernels *best = NULL;
    for (const sg_kernels *const *t = sg_kernels_built(); *t; t++) {
        if (!sg_kernels_runnable(*t, &ci)) continue;
        if (!best) best = *t;
        test_switching(*t);
    }
    test_set_threads(best);
    test_step_barriers(best);
    test_binding(best);
    test_barrier(best, 2, 0, 20000);
    test_barrier(best, 3, 0, 5000);
    test_barrier(best, 2, 1000000, 20000);
    test_controller();
    return check_finish("test_autothreads");
}
