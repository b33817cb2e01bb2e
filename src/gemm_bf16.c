/* gemm_bf16.c: the bf16 GEMM driver, portable C (see gemm_bf16.h).
 *
 * Two loops around the path's micro-kernel: all of A packed once (shared),
 * then per thread a run of output tiles in column-panel order, each column
 * panel's B packed into the thread's buffer just before its tiles. No K
 * blocking: the model's products have K <= 784, so a B panel (K x 32 bf16,
 * 50 KB) and A's panels stay in L2, and each tile is summed over all of K in
 * the kernel's registers (or tiles). Edge tiles run the same kernel on a
 * scratch tile (the packs pad with zeros), whose valid part is copied out.
 * The epilogue runs on each finished tile while it is in L1, through the
 * fp32 table's bias_act_fwd and act_bwd slots, and in a chain it then packs
 * the tile as part of the next product's A, which skips packing A. */
#include "gemm_bf16.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "util.h"

#define SG_BF16_MAX_TILE 4096 /* MR * NR of any path (gemm.c's SG_MAX_TILE) */

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t round_up(size_t a, size_t b) { return ceil_div(a, b) * b; }

int sg_bf16_engine_init(sg_bf16_engine *be, sg_engine *e, const sg_bf16_kernels *k)
{
    memset(be, 0, sizeof *be);
    be->e = e;
    be->k = *k;
    if (!be->k.mr) be->k.mr = e->k->mr;
    if (!be->k.nr) be->k.nr = e->k->nr;
    if ((size_t)be->k.mr * (size_t)be->k.nr > SG_BF16_MAX_TILE)
        return sg_error("bf16 path %s: a %dx%d tile exceeds the driver's %d elements", k->path,
                        be->k.mr, be->k.nr, SG_BF16_MAX_TILE);
    if (be->k.nr % be->k.kstep)
        return sg_error("bf16 path %s: its panels of %d are not whole K steps of %d", k->path,
                        be->k.nr, be->k.kstep);
    be->bpack = sg_xmalloc(sizeof *be->bpack * (size_t)e->max_nth);
    for (int t = 0; t < e->max_nth; t++) be->bpack[t] = NULL;
    return 0;
}

/* K padded to the path's K step (0 stays 0: the kernels then write zeros
 * or leave C as it was). */
static size_t kpad(const sg_bf16_engine *be, size_t K) { return round_up(K, (size_t)be->k.kstep); }

size_t sg_bf16_b_panels(const sg_bf16_engine *be, size_t N) { return ceil_div(N, (size_t)be->k.nr); }

size_t sg_bf16_b_panel_bytes(const sg_bf16_engine *be, size_t K)
{
    return kpad(be, K) * (size_t)be->k.nr * (size_t)be->k.elem;
}

void sg_bf16_engine_reserve(sg_bf16_engine *be, size_t M, size_t N, size_t K)
{
    (void)N;
    const size_t a = round_up(M ? M : 1, (size_t)be->k.mr) * kpad(be, K ? K : 1) * (size_t)be->k.elem;
    const size_t b = sg_bf16_b_panel_bytes(be, K ? K : 1);
    if (a > be->apack_cap) {
        sg_free(be->apack), sg_free(be->alink[0]), sg_free(be->alink[1]);
        be->apack = sg_xalloc(a);
        be->alink[0] = sg_xalloc(a);
        be->alink[1] = sg_xalloc(a);
        be->apack_cap = a;
    }
    if (b > be->bpack_cap) {
        for (int t = 0; t < be->e->max_nth; t++) {
            sg_free(be->bpack[t]);
            be->bpack[t] = sg_xalloc(b);
        }
        be->bpack_cap = b;
    }
}

void sg_bf16_engine_free(sg_bf16_engine *be)
{
    sg_free(be->apack), sg_free(be->alink[0]), sg_free(be->alink[1]);
    for (int t = 0; be->bpack && t < be->e->max_nth; t++) sg_free(be->bpack[t]);
    free(be->bpack);
    memset(be, 0, sizeof *be);
}

