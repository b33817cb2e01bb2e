/* gemm.c: the BLIS-style SGEMM driver, portable C.
 *
 * The five loops around the micro-kernel: jc over NC columns, pc over KC of
 * the reduction, ic over MC rows, jr over NR and ir over MR. A is packed once
 * per call, cooperatively by all threads, into a shared buffer; each thread
 * then packs the B panels of its own columns (so no packed B is shared) and
 * runs the micro-kernel from the kernel table. Edge tiles run the same
 * micro-kernel and epilogue on a zero-padded scratch tile, so no shape is
 * refused and edges get the same arithmetic as full tiles.
 *
 * A product whose B is pre-packed (a weight) is split over row panels
 * instead, each thread packing its own rows of A, so that its only barrier
 * is the closing one.
 *
 * Also the engine's barrier (sg_barrier), which a training step crosses 31
 * times (55 before weights lived packed): a thread that arrives early spins
 * for spin_ns, then sleeps. */
#define _GNU_SOURCE /* syscall() for the futex */
#include "gemm.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Linux sleeps on the barrier's counter itself (a futex); elsewhere, or with
 * SIMDGAN_BARRIER_CONDVAR defined (to test that path on Linux), a mutex and
 * a condition variable. */
#if defined(__linux__) && !defined(SIMDGAN_BARRIER_CONDVAR)
#define SG_FUTEX 1
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <pthread.h>
#endif

#define SG_MAX_TILE 4096 /* MR * NR of any table */

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t round_up(size_t a, size_t b) { return ceil_div(a, b) * b; }

int sg_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* How long an early thread spins before it sleeps. The step's barrier waits
 * on the 2-core development machine: 90% under 16 us, 3% over 32 us. Its
 * step at 2 threads, idle (emulated: SCHED_FIFO on the shared machine), in
 * ms: spin 0 (sleep at once) 4.27, 20 us 3.60, 50 us 3.57, 200 us 3.62,
 * never sleep 3.75 (libgomp's barrier: 3.95). Beside a busy process, with
 * threads unbound, short spins did best (0: 17, 200 us: 29, never: 133 ms,
 * a noisy machine); bound (the default), the spin hardly mattered (0: 8.1,
 * 50 us: 7.8, never: 7.6). 50 us: the idle figure with room for slower
 * wake-ups. */
#define SG_SPIN_NS 50000L

/* A centralized barrier on a generation counter (the "sense" is its
 * parity): each thread reads gen, then counts itself in `arrived`; the last
 * one resets `arrived` and bumps gen, which releases the others. The
 * others spin on gen, then sleep on it; the last arriver makes the wake
 * system call only when `sleepers` says someone sleeps. gen and arrived live
 * on their own cache lines. */
struct sg_sync {
    _Alignas(64) atomic_uint arrived;
    _Alignas(64) atomic_uint gen; /* the futex word */
    atomic_uint sleepers;
    unsigned long count; /* barriers crossed: bumped by the last arriver */
#ifndef SG_FUTEX
    pthread_mutex_t lock;
    pthread_cond_t cond;
#endif
};

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The spin loop's pause: it frees the core's shared resources (an SMT
 * sibling) and eases the exit from the loop; where there is none, the
 * atomic load alone paces the loop. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Wakes every sleeper; called after gen moved on. */
static void wake_all(sg_sync *s)
{
#ifdef SG_FUTEX
    syscall(SYS_futex, (unsigned *)&s->gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
#endif
}

/* Waits until gen is no longer g: spins (reading the clock every 64 turns,
 * so a short wait never reads it), then sleeps. sleepers is raised before
 * gen is read again (both sequentially consistent, as is the waker's bump
 * of gen before it reads sleepers): either the waker sees the sleeper, or
 * the sleeper sees the new gen. */
static void wait_gen(sg_sync *s, unsigned g, long spin_ns)
{
    long long deadline = 0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&s->gen, memory_order_acquire) != g) return;
        cpu_relax();
        if ((i & 63) == 0) {
            long long t = now_ns();
            if (!deadline)
                deadline = t + spin_ns;
            else if (t >= deadline)
                break;
        }
    }
    atomic_fetch_add(&s->sleepers, 1);
