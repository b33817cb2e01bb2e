/* gemm.c: the BLIS-style SGEMM driver, portable C.
 *
 * The five loops around the micro-kernel: jc over NC columns, pc over KC of
 * the reduction, ic over MC rows, jr over NR and ir over MR. A is packed once
 * per call, cooperatively by all threads, into a shared buffer; each thread
 * then packs the B panels of its own columns (so no packed B is shared) and
 * runs the micro-kernel from the kernel table. Edge tiles run the same
 * micro-kernel and epilogue on a zero-padded scratch tile, so no shape is
 * refused and edges get the same arithmetic as full tiles. */
#define _POSIX_C_SOURCE 200809L
#include "gemm.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef _OPENMP
#include <omp.h>
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

void sg_barrier(const sg_engine *e)
{
#ifdef _OPENMP
    if (e->nth > 1) {
#pragma omp barrier
    }
#else
    (void)e;
#endif
}

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

int sg_engine_init(sg_engine *e, const sg_kernels *k, int nth)
{
    memset(e, 0, sizeof *e);
    e->k = k;
    e->nth = nth < 1 ? 1 : nth;
#ifndef _OPENMP
    e->nth = 1;
#endif
    e->fusion = 1;
    const char *f = getenv("SIMDGAN_FUSION");
    if (f && *f) {
        if (strcmp(f, "0") && strcmp(f, "1"))
            return sg_error("SIMDGAN_FUSION=%s: expected 0 (unfused kernels) or 1 (fused)", f);
        e->fusion = f[0] == '1';
    }
    if (sg_blocking_init(&e->blk, k, sg_hw_get()) != 0) return -1;
    e->l2 = sg_hw_get()->l2;
    e->bpack = sg_xmalloc(sizeof(float *) * (size_t)e->nth);
    for (int t = 0; t < e->nth; t++) e->bpack[t] = NULL;
    return 0;
}

void sg_engine_reserve(sg_engine *e, size_t M, size_t N, size_t K)
{
    size_t a = round_up(M ? M : 1, (size_t)e->k->mr) * (K ? K : 1);
    size_t ncap = round_up(N ? N : 1, (size_t)e->k->nr);
    if (ncap > (size_t)e->blk.nc) ncap = (size_t)e->blk.nc;
    size_t b = ncap * (K < (size_t)e->blk.kc ? (K ? K : 1) : (size_t)e->blk.kc);
    if (a > e->apack_cap) {
        sg_free(e->apack);
        e->apack = sg_xalloc(a * sizeof(float));
        e->apack_cap = a;
    }
    if (b > e->bpack_cap) {
        for (int t = 0; t < e->nth; t++) {
            sg_free(e->bpack[t]);
            e->bpack[t] = sg_xalloc(b * sizeof(float));
        }
        e->bpack_cap = b;
    }
}

