/* gemm.h: the engine (kernel table, cache blocking, threads, workspace) and
 * its BLIS-style SGEMM driver.
 *
 *   C[M, N] = op(A)[M, K] . op(B)[K, N]   (+ C when accumulate), then the
 *   epilogue (bias + activation forward, or activation backward).
 *
 * Operands are strided views, so the three products a Linear layer needs,
 * with W stored [out, in], are plain calls with no transposes:
 *   forward          Y  = X . W^T    A = X (rs K, cs 1)   B = W^T (rs 1, cs K)
 *   backward-data    dX = dY . W     A = dY               B = W   (rs in, cs 1)
 *   backward-weights dW = dY^T . X   A = dY^T (rs 1, cs out) B = X (rs in, cs 1)
 * Packing into the micro-kernel's layout absorbs the strides. A weight can
 * be packed once and kept (sg_pack_b, sg_gemm_packed), and a product's tiles
 * can go to a consumer instead of C (sg_gemm_tiles: Adam on dW).
 *
 * Threads: every call is made by all nth threads of the caller's parallel
 * region with its own ith (or by one thread with nth 1). Work is split over
 * output tiles only, never over K, and the tile grid does not depend on nth,
 * so results are bit-identical at any thread count: the count may change
 * between steps (sg_engine_set_threads), e.g. under an adaptive controller
 * (autothreads.h).
 *
 * The barrier that ends each product is the engine's own (sg_barrier): it
 * spins for up to spin_ns (50 us), then sleeps on a futex (a condition
 * variable off Linux), so a thread waiting for a partner that the scheduler
 * took off its core gives the core back instead of burning it. */
#ifndef SIMDGAN_GEMM_H
#define SIMDGAN_GEMM_H

#include <stddef.h>

#include "hw.h"
#include "simd.h"

typedef struct sg_blocking {
    int mc, kc, nc;
    const char *source; /* "caches" or "environment" */
} sg_blocking;

/* Element (i, p) of the operand is p_[i * rs + p * cs]. */
typedef struct sg_view {
    const float *p;
    size_t rs, cs;
} sg_view;

/* When the step binds thread ith to core ith (sg_hw_bind). Measured on 2
 * cores (tools/load-test): idle, binding changes nothing; beside a CPU-bound
 * process, 2 unbound threads often share one core (the scheduler balances
 * task counts, 2 against 1, whoever they are) and the step took 1.5 to 1.6
 * times as long as bound; a single thread gains nothing from binding and, bound,
 * cannot leave a core that another bound process shares. Hence the default
 * SG_BIND_AUTO: bind steps of 2 or more threads, not a single thread. */
typedef enum sg_bind_policy {
    SG_BIND_NEVER,  /* leave placement to the scheduler                    */
    SG_BIND_ALWAYS, /* bind every step's threads, a single one included    */
    SG_BIND_AUTO    /* bind when the step runs 2 or more threads (default) */
} sg_bind_policy;

/* Which of sg_gemm's two blockings runs (see run_tiles in gemm.c): per
 * panel (all rows of A in one block, each B micro-panel packed right before
 * its use) where a K block of packed A fits a quarter of the L2, the classic
 * KC x NC block of B otherwise. SG_PATH_PANEL and SG_PATH_BLOCK force one,
 * so that the tests run both on any cache ($SIMDGAN_GEMM_PATH=auto, panel or
 * block). Results are bit-identical on both. */
typedef enum sg_gemm_path { SG_PATH_AUTO, SG_PATH_PANEL, SG_PATH_BLOCK } sg_gemm_path;

/* The barrier's shared state (gemm.c). */
typedef struct sg_sync sg_sync;

typedef struct sg_engine {
    const sg_kernels *k;
    sg_blocking blk;
    int nth;      /* threads of the parallel region, 1..max_nth        */
    int max_nth;  /* threads the workspace and the barrier are sized for */
    int fusion;   /* 1: fused kernels; 0: the unfused paths             */
    int bind;     /* an sg_bind_policy                                  */
    int bind_now; /* the next region binds its threads (sg_engine_bind_update) */
    int path;     /* an sg_gemm_path                                    */
    long spin_ns; /* how long sg_barrier spins before it sleeps         */
    sg_sync *sync;
    float *apack;       /* shared packed A, apack_cap floats  */
    size_t apack_cap;
    float **bpack;      /* per-thread packed B, bpack_cap     */
    size_t bpack_cap;
    size_t next_chunk;  /* sg_gemm's next chunk of tiles      */
    size_t l2;          /* bytes of L2 per core               */
} sg_engine;

/* Blocking from the caches of hw for kernel table k: KC so that a B
 * micro-panel (KC x NR) takes half the L1d, MC so that an A block (MC x KC)
 * takes an eighth of the L2 (the packed B block and the C tiles stream
 * through the L2 beside it: on a 2 MiB L2, 1024^3 ran at 153 against 138
 * GFLOP/s with half), NC so that a B block takes half a core's share of the
 * L3.
 * SIMDGAN_MC, SIMDGAN_KC, SIMDGAN_NC override (then source is "environment").
 * Returns -1 with error on a malformed override. */
int sg_blocking_init(sg_blocking *b, const sg_kernels *k, const sg_hw *hw);