#ifdef SG_FUTEX
    while (atomic_load(&s->gen) == g)
        syscall(SYS_futex, (unsigned *)&s->gen, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
#else
    pthread_mutex_lock(&s->lock);
    while (atomic_load(&s->gen) == g) pthread_cond_wait(&s->cond, &s->lock);
    pthread_mutex_unlock(&s->lock);
#endif
    atomic_fetch_sub(&s->sleepers, 1);
}

void sg_parallel(sg_engine *e, void (*fn)(void *ctx, int ith), void *ctx)
{
    /* e->nth may differ from the last region's (sg_engine_set_threads), and
     * with it whether threads are bound. */
    sg_engine_bind_update(e);
#ifdef _OPENMP
#pragma omp parallel num_threads(e->nth)
    {
        int ith = omp_get_thread_num();
        if (omp_get_num_threads() != e->nth) {
            /* The work is split for nth threads: run none of it. */
            if (ith == 0) {
                fprintf(stderr, "simdgan: OpenMP gave %d threads, %d were asked for "
                                "(check OMP_THREAD_LIMIT and OMP_DYNAMIC)\n",
                        omp_get_num_threads(), e->nth);
                exit(2);
            }
        } else {
            if (e->bind_now)
                sg_hw_bind(ith);
            else
                sg_hw_unbind();
            fn(ctx, ith);
        }
    }
#else
    if (e->bind_now)
        sg_hw_bind(0);
    else
        sg_hw_unbind();
    fn(ctx, 0);
#endif
}

/* The barrier; the last thread to arrive, while the others wait, zeroes
 * *reset where given (the chunk counter of the product that just ended). */
static void barrier_core(const sg_engine *e, size_t *reset)
{
    sg_sync *s = e->sync;
    if (e->nth <= 1) {
        s->count++;
        if (reset) *reset = 0;
        return;
    }
    SG_TRACE_BEGIN(t);
    unsigned g = atomic_load_explicit(&s->gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&s->arrived, 1, memory_order_acq_rel) + 1 == (unsigned)e->nth) {
        s->count++; /* one thread per barrier, the others are waiting */
        if (reset) *reset = 0;
        atomic_store_explicit(&s->arrived, 0, memory_order_relaxed);
        atomic_fetch_add(&s->gen, 1);
        if (atomic_load(&s->sleepers)) wake_all(s);
    } else {
        wait_gen(s, g, e->spin_ns);
    }
    SG_TRACE_END(sg_thread_id(), SG_PH_BARRIER, "barrier", t);
}

void sg_barrier(const sg_engine *e) { barrier_core(e, NULL); }

unsigned long sg_barrier_count(const sg_engine *e) { return e->sync->count; }

static int env_int(const char *name, int *out, int lo)
{
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > 1 << 20)
        return sg_error("%s=%s: expected an integer from %d to %d", name, s, lo, 1 << 20);
    *out = (int)v;
    return 1;
}

int sg_blocking_init(sg_blocking *b, const sg_kernels *k, const sg_hw *hw)
{
    size_t kc = hw->l1d / 2 / ((size_t)k->nr * sizeof(float));
    kc = kc < 16 ? 16 : kc / 16 * 16;
    size_t mc = hw->l2 / 8 / (kc * sizeof(float));
    mc = mc < (size_t)k->mr ? (size_t)k->mr : mc / (size_t)k->mr * (size_t)k->mr;
    size_t nc = hw->l3 / (size_t)hw->l3_cores / 2 / (kc * sizeof(float));
    nc = nc > 4096 ? 4096 : nc;
    nc = nc < (size_t)k->nr ? (size_t)k->nr : nc / (size_t)k->nr * (size_t)k->nr;
    b->mc = (int)mc, b->kc = (int)kc, b->nc = (int)nc;
    b->source = "caches";
    int r1 = env_int("SIMDGAN_MC", &b->mc, 1), r2 = env_int("SIMDGAN_KC", &b->kc, 1),
        r3 = env_int("SIMDGAN_NC", &b->nc, 1);
    if (r1 < 0 || r2 < 0 || r3 < 0) return -1;
    if (r1 || r2 || r3) b->source = "environment";
    /* MC and NC must hold whole micro-tiles. */
    b->mc = (int)round_up((size_t)b->mc, (size_t)k->mr);
    b->nc = (int)round_up((size_t)b->nc, (size_t)k->nr);
    return 0;
}

