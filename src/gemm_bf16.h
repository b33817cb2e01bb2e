/* gemm_bf16.h: the bf16 GEMM driver, beside sg_gemm (gemm.h).
 *
 *   C[M, N] = op(A)[M, K] . op(B)[K, N]   (+ C when accumulate), then the
 *   epilogue (bias + activation forward, or activation backward),
 *
 * with A and B fp32 views (sg_view) rounded to bf16 (round to nearest even)
 * when they are packed, bf16 x bf16 products (exact in fp32) and fp32
 * accumulation; C, the bias, Y and the epilogue are fp32. The three products
 * of a Linear layer are the same calls as with sg_gemm (see gemm.h).
 *
 * The path (AMX, Arm BFMMLA, or the fp32 micro-kernel on bf16-rounded
 * panels) is a bf16 kernel table (simd/bf16.h) chosen by sg_bf16_select
 * (cpu.h). The engine lends its threads, barrier and fp32 kernel table (whose
 * bias_act_fwd and act_bwd slots are the epilogue; the ref path also uses its
 * micro-kernel); the bf16 engine owns the packed bf16 workspace.
 *
 * Threads: every call is made by all e->nth threads of the caller's parallel
 * region with its own ith. All of A is packed once, cooperatively; then each
 * thread takes a fixed run of output tiles (whole column panels where there
 * are at least nth of them), packs the B panels they need and computes each
 * tile over the whole of K. The tile grid and each tile's arithmetic do not
 * depend on nth, so results are bit-identical at any thread count.
 *
 * Pre-packed B: a weight that changes once per step (by Adam) can be kept
 * packed (sg_bf16_pack_b) and multiplied with sg_gemm_bf16_packed, which then
 * packs only A. The packed layout belongs to the bf16 table it was packed
 * for. */
#ifndef SIMDGAN_GEMM_BF16_H
#define SIMDGAN_GEMM_BF16_H

#include <stddef.h>

#include "bf16.h"
#include "gemm.h"

typedef struct sg_bf16_engine {
    sg_engine *e;          /* threads, barrier, fp32 table (epilogue)        */
    sg_bf16_kernels k;     /* the path's table, mr/nr resolved (ref: e->k's) */
    unsigned char *apack;  /* shared packed A, apack_cap bytes               */
    unsigned char *alink[2]; /* A packed by a product's epilogue, apack_cap  */
    size_t apack_cap;
    unsigned char **bpack; /* per-thread packed B panel, bpack_cap bytes     */
    size_t bpack_cap;
} sg_bf16_engine;

/* Binds a bf16 engine to e (which must outlive it) and path k. -1 with
 * error when the path's tile exceeds what the driver supports. */
int sg_bf16_engine_init(sg_bf16_engine *be, sg_engine *e, const sg_bf16_kernels *k);
/* Makes the workspace large enough for products up to M x N x K (no
 * allocation happens inside sg_gemm_bf16). Call outside parallel regions. */
void sg_bf16_engine_reserve(sg_bf16_engine *be, size_t M, size_t N, size_t K);
void sg_bf16_engine_free(sg_bf16_engine *be);

/* All e->nth threads call it; it ends with a barrier, so C is complete on
 * return. epi as for sg_gemm (NULL: raw sums). name labels its phases in
 * the step's trace (trace.h; NULL: "gemm_bf16"). */
void sg_gemm_bf16(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A, sg_view B,
                  float *C, size_t ldc, int accumulate, const sg_epi *epi, const char *name,
                  int ith);

/* Pre-packed B of K x N: ceil(N / nr) column panels of packed_b_panel_bytes
 * each, panel q holding columns [q nr, q nr + nr). */
size_t sg_bf16_b_panels(const sg_bf16_engine *be, size_t N);
size_t sg_bf16_b_panel_bytes(const sg_bf16_engine *be, size_t K);
/* Packs column panels [q0, q1) of B (element (p, j) at B.p[p B.rs + j B.cs])
 * into dst, which holds all sg_bf16_b_panels(be, N) panels: callers split the
 * panels over threads (sg_slice) with no barrier of their own. */
void sg_bf16_pack_b(const sg_bf16_engine *be, void *dst, sg_view B, size_t K, size_t N, size_t q0,
                    size_t q1);
/* Steps [p0, p1) of the same panels, the rest of dst as it was: p0 a
 * multiple of the path's kstep, p1 one too or K. Adam rewrites the copies of
 * the weight rows it just updated this way. */
void sg_bf16_pack_b_steps(const sg_bf16_engine *be, void *dst, sg_view B, size_t K, size_t N,
                          size_t q0, size_t q1, size_t p0, size_t p1);
/* sg_gemm_bf16 with B already packed (Bp from sg_bf16_pack_b for this K, N). */
void sg_gemm_bf16_packed(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A,
                         const void *Bp, float *C, size_t ldc, int accumulate,
                         const sg_epi *epi, const char *name, int ith);

/* Products in a chain, where C (after its epilogue) is the A of the next
 * product (M rows, K = this N), as a layer's output is its successor's
 * input: sg_gemm_bf16_packed, with a_out (NULL: none) the buffer into which
 * the epilogue also packs each finished tile of C, as the next product's
 * A, while it is in L1; and a_in (NULL: A is packed here from the view A)
 * the A that the previous product's epilogue packed, which this one then
 * reads instead of packing A (skipping a pass over A and a barrier). a_in
 * and a_out are be->alink[0] and be->alink[1], one each. The bits are
 * those of packing A here. */
void sg_gemm_bf16_chain(sg_bf16_engine *be, size_t M, size_t N, size_t K, sg_view A,
                        const void *a_in, const void *Bp, float *C, size_t ldc, const sg_epi *epi,
                        void *a_out, const char *name, int ith);

#endif
