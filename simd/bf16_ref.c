/* bf16_ref.c: the bf16 path of every CPU without a bf16 matrix unit: the
 * operands are rounded to bf16 as they are packed, into the fp32 panels of
 * the running fp32 kernel table ([K][w] floats, as sg_pack_fn writes them),
 * and that table's micro-kernel multiplies them. The product of two bf16
 * values is exact in fp32, so this is fp32 FMAs on bf16-rounded inputs at
 * the fp32 GEMM's speed (plus the rounding in the pack), and its results are
 * those of the fp32 engine on pre-rounded operands, bit for bit.
 *
 * Portable C, no -m flags: the vector code is the fp32 table's. */
#include "bf16.h"

/* dst [K][w] floats: the fp32 table's pack (its vector transposes), then
 * the panel rounded in place, one contiguous pass that vectorizes (zeros
 * stay zeros). Rounding the source element by element inside a transposing
 * loop instead cost a third more than the whole fp32 product. */
static void pack_ref(void *dst, const float *src, size_t rs, size_t cs, size_t m, size_t K,
                     int w, const sg_kernels *fk)
{
    fk->pack(dst, src, rs, cs, m, K, w);
    uint32_t *d = dst;
    const size_t n = K * (size_t)w;
    for (size_t x = 0; x < n; x++) {
        const uint32_t u = d[x];
        const uint32_t nan = u | 0x00400000u, rne = (u + 0x7fffu + ((u >> 16) & 1u));
        d[x] = ((u & 0x7fffffffu) > 0x7f800000u ? nan : rne) & 0xffff0000u;
    }
}

/* Raw sums: the fp32 micro-kernel with no epilogue (the driver applies it). */
static void ukr_ref(size_t Kp, const void *a, const void *b, float *c, size_t ldc, int accumulate,
                    size_t mr, const sg_kernels *fk)
{
    (void)mr;
    fk->sgemm_ukr(Kp, a, b, c, ldc, accumulate, NULL);
}

const sg_bf16_kernels sg_bf16_kernels_ref = {
    .path = "ref",
    .ukr_name = "bf16_ukr_ref (the fp32 table's micro-kernel on bf16-rounded panels)",
    .mr = 0,
    .nr = 0,
    .kstep = 1,
    .elem = 4,
    .pack_a = pack_ref,
    .pack_b = pack_ref,
    .ukr = ukr_ref,
    .thread_begin = NULL,
    .thread_end = NULL,
    .peak = NULL,
};