/* Fills e for up to max_nth threads (nth starts at max_nth); fusion from
 * $SIMDGAN_FUSION (0 or 1, default 1); the path from $SIMDGAN_GEMM_PATH
 * (default auto); binding SG_BIND_AUTO. -1 with error. */
int sg_engine_init(sg_engine *e, const sg_kernels *k, int max_nth);
/* The thread count of the next parallel regions, 1..e->max_nth; called
 * between steps, never inside a region. Results do not depend on it.
 * -1 with error when out of range. */
int sg_engine_set_threads(sg_engine *e, int nth);
/* Sets e->bind_now from e->bind and e->nth; called before each parallel
 * region (sg_gan_run_step does), whose thread ith then calls sg_hw_bind(ith)
 * where bind_now is set and sg_hw_unbind() where not (both make a system
 * call only when the thread's binding changes). */
void sg_engine_bind_update(sg_engine *e);
/* Makes the workspace large enough for products up to M x N x K (no
 * allocation happens inside sg_gemm). */
void sg_engine_reserve(sg_engine *e, size_t M, size_t N, size_t K);
void sg_engine_free(sg_engine *e);

/* Runs fn(ctx, ith) on e->nth threads, ith = 0..nth-1, in one parallel
 * region, each thread bound to its core or not as e's binding policy says
 * now (sg_engine_bind_update). Call from outside a parallel region; in a
 * build without OpenMP, fn(ctx, 0). Exits with status 2 when OpenMP gives
 * fewer threads than asked for. */
void sg_parallel(sg_engine *e, void (*fn)(void *ctx, int ith), void *ctx);

/* All threads call it; it ends with a barrier, so C is complete on return.
 * epi (NULL for raw sums) is the epilogue of the whole product, its bias
 * [N] and y [M, ldy] not yet offset to a tile (sg_epi, simd.h). */
void sg_gemm(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B, float *C,
             size_t ldc, int accumulate, const sg_epi *epi, int ith);

/* A B operand packed once and kept (a weight, repacked only when it
 * changes): ceil(N / NR) panels over its N columns, each [K][NR] (columns
 * past N zero), so that a K block [p0, p0 + kc) of panel q is the contiguous
 * slice at q K NR + p0 NR, whatever the K blocking. sg_packed_floats is its
 * size; sg_pack_b packs panels [q0, q1) of B [K, N] (a strided view) into
 * bp, so that threads can split the panels. */
size_t sg_packed_floats(const sg_kernels *k, size_t N, size_t K);
void sg_pack_b(const sg_kernels *k, float *bp, sg_view B, size_t N, size_t K, size_t q0,
               size_t q1);
/* sg_gemm with B read from its pre-packed copy bp (sg_pack_b's layout), on
 * either blocking path: bit-identical to sg_gemm on the view it was packed
 * from, minus the packing. name (a literal) labels its trace events
 * (trace.h); sg_gemm's are "gemm". */
void sg_gemm_packed(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, const float *bp,
                    float *C, size_t ldc, int accumulate, const sg_epi *epi, const char *name,
                    int ith);

/* The finished tile of a product that is consumed, not stored: rows
 * [i, i + mr) and columns [j, j + nr) of C, in c [MR, NR] (ld NR; the rest
 * of the MR x NR tile is zero), a scratch tile in L1. Called once per tile
 * by the thread that computed it; j is a multiple of NR and i of MR. */
typedef void (*sg_tile_fn)(void *ctx, const float *c, size_t i, size_t j, size_t mr, size_t nr);
/* C = A . B, each finished tile handed to fn instead of stored (the weight
 * gradient's tiles go to Adam). A tile's K blocks run back to back on the
 * scratch tile (the same KC blocking, hence the same sums, bit for bit, as
 * sg_gemm's), so C never exists in memory. Ends with a barrier. fn's time
 * is traced as ADAM, one event per column panel. */
void sg_gemm_tiles(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B,
                   sg_tile_fn fn, void *ctx, const char *name, int ith);
/* Column panel [j, j + nr) of C is complete: all its tiles went to fn. */
typedef void (*sg_panel_fn)(void *ctx, size_t j, size_t nr);
/* sg_gemm_tiles, and after the last tile of each column panel, panel(ctx,
 * j, nr) by the thread that ran all of that panel's tiles (threads take
 * whole column panels here, fewer threads working where a product has fewer
 * panels than threads). */
void sg_gemm_panels(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B,
                    sg_tile_fn fn, sg_panel_fn panel, void *ctx, const char *name, int ith);

/* Barriers crossed since the engine was made, one per sg_barrier call of
 * the team (counted at 1 thread too, where they cost nothing): a step's
 * count is the difference across it. */
unsigned long sg_barrier_count(const sg_engine *e);

/* Thread helpers for (ith, nth) slices. sg_barrier: all e->nth threads of
 * the region call it; none returns before all have arrived, and each sees
 * the others' writes made before it. */
void sg_barrier(const sg_engine *e);
static inline void sg_slice(size_t n, int ith, int nth, size_t *i0, size_t *i1)
{
    *i0 = n * (size_t)ith / (size_t)nth;
    *i1 = n * (size_t)(ith + 1) / (size_t)nth;
}
/* The thread index inside the caller's parallel region (0 outside one). */
int sg_thread_id(void);

#endif