int sg_engine_init(sg_engine *e, const sg_kernels *k, int max_nth)
{
    memset(e, 0, sizeof *e);
    e->k = k;
    e->max_nth = max_nth < 1 ? 1 : max_nth;
#ifndef _OPENMP
    e->max_nth = 1;
#endif
    e->nth = e->max_nth;
    e->fusion = 1;
    const char *f = getenv("SIMDGAN_FUSION");
    if (f && *f) {
        if (strcmp(f, "0") && strcmp(f, "1"))
            return sg_error("SIMDGAN_FUSION=%s: expected 0 (unfused kernels) or 1 (fused)", f);
        e->fusion = f[0] == '1';
    }
    const char *p = getenv("SIMDGAN_GEMM_PATH");
    e->path = SG_PATH_AUTO;
    if (p && *p) {
        if (!strcmp(p, "panel"))
            e->path = SG_PATH_PANEL;
        else if (!strcmp(p, "block"))
            e->path = SG_PATH_BLOCK;
        else if (strcmp(p, "auto"))
            return sg_error("SIMDGAN_GEMM_PATH=%s: expected auto, panel or block", p);
    }
    if (sg_blocking_init(&e->blk, k, sg_hw_get()) != 0) return -1;
    e->l2 = sg_hw_get()->l2;
    e->bind = SG_BIND_AUTO;
    e->spin_ns = SG_SPIN_NS;
    e->sync = sg_xalloc(sizeof *e->sync);
    atomic_init(&e->sync->arrived, 0);
    atomic_init(&e->sync->gen, 0);
    atomic_init(&e->sync->sleepers, 0);
    e->sync->count = 0;
#ifndef SG_FUTEX
    pthread_mutex_init(&e->sync->lock, NULL);
    pthread_cond_init(&e->sync->cond, NULL);
#endif
    e->bpack = sg_xmalloc(sizeof(float *) * (size_t)e->max_nth);
    for (int t = 0; t < e->max_nth; t++) e->bpack[t] = NULL;
    return 0;
}

int sg_engine_set_threads(sg_engine *e, int nth)
{
    if (nth < 1 || nth > e->max_nth)
        return sg_error("threads %d: expected 1 to %d (the engine's maximum)", nth, e->max_nth);
    e->nth = nth;
    return 0;
}

void sg_engine_bind_update(sg_engine *e)
{
    e->bind_now = e->bind == SG_BIND_ALWAYS || (e->bind == SG_BIND_AUTO && e->nth > 1);
}

void sg_engine_reserve(sg_engine *e, size_t M, size_t N, size_t K)
{
    size_t a = round_up(M ? M : 1, (size_t)e->k->mr) * (K ? K : 1);
    size_t ncap = round_up(N ? N : 1, (size_t)e->k->nr);
    if (ncap > (size_t)e->blk.nc) ncap = (size_t)e->blk.nc;
    size_t b = ncap * (K < (size_t)e->blk.kc ? (K ? K : 1) : (size_t)e->blk.kc);
    const size_t bt = (size_t)e->k->nr * (K ? K : 1); /* sg_gemm_tiles' whole-K panel */
    if (bt > b) b = bt;
    if (a > e->apack_cap) {
        sg_free(e->apack);
        e->apack = sg_xalloc(a * sizeof(float));
        e->apack_cap = a;
    }
    if (b > e->bpack_cap) {
        for (int t = 0; t < e->max_nth; t++) {
            sg_free(e->bpack[t]);
            e->bpack[t] = sg_xalloc(b * sizeof(float));
        }
        e->bpack_cap = b;
    }
}

void sg_engine_free(sg_engine *e)
{
    sg_free(e->apack);
    for (int t = 0; t < e->max_nth && e->bpack; t++) sg_free(e->bpack[t]);
    free(e->bpack);
    if (e->sync) {
#ifndef SG_FUTEX
        pthread_mutex_destroy(&e->sync->lock);
        pthread_cond_destroy(&e->sync->cond);
#endif
        sg_free(e->sync);
    }
    memset(e, 0, sizeof *e);
}