void sg_bf16_pack_b_steps(const sg_bf16_engine *be, void *dst, sg_view B, size_t K, size_t N,
                          size_t q0, size_t q1, size_t p0, size_t p1)
{
    const size_t NR = (size_t)be->k.nr, bytes = sg_bf16_b_panel_bytes(be, K);
    /* Every layout is K-major in blocks of kstep steps by the panel's width
     * (bf16.h), so steps from p0 (a multiple of kstep) start p0 NR elements
     * in; packing p1 - p0 steps pads with zeros only up to K's padding. */
    const size_t off = p0 * NR * (size_t)be->k.elem;
    for (size_t q = q0; q < q1; q++) {
        const size_t j = q * NR, n = N - j < NR ? N - j : NR;
        /* B's column j is the packed operand's row: element (j, p) at
         * B.p[j cs + p rs]. */
        be->k.pack_b((unsigned char *)dst + q * bytes + off, B.p + j * B.cs + p0 * B.rs, B.cs,
                     B.rs, n, p1 - p0, be->k.nr, be->e->k);
    }
}

void sg_bf16_pack_b(const sg_bf16_engine *be, void *dst, sg_view B, size_t K, size_t N, size_t q0,
                    size_t q1)
{
    sg_bf16_pack_b_steps(be, dst, B, K, N, q0, q1, 0, K);
}

/* Tile (i, j) of C, mr x nr valid: raw sums (through a scratch tile at the
 * edges), then the epilogue on the valid part. */
static void tile(const sg_bf16_engine *be, size_t Kp, const void *a, const void *b, float *C,
                 size_t ldc, size_t i, size_t j, size_t mr, size_t nr, int accumulate,
                 const sg_epi *epi, unsigned char *a_out, size_t a_out_bytes, uint64_t *out_ns)
{
    const sg_kernels *fk = be->e->k;
    const size_t MR = (size_t)be->k.mr, NR = (size_t)be->k.nr;
    float *c = C + i * ldc + j;
    if (mr == MR && nr == NR) {
        be->k.ukr(Kp, a, b, c, ldc, accumulate, mr, fk);
    } else {
        float ct[SG_BF16_MAX_TILE];
        if (accumulate)
            for (size_t r = 0; r < mr; r++) memcpy(ct + r * NR, c + r * ldc, nr * sizeof(float));
        be->k.ukr(Kp, a, b, ct, NR, accumulate, mr, fk);
        for (size_t r = 0; r < mr; r++) memcpy(c + r * ldc, ct + r * NR, nr * sizeof(float));
    }
    if (epi && epi->dact != SG_ACT_NONE)
        fk->act_bwd(c, ldc, c, ldc, epi->y + i * epi->ldy + j, epi->ldy, 0, mr, nr, epi->dact);
    else if (epi && (epi->bias || epi->act != SG_ACT_NONE))
        fk->bias_act_fwd(c, ldc, epi->bias ? epi->bias + j : NULL, 0, mr, nr, epi->act);
    if (!a_out) return;
    /* Steps [j, j + nr) of the next product's row panel i / MR (bf16.h: NR
     * is whole K steps, so these start j MR elements in). */
    const uint64_t t0 = sg_trace_on ? sg_trace_now() : 0;
    be->k.pack_a(a_out + i / MR * a_out_bytes + j * MR * (size_t)be->k.elem, c, ldc, 1, mr, nr,
                 be->k.mr, fk);
    if (t0) *out_ns += sg_trace_now() - t0;
}

/* Every entry: A packed here (a_in NULL) or already; B packed per column
 * panel here (Bp NULL) or already; C's tiles also packed into a_out as the
 * next product's A where a_out is set. */