void sg_engine_free(sg_engine *e)
{
    sg_free(e->apack);
    for (int t = 0; t < e->nth && e->bpack; t++) sg_free(e->bpack[t]);
    free(e->bpack);
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

/* Tiles [t0, t1) of the product, in column-panel order (tile t is row panel
 * t % mpanels of column panel t / mpanels): the B panels they touch are
 * packed into this thread's buffer, then the loops over KC, MC, NR and MR. */
static void run_tiles(sg_engine *e, size_t M, size_t N, size_t K, sg_view B, float *C, size_t ldc,
                      int accumulate, const sg_epilogue *epi, int ith, size_t t0, size_t t1,
                      size_t nkb, size_t kcb)
{
    const sg_kernels *k = e->k;
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr;
    const size_t Mp = round_up(M, MR), mpanels = Mp / MR;
    const size_t p0 = t0 / mpanels, p1 = (t1 - 1) / mpanels + 1; /* column panels touched */
    const size_t j0 = p0 * NR, j1 = p1 * NR < N ? p1 * NR : N;
    /* Where a K block of all of packed A stays in a quarter of the L2 (every
     * product of the model; not 1024^3), the rows are one block instead of
     * MC blocks, and each B micro-panel is used once, right after it is
     * packed: it is packed then, into the start of the buffer, which stays
     * in L1, instead of the whole KC x NC block going out to L2 and back. */
    const int panelwise = Mp * kcb * sizeof(float) <= e->l2 / 4;
    const size_t MC = panelwise ? M : (size_t)e->blk.mc, NC = (size_t)e->blk.nc;
    float *bp = e->bpack[ith];
    for (size_t jc = j0; jc < j1; jc += NC) {
        const size_t nc = j1 - jc < NC ? j1 - jc : NC;
        for (size_t pb = 0; pb < nkb; pb++) {
            const size_t kc = pb + 1 < nkb ? kcb : K - pb * kcb;
            const int acc = accumulate || pb > 0;
            const int last = pb + 1 == nkb;
            if (!panelwise)
                k->pack(bp, B.p + pb * kcb * B.rs + jc * B.cs, B.cs, B.rs, nc, kc, (int)NR);
            for (size_t ic = 0; ic < M; ic += MC) {
                const size_t ie = ic + MC < M ? ic + MC : M;
                for (size_t jr = 0; jr < nc; jr += NR) {
                    const size_t j = jc + jr, nr = N - j < NR ? N - j : NR;
                    if (panelwise)
                        k->pack(bp, B.p + pb * kcb * B.rs + j * B.cs, B.cs, B.rs, nr, kc, (int)NR);
                    const float *b = panelwise ? bp : bp + jr * kc;
                    /* This column panel's rows in the run, within the MC block. */
                    const size_t tp = j / NR * mpanels;
                    const size_t qa = t0 > tp ? t0 - tp : 0, qb = t1 - tp < mpanels ? t1 - tp : mpanels;
                    const size_t ia = qa * MR > ic ? qa * MR : ic, ib = qb * MR < ie ? qb * MR : ie;
                    for (size_t i = ia; i < ib; i += MR) {
                        const size_t mr = M - i < MR ? M - i : MR;
                        const float *a = e->apack + pb * kcb * Mp + i * kc;
                        float *c = C + i * ldc + j;
                        sg_epi te, *tp_epi = NULL;
                        if (last && epi) {
                            te.bias = epi->bias ? epi->bias + j : NULL;
                            te.act = epi->act;
                            te.dact = epi->dact;
                            te.y = epi->y ? epi->y + i * epi->ldy + j : NULL;
                            te.ldy = epi->ldy;
                            tp_epi = &te;
                        }
                        if (mr == MR && nr == NR)
                            k->sgemm_ukr(kc, a, b, c, ldc, acc, tp_epi);
                        else
                            edge_tile(k, kc, a, b, c, ldc, mr, nr, acc, tp_epi);
                    }
                }
            }
        }
    }
}

void sg_gemm(sg_engine *e, size_t M, size_t N, size_t K, sg_view A, sg_view B, float *C,
             size_t ldc, int accumulate, const sg_epilogue *epi, int ith)
{
    const sg_kernels *k = e->k;
    const size_t MR = (size_t)k->mr, NR = (size_t)k->nr, nth = (size_t)e->nth;
    if (M == 0 || N == 0) {
        sg_barrier(e);
        return;
    }
    const size_t Mp = round_up(M, MR), mpanels = Mp / MR, npanels = ceil_div(N, NR);
    /* K in nkb balanced blocks of at most KC: kcb each, the last the rest. */
    const size_t nkb = K ? ceil_div(K, (size_t)e->blk.kc) : 1;
    const size_t kcb = K ? ceil_div(K, nkb) : 0;
    const size_t ncap = round_up(N < (size_t)e->blk.nc ? N : (size_t)e->blk.nc, NR);
    if (Mp * (K ? K : 1) > e->apack_cap || ncap * kcb > e->bpack_cap || MR * NR > SG_MAX_TILE) {
        fprintf(stderr, "simdgan: internal error: sg_gemm(%zu, %zu, %zu) exceeds the reserved "
                        "workspace\n", M, N, K);
        abort();
    }

    /* 1. Pack all of A: unit u is micro-panel u % mpanels of K block
     * u / mpanels. A thread's units are packed a K block at a time, with one
     * call for their run of consecutive panels (so the pack can walk the
     * source row by row across them). */
    if (ith == 0) e->next_chunk = 0;
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
    sg_barrier(e);

    /* 2. The output's tiles in column-panel order, in chunks that threads
     * take in turn from a shared counter (reset by thread 0 before the
     * barrier above): a thread packs the B panels its chunk touches. Chunks
     * are runs of whole column panels where there are enough of them, else
     * runs of tiles (sharing at most a boundary panel, packed by both). Four
     * chunks per thread balance the work whatever the shape and whichever
     * core runs slower (a busy neighbour, a laptop's efficiency core), and a
     * tile's arithmetic does not depend on who computes it. Each chunk
     * rereads all of packed A, so where A does not stay in half the L2 there
     * is one chunk per thread. */
    const size_t ntiles = npanels * mpanels;
    if (nth == 1) {
        run_tiles(e, M, N, K, B, C, ldc, accumulate, epi, ith, 0, ntiles, nkb, kcb);
    } else {
        const size_t per = Mp * K * sizeof(float) <= e->l2 / 2 ? 4 : 1;
        const size_t nch = ntiles < per * nth ? ntiles : per * nth;
        for (;;) {
            size_t c;
#ifdef _OPENMP
#pragma omp atomic capture
#endif
            c = e->next_chunk++;
            if (c >= nch) break;
            size_t t0, t1;
            if (npanels >= nch) { /* whole column panels: no B panel packed twice */
                sg_slice(npanels, (int)c, (int)nch, &t0, &t1);
                t0 *= mpanels, t1 *= mpanels;
            } else {
                sg_slice(ntiles, (int)c, (int)nch, &t0, &t1);
            }
            run_tiles(e, M, N, K, B, C, ldc, accumulate, epi, ith, t0, t1, nkb, kcb);
        }
    }
    sg_barrier(e);
}