/* A tile that does not fill MR x NR: the micro-kernel runs on a full scratch
 * tile, its epilogue included, with the valid part of C, the bias and Y copied
 * in (zeros elsewhere), so edges get the same vector code as full tiles. */
static void edge_tile(const sg_kernels *k, size_t kc, const float *a, const float *b, float *c,
                      size_t ldc, size_t mr, size_t nr, int accumulate, const sg_epi *epi)
{
    float ct[SG_MAX_TILE], yt[SG_MAX_TILE], bt[SG_MAX_TILE];
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr;
    sg_epi te;
    memset(ct, 0, MR * NR * sizeof(float));
    if (accumulate)
        for (size_t i = 0; i < mr; i++) memcpy(ct + i * NR, c + i * ldc, nr * sizeof(float));
    if (epi) {
        te = *epi;
        if (epi->bias) {
            memset(bt, 0, NR * sizeof(float));
            memcpy(bt, epi->bias, nr * sizeof(float));
            te.bias = bt;
        }
        if (epi->dact != SG_ACT_NONE) {
            memset(yt, 0, MR * NR * sizeof(float));
            for (size_t i = 0; i < mr; i++) memcpy(yt + i * NR, epi->y + i * epi->ldy, nr * sizeof(float));
            te.y = yt;
            te.ldy = NR;
        }
    }
    k->sgemm_ukr(kc, a, b, ct, NR, accumulate, epi ? &te : NULL);
    for (size_t i = 0; i < mr; i++) memcpy(c + i * ldc, ct + i * NR, nr * sizeof(float));
}

/* One product's operands and what becomes of its tiles: C [M, ldc] with
 * epi, or (fn set) each finished tile handed to fn. B is read from bp, its
 * pre-packed copy, where bp is set, else packed from the view B. */
typedef struct gemm_job {
    size_t M, N, K;
    sg_view B;
    const float *bp;
    float *C;
    size_t ldc;
    int accumulate;
    const sg_epi *epi;
    sg_tile_fn fn;
    sg_panel_fn panel; /* with fn, or NULL */
    void *ctx;
    const char *name; /* in the trace */
    size_t nkb, kcb;  /* K in nkb blocks of kcb, the last the rest */
} gemm_job;

/* The epilogue of tile (i, j): epi's pointers offset to the tile. */
static const sg_epi *tile_epi(const sg_epi *epi, size_t i, size_t j, sg_epi *te)
{
    if (!epi) return NULL;
    te->bias = epi->bias ? epi->bias + j : NULL;
    te->act = epi->act;
    te->dact = epi->dact;
    te->y = epi->y ? epi->y + i * epi->ldy + j : NULL;
    te->ldy = epi->ldy;
    return te;
}

/* Tiles [t0, t1) of a product consumed by j->fn: per column panel, its B
 * micro-panel for the whole K (packed once into this thread's buffer, or
 * read pre-packed), then each row tile's K blocks back to back on the
 * scratch tile: the same kernel calls on the same sums as run_tiles makes
 * (accumulate 0 on the first block, 1 after), so the same bits. */