static void run(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A, const void *a_in,
                sg_view B, const void *Bp, float *C, size_t ldc, int accumulate,
                const sg_epi *epi, void *a_out, const char *name, int ith)
{
    if (!name) name = "gemm_bf16";
    sg_engine *e = be->e;
    const int nth = e->nth;
    const size_t MR = (size_t)be->k.mr, NR = (size_t)be->k.nr, elem = (size_t)be->k.elem;
    if (M == 0 || N == 0) {
        sg_barrier(e);
        return;
    }
    const size_t Kp = kpad(be, K), mpanels = ceil_div(M, MR), npanels = ceil_div(N, NR);
    const size_t abytes = Kp * MR * elem, bbytes = Kp * NR * elem;
    if (mpanels * abytes > be->apack_cap || (!Bp && bbytes > be->bpack_cap) ||
        (a_out && mpanels * kpad(be, N) * MR * elem > be->apack_cap)) {
        fprintf(stderr, "simdgan: internal error: sg_gemm_bf16(%zu, %zu, %zu) exceeds the "
                        "reserved workspace\n", M, N, K);
        abort();
    }

    /* 1. All of A, one row panel per unit, split over the threads (unless
     * the previous product's epilogue packed it). */
    const unsigned char *apack = a_in ? a_in : be->apack;
    if (!a_in) {
        size_t u0, u1;
        sg_slice(mpanels, ith, nth, &u0, &u1);
        SG_TRACE_BEGIN(ta);
        for (size_t q = u0; q < u1; q++) {
            const size_t m = M - q * MR < MR ? M - q * MR : MR;
            be->k.pack_a(be->apack + q * abytes, A.p + q * MR * A.rs, A.rs, A.cs, m, K, be->k.mr,
                         e->k);
        }
        SG_TRACE_END(ith, SG_PH_PACK_A, name, ta);
        sg_barrier(e);
    }
    const size_t obytes = kpad(be, N) * MR * elem; /* a row panel of a_out */

    /* 2. This thread's tiles, t = column panel * mpanels + row panel: whole
     * column panels where there are enough, else an even run of tiles. */
    const size_t ntiles = mpanels * npanels;
    size_t t0, t1;
    if (npanels >= (size_t)nth) {
        sg_slice(npanels, ith, nth, &t0, &t1);
        t0 *= mpanels, t1 *= mpanels;
    } else {
        sg_slice(ntiles, ith, nth, &t0, &t1);
    }
    if (t0 < t1) {
        if (be->k.thread_begin) be->k.thread_begin();
        for (size_t t = t0; t < t1;) {
            const size_t q = t / mpanels, j = q * NR, nr = N - j < NR ? N - j : NR;
            const size_t te = (q + 1) * mpanels < t1 ? (q + 1) * mpanels : t1;
            const void *b;
            if (Bp) {
                b = (const unsigned char *)Bp + q * bbytes;
            } else {
                SG_TRACE_BEGIN(tb);
                be->k.pack_b(be->bpack[ith], B.p + j * B.cs, B.cs, B.rs, nr, K, be->k.nr, e->k);
                SG_TRACE_END(ith, SG_PH_PACK_B, name, tb);
                b = be->bpack[ith];
            }
            SG_TRACE_BEGIN(tk);
            uint64_t out_ns = 0; /* packing a_out, in this column panel */
            for (; t < te; t++) {
                const size_t r = t % mpanels, i = r * MR, mr = M - i < MR ? M - i : MR;
                tile(be, Kp, apack + r * abytes, b, C, ldc, i, j, mr, nr, accumulate, epi, a_out,
                     obytes, &out_ns);
            }
            /* The epilogue's packing as one PACK_A event per column panel,
             * ending now, nested in the panel's KERNEL event. */
            if (out_ns) sg_trace_event(ith, SG_PH_PACK_A, name, sg_trace_now() - out_ns);
            SG_TRACE_END(ith, SG_PH_KERNEL, name, tk);
        }
        if (be->k.thread_end) be->k.thread_end();
    }
    sg_barrier(e);
}

void sg_gemm_bf16(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A, sg_view B,
                  float *C, size_t ldc, int accumulate, const sg_epi *epi, const char *name,
                  int ith)
{
    run(be, M, N, K, A, NULL, B, NULL, C, ldc, accumulate, epi, NULL, name, ith);
}

void sg_gemm_bf16_packed(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A,
                         const void *Bp, float *C, size_t ldc, int accumulate,
                         const sg_epi *epi, const char *name, int ith)
{
    const sg_view none = {NULL, 0, 0};
    run(be, M, N, K, A, NULL, none, Bp, C, ldc, accumulate, epi, NULL, name, ith);
}

void sg_gemm_bf16_chain(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A,
                        const void *a_in, const void *Bp, float *C, size_t ldc, const sg_epi *epi,
                        void *a_out, const char *name, int ith)
{
    const sg_view none = {NULL, 0, 0};
    run(be, M, N, K, A, a_in, none, Bp, C, ldc, 0, epi, a_out, name, ith);
}