static void run_tiles_fn(sg_engine *e, const gemm_job *j, int ith, size_t t0, size_t t1)
{
    const sg_kernels *k = e->k;
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr;
    const size_t Mp = round_up(j->M, MR), mpanels = Mp / MR;
    float ct[SG_MAX_TILE];
    for (size_t t = t0; t < t1;) {
        uint64_t fn_ns = 0; /* fn's time in this column panel */
        const size_t q = t / mpanels, col = q * NR, nr = j->N - col < NR ? j->N - col : NR;
        const size_t qe = (q + 1) * mpanels < t1 ? (q + 1) * mpanels : t1; /* this panel's run */
        const float *b = j->bp ? j->bp + q * j->K * NR : e->bpack[ith];
        if (!j->bp) {
            SG_TRACE_BEGIN(tp);
            k->pack(e->bpack[ith], j->B.p + col * j->B.cs, j->B.cs, j->B.rs, nr, j->K, (int)NR);
            SG_TRACE_END(ith, SG_PH_PACK_B, j->name, tp);
        }
        for (; t < qe; t++) {
            const size_t i = (t % mpanels) * MR, mr = j->M - i < MR ? j->M - i : MR;
            for (size_t pb = 0; pb < j->nkb; pb++) {
                const size_t kc = pb + 1 < j->nkb ? j->kcb : j->K - pb * j->kcb;
                k->sgemm_ukr(kc, e->apack + pb * j->kcb * Mp + i * kc, b + pb * j->kcb * NR, ct,
                             NR, pb > 0, NULL);
            }
            if (sg_trace_on) {
                uint64_t t2 = sg_trace_now();
                j->fn(j->ctx, ct, i, col, mr, nr);
                fn_ns += sg_trace_now() - t2;
            } else {
                j->fn(j->ctx, ct, i, col, mr, nr);
            }
        }
        if (j->panel) { /* chunks are whole column panels: this one is done */
            uint64_t t2 = sg_trace_on ? sg_trace_now() : 0;
            j->panel(j->ctx, col, nr);
            if (t2) fn_ns += sg_trace_now() - t2;
        }
        /* Per tile the events would overflow the trace (650 tiles in D's
         * first layer): one per column panel, as long as fn's calls
         * together, ending now (after the panel's pack). */
        if (fn_ns) sg_trace_event(ith, SG_PH_ADAM, j->name, sg_trace_now() - fn_ns);
    }
}

/* Tiles [t0, t1) of the product, in column-panel order (tile t is row panel
 * t % mpanels of column panel t / mpanels): the B panels they touch are
 * packed into this thread's buffer (or read pre-packed), then the loops over
 * KC, MC, NR and MR. */
static void run_tiles(sg_engine *e, const gemm_job *j, int ith, size_t t0, size_t t1)
{
    if (j->fn) {
        run_tiles_fn(e, j, ith, t0, t1);
        return;
    }
    const sg_kernels *k = e->k;
    const size_t M = j->M, N = j->N, K = j->K, nkb = j->nkb, kcb = j->kcb, ldc = j->ldc;
    const sg_view B = j->B;
    float *C = j->C;
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr;
    const size_t Mp = round_up(M, MR), mpanels = Mp / MR;
    const size_t p0 = t0 / mpanels, p1 = (t1 - 1) / mpanels + 1; /* column panels touched */
    const size_t j0 = p0 * NR, j1 = p1 * NR < N ? p1 * NR : N;
    /* Where a K block of all of packed A stays in a quarter of the L2 (every
     * product of the model; not 1024^3), the rows are one block instead of
     * MC blocks, and each B micro-panel is used once, right after it is
     * packed: it is packed then, into the start of the buffer, which stays
     * in L1, instead of the whole KC x NC block going out to L2 and back. */
    const int panelwise = e->path == SG_PATH_AUTO ? Mp * kcb * sizeof(float) <= e->l2 / 4
                                                  : e->path == SG_PATH_PANEL;
    const size_t MC = panelwise ? M : (size_t)e->blk.mc, NC = (size_t)e->blk.nc;
    float *bp = e->bpack[ith];
    for (size_t jc = j0; jc < j1; jc += NC) {
        const size_t nc = j1 - jc < NC ? j1 - jc : NC;
        for (size_t pb = 0; pb < nkb; pb++) {
            const size_t kc = pb + 1 < nkb ? kcb : K - pb * kcb;
            const int acc = j->accumulate || pb > 0;
            const int last = pb + 1 == nkb;
            if (!panelwise && !j->bp) {
                SG_TRACE_BEGIN(tp);
                k->pack(bp, B.p + pb * kcb * B.rs + jc * B.cs, B.cs, B.rs, nc, kc, (int)NR);
                SG_TRACE_END(ith, SG_PH_PACK_B, j->name, tp);
            }
            for (size_t ic = 0; ic < M; ic += MC) {
                const size_t ie = ic + MC < M ? ic + MC : M;
                for (size_t jr = 0; jr < nc; jr += NR) {
                    const size_t jj = jc + jr, nr = N - jj < NR ? N - jj : NR;
                    const float *b;
                    if (j->bp) {
                        b = j->bp + jj / NR * K * NR + pb * kcb * NR;
                    } else if (panelwise) {
                        SG_TRACE_BEGIN(tp);
                        k->pack(bp, B.p + pb * kcb * B.rs + jj * B.cs, B.cs, B.rs, nr, kc, (int)NR);
                        SG_TRACE_END(ith, SG_PH_PACK_B, j->name, tp);
                        b = bp;
                    } else {
                        b = bp + jr * kc;
                    }
                    /* This column panel's rows in the run, within the MC block. */
                    const size_t tp = jj / NR * mpanels;
                    const size_t qa = t0 > tp ? t0 - tp : 0, qb = t1 - tp < mpanels ? t1 - tp : mpanels;
                    const size_t ia = qa * MR > ic ? qa * MR : ic, ib = qb * MR < ie ? qb * MR : ie;
                    for (size_t i = ia; i < ib; i += MR) {
                        const size_t mr = M - i < MR ? M - i : MR;
                        const float *a = e->apack + pb * kcb * Mp + i * kc;
                        float *c = C + i * ldc + jj;
                        sg_epi te;
                        const sg_epi *tep = last ? tile_epi(j->epi, i, jj, &te) : NULL;
                        if (mr == MR && nr == NR)
                            k->sgemm_ukr(kc, a, b, c, ldc, acc, tep);
                        else
                            edge_tile(k, kc, a, b, c, ldc, mr, nr, acc, tep);
                    }
                }
            }
        }
    }
}

/* Packs A's micro-panels [q0, q1) of every K block (rows past M zero). */
static void pack_a(sg_engine *e, const gemm_job *j, sg_view A, size_t q0, size_t q1)
{
    const sg_kernels *k = e->k;
    const size_t MR = (size_t)k->mr, M = j->M, K = j->K, Mp = round_up(M, MR);
    for (size_t pb = 0; pb < j->nkb && q0 < q1; pb++) {
        size_t kc = pb + 1 < j->nkb ? j->kcb : K - pb * j->kcb;
        size_t rows = (q1 * MR < M ? q1 * MR : M) - q0 * MR;
        k->pack(e->apack + pb * j->kcb * Mp + q0 * MR * kc, A.p + q0 * MR * A.rs + pb * j->kcb * A.cs,
                A.rs, A.cs, rows, kc, (int)MR);
    }
}

/* Row panels [q0, q1) of a product whose B is pre-packed, all columns: the
 * thread packs those panels of A itself (no other thread reads them, so no
 * barrier), then the loops over NC, KC, MC, NR and MR as run_tiles runs
 * them, with the same kernel calls per tile. */
static void run_rows(sg_engine *e, const gemm_job *j, sg_view A, int ith, size_t q0, size_t q1)
{
    const sg_kernels *k = e->k;
    const size_t M = j->M, N = j->N, K = j->K, nkb = j->nkb, kcb = j->kcb, ldc = j->ldc;
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr, Mp = round_up(M, MR);
    const size_t r0 = q0 * MR, r1 = q1 * MR < M ? q1 * MR : M;
    SG_TRACE_BEGIN(tpa);
    pack_a(e, j, A, q0, q1);
    SG_TRACE_END(ith, SG_PH_PACK_A, j->name, tpa);
    SG_TRACE_BEGIN(tk);
    const int panelwise = e->path == SG_PATH_AUTO ? Mp * kcb * sizeof(float) <= e->l2 / 4
                                                  : e->path == SG_PATH_PANEL;
    const size_t MC = panelwise ? M : (size_t)e->blk.mc, NC = (size_t)e->blk.nc;
    for (size_t jc = 0; jc < N; jc += NC) {
        const size_t nc = N - jc < NC ? N - jc : NC;
        for (size_t pb = 0; pb < nkb; pb++) {
            const size_t kc = pb + 1 < nkb ? kcb : K - pb * kcb;
            const int acc = j->accumulate || pb > 0, last = pb + 1 == nkb;
            for (size_t ic = r0; ic < r1; ic += MC) {
                const size_t ie = ic + MC < r1 ? ic + MC : r1;
                for (size_t jr = 0; jr < nc; jr += NR) {
                    const size_t jj = jc + jr, nr = N - jj < NR ? N - jj : NR;
                    const float *b = j->bp + jj / NR * K * NR + pb * kcb * NR;
                    for (size_t i = ic; i < ie; i += MR) {
                        const size_t mr = M - i < MR ? M - i : MR;
                        const float *a = e->apack + pb * kcb * Mp + i * kc;
                        float *c = j->C + i * ldc + jj;
                        sg_epi te;
                        const sg_epi *tep = last ? tile_epi(j->epi, i, jj, &te) : NULL;
                        if (mr == MR && nr == NR)
                            k->sgemm_ukr(kc, a, b, c, ldc, acc, tep);
                        else
                            edge_tile(k, kc, a, b, c, ldc, mr, nr, acc, tep);
                    }
                }
            }
        }
    }
    SG_TRACE_END(ith, SG_PH_KERNEL, j->name, tk);
}

/* The next chunk of a product for this thread, or nch when none is left.
 * The counter is zeroed by the last arriver at each product's closing
 * barrier, so it is 0 whenever a product starts. */
static size_t next_chunk(sg_engine *e)
{
    size_t c;
#ifdef _OPENMP
#pragma omp atomic capture
#endif
    c = e->next_chunk++;
    return c;
}

/* The driver of every product. With B pre-packed (and C stored), threads
 * take chunks of row panels, each packing its own rows of A: one barrier,
 * the closing one. Otherwise A is packed by all threads together (a
 * barrier), then threads take chunks of column panels and pack B. */
static void gemm_run(sg_engine *e, gemm_job *j, sg_view A, int ith)
{
    const sg_kernels *k = e->k;
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr, nth = (size_t)e->nth;
    const size_t M = j->M, N = j->N, K = j->K;
    if (M == 0 || N == 0) {
        sg_barrier(e);
        return;
    }
    const size_t Mp = round_up(M, MR), mpanels = Mp / MR, npanels = ceil_div(N, NR);
    /* K in nkb balanced blocks of at most KC: kcb each, the last the rest. */
    const size_t nkb = K ? ceil_div(K, (size_t)e->blk.kc) : 1;
    const size_t kcb = K ? ceil_div(K, nkb) : 0;
    j->nkb = nkb, j->kcb = kcb;
    const size_t ncap = round_up(N < (size_t)e->blk.nc ? N : (size_t)e->blk.nc, NR);
    const size_t bneed = j->bp ? 0 : j->fn ? NR * K : ncap * kcb;
    if (Mp * (K ? K : 1) > e->apack_cap || bneed > e->bpack_cap || MR * NR > SG_MAX_TILE) {
        fprintf(stderr, "simdgan: internal error: sg_gemm(%zu, %zu, %zu) exceeds the reserved "
                        "workspace\n", M, N, K);
        abort();
    }

    if (j->bp && !j->fn) {
        /* Chunks of row panels: each rereads all of packed B, so four per
         * thread (for balance, as below) only where B stays in half the L2. */
        const size_t per = npanels * NR * K * sizeof(float) <= e->l2 / 2 ? 4 : 1;
        const size_t nch = mpanels < per * nth ? mpanels : per * nth;
        if (nth == 1) {
            run_rows(e, j, A, ith, 0, mpanels);
        } else {
            for (size_t c; (c = next_chunk(e)) < nch;) {
                size_t q0, q1;
                sg_slice(mpanels, (int)c, (int)nch, &q0, &q1);
                run_rows(e, j, A, ith, q0, q1);
            }
        }
        barrier_core(e, &e->next_chunk);
        return;
    }

    /* 1. Pack all of A: unit u is micro-panel u % mpanels of K block
     * u / mpanels. A thread's units are packed a K block at a time, with one
     * call for their run of consecutive panels (so the pack can walk the
     * source row by row across them). */
    SG_TRACE_BEGIN(tpa);
    size_t u0, u1;
    sg_slice(mpanels * nkb, ith, (int)nth, &u0, &u1);
    for (size_t u = u0; u < u1;) {
        size_t q = u % mpanels, pb = u / mpanels;
        size_t qe = q + (u1 - u) < mpanels ? q + (u1 - u) : mpanels;
        size_t kc = pb + 1 < nkb ? kcb : K - pb * kcb;
        size_t rows = (qe * MR < M ? qe * MR : M) - q * MR;
        k->pack(e->apack + pb * kcb * Mp + q * MR * kc, A.p + q * MR * A.rs + pb * kcb * A.cs,
                A.rs, A.cs, rows, kc, (int)MR);
        u += qe - q;
    }
    SG_TRACE_END(ith, SG_PH_PACK_A, j->name, tpa);
    sg_barrier(e);

    /* 2. The output's tiles in column-panel order, in chunks that threads
     * take in turn from a shared counter: a thread packs the B panels its
     * chunk touches. Chunks are runs of whole column panels where there are
     * enough of them, else runs of tiles (sharing at most a boundary panel,
     * packed by both). Four chunks per thread balance the work whatever the
     * shape and whichever core runs slower (a busy neighbour, a laptop's
     * efficiency core), and a tile's arithmetic does not depend on who
     * computes it. Each chunk rereads all of packed A, so where A does not
     * stay in half the L2 there is one chunk per thread. */
    const size_t ntiles = npanels * mpanels;
    if (nth == 1) {
        SG_TRACE_BEGIN(tk);
        run_tiles(e, j, ith, 0, ntiles);
        SG_TRACE_END(ith, SG_PH_KERNEL, j->name, tk);
    } else {
        const size_t per = Mp * K * sizeof(float) <= e->l2 / 2 ? 4 : 1;
        size_t nch = ntiles < per * nth ? ntiles : per * nth;
        if (j->panel && nch > npanels) nch = npanels;
        for (size_t c; (c = next_chunk(e)) < nch;) {
            size_t t0, t1;
            if (npanels >= nch || j->panel) { /* whole column panels: no B panel packed twice */
                sg_slice(npanels, (int)c, (int)nch, &t0, &t1);
                t0 *= mpanels, t1 *= mpanels;
            } else {
                sg_slice(ntiles, (int)c, (int)nch, &t0, &t1);
            }
            SG_TRACE_BEGIN(tk);
            run_tiles(e, j, ith, t0, t1);
            SG_TRACE_END(ith, SG_PH_KERNEL, j->name, tk);
        }
    }
    barrier_core(e, &e->next_chunk);
}

void sg_gemm(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B, float *C,
             size_t ldc, int accumulate, const sg_epi *epi, int ith)
{
    gemm_job j = {M, N, K, B, NULL, C, ldc, accumulate, epi, NULL, NULL, NULL, "gemm", 0, 0};
    gemm_run(e, &j, A, ith);
}

void sg_gemm_packed(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, const float *bp,
                    float *C, size_t ldc, int accumulate, const sg_epi *epi, const char *name,
                    int ith)
{
    gemm_job j = {M, N, K, {NULL, 0, 0}, bp, C, ldc, accumulate, epi, NULL, NULL, NULL, name, 0, 0};
    gemm_run(e, &j, A, ith);
}

void sg_gemm_tiles(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B,
                   sg_tile_fn fn, void *ctx, const char *name, int ith)
{
    sg_gemm_panels(e, M, N, K, A, B, fn, NULL, ctx, name, ith);
}

void sg_gemm_panels(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B,
                    sg_tile_fn fn, sg_panel_fn panel, void *ctx, const char *name, int ith)
{
    gemm_job j = {M, N, K, B, NULL, NULL, 0, 0, NULL, fn, panel, ctx, name, 0, 0};
    gemm_run(e, &j, A, ith);
}

size_t sg_packed_floats(const sg_kernels *k, size_t N, size_t K)
{
    return round_up(N ? N : 1, (size_t)k->nr) * (K ? K : 1);
}

void sg_pack_b(const sg_kernels *k, float *bp, sg_view B, size_t N, size_t K, size_t q0, size_t q1)
{
    const size_t NR = (size_t)k->nr, j0 = q0 * NR, j1 = q1 * NR < N ? q1 * NR : N;
    if (j0 < j1) k->pack(bp + q0 * K * NR, B.p + j0 * B.cs, B.cs, B.rs, j1 - j0, K, (int)NR);
}
