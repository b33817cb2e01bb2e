/* vec_kernels.h: the simple vector loops, written once for every table.
 *
 * Each ISA file (ref.c, avx2.c, avx512.c, neon.c) includes its vector shim
 * (vec_scalar.h lists the operations), defines
 *   enum { MR, NR }        its micro-tile, for the epilogue (NR a multiple
 *                          of SG_VL)
 *   SG_VEC_FN(name)        the name of the generated kernel `name`
 *   SG_VEC_LINKAGE         empty for ref.c (sg_*_ref, declared in simd.h),
 *                          static for the others
 * and then includes this file, which defines the elementwise slots
 * (bias_act_fwd, act_bwd, colsum, sigmoid_bce, bce_bwd, adam, normal) and
 * v_epilogue, the micro-kernels' epilogue. Every ISA thus performs the same
 * operations on every element, tails included (a partial vector is loaded
 * with zeros in its missing lanes, computed like a whole one and stored
 * partially), and the tables agree bit for bit by construction (the
 * reference's tanh and sigmoid excepted, below). The vector shims (those
 * that define SG_VEC_FMA_CHAINS) also get the pack slot's dispatch, the FMA
 * peak loop and SG_VEC_SLOTS, the table slots this file fills.
 * Micro-kernels and packs stay hand-written per ISA.
 *
 * The vector math: exp, tanh and sigmoid are Cephes-style (within 1, 2 and
 * 2-4 ulp of libm: tests/test_kernels.c); the normals' log, sin and cos are
 * Cephes logf's and sinf/cosf's polynomials. Two libm exceptions, the same
 * on every table: bce_fwd (two logs per element on 100-200 elements a step)
 * is ref.c's, and sigmoid_bce calls it for its loss; and the reference
 * table's tanh and sigmoid are libm's (SG_VEC_TANH, SG_VEC_SIGMOID), so
 * those two differ between ref and the vector tables by the ulps above. */
#ifndef SIMDGAN_VEC_KERNELS_H
#define SIMDGAN_VEC_KERNELS_H

/* ---- whole and partial vectors ---------------------------------------------- */

/* n = SG_VL (a constant in the main loops, where this folds to a plain load)
 * or a tail's 0 < n < SG_VL. */
static inline vf v_load(const float *p, size_t n)
{
    return n == SG_VL ? vf_load(p) : vf_load_part(p, n);
}

static inline void v_store(float *p, vf v, size_t n)
{
    if (n == SG_VL)
        vf_store(p, v);
    else
        vf_store_part(p, v, n);
}

/* ---- vector math ------------------------------------------------------------ */

/* e^x, within 1 ulp of glibc's expf over the whole float range (denormal
 * results included). Cody-Waite: x = n ln2 + r with n = round(x log2 e) and
 * ln2 split in two (the high part has 9 significant bits, so n * hi is exact),
 * |r| <= ln2/2; e^r = 1 + r + r^2 P(r) with Cephes expf's degree-5 minimax P;
 * the result is scaled by 2^n rounding once, into denormals and to infinity
 * as needed. x is clamped to [-110, 110] (e^-110 rounds to 0 and e^110 to
 * inf anyway) so that r stays finite and |n| <= 159; NaN passes through. */
static inline vf v_exp(vf x)
{
    x = vf_clamp(x, -110.0f, 110.0f);
    vf n = vf_round(vf_mul(x, vf_set1(1.44269504088896341f)));
    vf r = vf_fnma(n, vf_set1(0.693359375f), x);
    r = vf_fnma(n, vf_set1(-2.12194440e-4f), r);
    vf p = vf_set1(1.9875691500e-4f);
    p = vf_fma(p, r, vf_set1(1.3981999507e-3f));
    p = vf_fma(p, r, vf_set1(8.3334519073e-3f));
    p = vf_fma(p, r, vf_set1(4.1665795894e-2f));
    p = vf_fma(p, r, vf_set1(1.6666665459e-1f));
    p = vf_fma(p, r, vf_set1(5.0000001201e-1f));
    p = vf_fma(p, vf_mul(r, r), r);
    p = vf_add(p, vf_set1(1.0f));
    return vf_scale2(p, n);
}

/* tanh, within 2 ulp of glibc's tanhf. Computed on |x| and given x's sign
 * (so tanh(-0) = -0). |x| < 0.625: x + x^3 Q(x^2) with Cephes tanhf's
 * degree-4 Q (no cancellation near 0, tiny x returns x); otherwise
 * 1 - 2 / (e^{2|x|} + 1), which saturates to exactly 1 where tanhf does
 * (2 / (e^{2|x|} + 1) < 2^-25 past |x| ~ 9.01; e^{2|x|} = inf gives 1). */
static inline vf v_tanh(vf x)
{
    vf ax = vf_abs(x);
    vf z = vf_mul(ax, ax);
    vf q = vf_set1(-5.70498872745e-3f);
    q = vf_fma(q, z, vf_set1(2.06390887954e-2f));
    q = vf_fma(q, z, vf_set1(-5.37397155531e-2f));
    q = vf_fma(q, z, vf_set1(1.33314422036e-1f));
    q = vf_fma(q, z, vf_set1(-3.33332819422e-1f));
    vf small = vf_fma(vf_mul(q, z), ax, ax);
    vf e = v_exp(vf_add(ax, ax));
    vf big = vf_sub(vf_set1(1.0f), vf_div(vf_set1(2.0f), vf_add(e, vf_set1(1.0f))));
    return vf_copysign(vf_sel(vf_lt(ax, vf_set1(0.625f)), small, big), x);
}

/* 1 / (1 + e^-x) with v_exp: within 2 ulp of libm's for x >= -16.6 and 4 ulp
 * below, where e^-x > 2^24 and 1 + e^-x is itself rounded to an even
 * integer. Saturates to exactly 0 (e^-x = inf) and exactly 1 (e^-x < 2^-24). */
static inline vf v_sigmoid(vf x)
{
    return vf_div(vf_set1(1.0f), vf_add(vf_set1(1.0f), v_exp(vf_neg(x))));
}

/* The tables' tanh and sigmoid, unless the includer names its own: ref.c
 * keeps libm's (see the file's header). */
#ifndef SG_VEC_TANH
#define SG_VEC_TANH v_tanh
#define SG_VEC_SIGMOID v_sigmoid
#endif

/* The forward activations, PyTorch's formulas (x > 0 compares false for NaN,
 * as in C). */
static inline vf v_act_fwd(vf x, sg_act act)
{
    const vf zero = vf_set1(0.0f);
    switch (act) {
    case SG_ACT_RELU: return vf_keep(vf_gt(x, zero), x);
    case SG_ACT_LRELU: return vf_sel(vf_gt(x, zero), x, vf_mul(x, vf_set1(SG_LRELU_SLOPE)));
    case SG_ACT_TANH: return SG_VEC_TANH(x);
    case SG_ACT_SIGMOID: return SG_VEC_SIGMOID(x);
    case SG_ACT_NONE: break;
    }
    return x;
}

/* Gradient g at activation output y: ATen's threshold_backward,
 * leaky_relu_backward, tanh_backward g fma(-y, y, 1) (ATen fuses 1 - y y),
 * sigmoid_backward (g (1 - y)) y. */
static inline vf v_act_bwd(vf g, vf y, sg_act act)
{
    const vf zero = vf_set1(0.0f), one = vf_set1(1.0f);
    switch (act) {
    case SG_ACT_RELU: return vf_keep(vf_gt(y, zero), g);
    case SG_ACT_LRELU: return vf_sel(vf_gt(y, zero), g, vf_mul(g, vf_set1(SG_LRELU_SLOPE)));
    case SG_ACT_TANH: return vf_mul(g, vf_fnma(y, y, one));
    case SG_ACT_SIGMOID: return vf_mul(vf_mul(g, vf_sub(one, y)), y);
    case SG_ACT_NONE: break;
    }
    return g;
}

/* binary_cross_entropy_backward with grad_output 1, then the mean's division
 * by the element count: (y - t) / max((1 - y) y, 1e-12) / count (a NaN
 * product gives 1e-12, as fmaxf). */
static inline vf v_bce_grad(vf y, vf t, vf count)
{
    vf w = vf_max_num(vf_mul(vf_sub(vf_set1(1.0f), y), y), 1e-12f);
    return vf_div(vf_div(vf_sub(y, t), w), count);
}

/* ---- the micro-kernels' epilogue ---------------------------------------------- */

/* On a finished MR x NR tile of C (the raw sums already stored): bias,
 * forward activation, backward activation against Y, per sg_epi. The
 * micro-kernels store their accumulators first and call this after, so that
 * the activation math does not compete with live accumulators for
 * registers; the tile is then in L1. The fields are read once: stores to C
 * could alias *epi as far as C knows. */
static void v_epilogue(float *c, size_t ldc, const sg_epi *epi)
{
    const float *bias = epi->bias, *y = epi->y;
    const sg_act act = epi->act, dact = epi->dact;
    const size_t ldy = epi->ldy;
    for (int i = 0; i < MR; i++)
        for (int h = 0; h < NR; h += SG_VL) {
            float *ci = c + (size_t)i * ldc + h;
            vf v = vf_load(ci);
            if (bias) v = vf_add(v, vf_load(bias + h));
            v = v_act_fwd(v, act);
            if (dact != SG_ACT_NONE) v = v_act_bwd(v, vf_load(y + (size_t)i * ldy + h), dact);
            vf_store(ci, v);
        }
}

/* ---- elementwise kernels ------------------------------------------------------ */

/* The row kernels and adam write their body once, as an inline function on
 * n <= SG_VL elements, called with n = SG_VL over the whole vectors and once
 * more for the tail; the short loops (colsum's tail, the BCE pieces on
 * 100-200 elements) take n = min(SG_VL, what is left) each time round. */

static inline void bias_act_n(float *y, const float *bias, size_t n, sg_act act)
{
    vf v = v_load(y, n);
    if (bias) v = vf_add(v, v_load(bias, n));
    v_store(y, v_act_fwd(v, act), n);
}

static inline __attribute__((always_inline)) void
bias_act_rows(float *y, size_t ldy, const float *bias, size_t i0, size_t i1, size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++) {
        float *yi = y + i * ldy;
        size_t j = 0;
        for (; N - j >= SG_VL; j += SG_VL) bias_act_n(yi + j, bias ? bias + j : NULL, SG_VL, act);
        if (j < N) bias_act_n(yi + j, bias ? bias + j : NULL, N - j, act);
    }
}

/* Runs STMT with the constant A in place of act, one inlined copy of the
 * loops per activation: GCC unswitches loops on an if, not on a switch, and
 * would otherwise test the activation at every vector. */
#define V_PER_ACT(act, A, STMT)                                                         \
    switch (act) {                                                                      \
    case SG_ACT_RELU: { const sg_act A = SG_ACT_RELU; STMT; } break;                    \
    case SG_ACT_LRELU: { const sg_act A = SG_ACT_LRELU; STMT; } break;                  \
    case SG_ACT_TANH: { const sg_act A = SG_ACT_TANH; STMT; } break;                    \
    case SG_ACT_SIGMOID: { const sg_act A = SG_ACT_SIGMOID; STMT; } break;              \
    case SG_ACT_NONE: { const sg_act A = SG_ACT_NONE; STMT; } break;                    \
    }

SG_VEC_LINKAGE void SG_VEC_FN(bias_act_fwd)(float *y, size_t ldy, const float *bias, size_t i0,
                                            size_t i1, size_t N, sg_act act)
{
    V_PER_ACT(act, a, bias_act_rows(y, ldy, bias, i0, i1, N, a))
}

static inline void act_bwd_n(float *dx, const float *dy, const float *y, size_t n, sg_act act)
{
    v_store(dx, v_act_bwd(v_load(dy, n), v_load(y, n), act), n);
}

static inline __attribute__((always_inline)) void
act_bwd_rows(float *dx, size_t lddx, const float *dy, size_t lddy, const float *y, size_t ldy,
             size_t i0, size_t i1, size_t N, sg_act act)
{
    for (size_t i = i0; i < i1; i++) {
        float *dxi = dx + i * lddx;
        const float *dyi = dy + i * lddy, *yi = y + i * ldy;
        size_t j = 0;
        for (; N - j >= SG_VL; j += SG_VL) act_bwd_n(dxi + j, dyi + j, yi + j, SG_VL, act);
        if (j < N) act_bwd_n(dxi + j, dyi + j, yi + j, N - j, act);
    }
}

SG_VEC_LINKAGE void SG_VEC_FN(act_bwd)(float *dx, size_t lddx, const float *dy, size_t lddy,
                                       const float *y, size_t ldy, size_t i0, size_t i1, size_t N,
                                       sg_act act)
{
    V_PER_ACT(act, a, act_bwd_rows(dx, lddx, dy, lddy, y, ldy, i0, i1, N, a))
}

/* Four vectors of columns at a time, each summed over the rows in order
 * (0 + dz[0] + dz[1] + ...), so the result does not depend on the split. */
SG_VEC_LINKAGE void SG_VEC_FN(colsum)(float *db, const float *dz, size_t ldz, size_t M, size_t j0,
                                      size_t j1)
{
    size_t j = j0;
    for (; j + 4 * SG_VL <= j1; j += 4 * SG_VL) {
        vf s0 = vf_set1(0.0f), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < M; i++) {
            const float *row = dz + i * ldz + j;
            s0 = vf_add(s0, vf_load(row));
            s1 = vf_add(s1, vf_load(row + SG_VL));
            s2 = vf_add(s2, vf_load(row + 2 * SG_VL));
            s3 = vf_add(s3, vf_load(row + 3 * SG_VL));
        }
        vf_store(db + j, s0);
        vf_store(db + j + SG_VL, s1);
        vf_store(db + j + 2 * SG_VL, s2);
        vf_store(db + j + 3 * SG_VL, s3);
    }
    for (; j < j1; j += SG_VL) {
        size_t n = j1 - j < SG_VL ? j1 - j : SG_VL;
        vf s = vf_set1(0.0f);
        for (size_t i = 0; i < M; i++) s = vf_add(s, v_load(dz + i * ldz + j, n));
        v_store(db + j, s, n);
    }
}

SG_VEC_LINKAGE void SG_VEC_FN(bce_bwd)(float *dy, const float *y, const float *t, float count,
                                       size_t i0, size_t i1)
{
    const vf cnt = vf_set1(count);
    for (size_t i = i0; i < i1; i += SG_VL) {
        size_t n = i1 - i < SG_VL ? i1 - i : SG_VL;
        v_store(dy + i, v_bce_grad(v_load(y + i, n), v_load(t + i, n), cnt), n);
    }
}

/* y by the sigmoid, dz from y by bce_bwd's and sigmoid's backward formulas (so
 * dz is 0 exactly where y is 0 or 1), then the loss by bce_fwd's libm logs. */
SG_VEC_LINKAGE void SG_VEC_FN(sigmoid_bce)(float *y, float *loss, float *dz, const float *z,
                                           const float *t, float count, size_t i0, size_t i1)
{
    const vf cnt = vf_set1(count);
    for (size_t i = i0; i < i1; i += SG_VL) {
        size_t n = i1 - i < SG_VL ? i1 - i : SG_VL;
        vf s = SG_VEC_SIGMOID(v_load(z + i, n));
        vf g = v_bce_grad(s, v_load(t + i, n), cnt);
        v_store(y + i, s, n);
        v_store(dz + i, v_act_bwd(g, s, SG_ACT_SIGMOID), n);
    }
    sg_bce_fwd_ref(loss, y, t, i0, i1);
}

/* exp_avg.mul_(b1).add_(g, alpha=c1); exp_avg_sq.mul_(b2).addcmul_(g, g,
 * value=c2); denom = exp_avg_sq.sqrt() / bc2_sqrt + eps; p.addcdiv_(exp_avg,
 * denom, value=-step_size). ATen's add and addcmul kernels fuse their
 * multiply-add: m = fma(c1, g, m b1), v = fma(c2 g, g, v b2); the rest
 * rounds op by op, in one pass over p, m, v, g. */
static inline void adam_n(float *p, float *m, float *v, const float *g, size_t n,
                          const sg_adam_coef *h)
{
    vf gi = v_load(g, n);
    vf mi = vf_fma(vf_set1(h->c1), gi, vf_mul(v_load(m, n), vf_set1(h->b1)));
    vf vi = vf_fma(vf_mul(vf_set1(h->c2), gi), gi, vf_mul(v_load(v, n), vf_set1(h->b2)));
    vf denom = vf_add(vf_div(vf_sqrt(vi), vf_set1(h->bc2_sqrt)), vf_set1(h->eps));
    vf pi = vf_add(v_load(p, n), vf_div(vf_mul(vf_set1(-h->step_size), mi), denom));
    v_store(m, mi, n);
    v_store(v, vi, n);
    v_store(p, pi, n);
}

SG_VEC_LINKAGE void SG_VEC_FN(adam)(float *p, float *m, float *v, const float *g, size_t i0,
                                    size_t i1, const sg_adam_coef *h)
{
    /* The coefficients are read into locals: stores to p, m, v could alias
     * *h as far as C knows. */
    const sg_adam_coef c = *h;
    size_t i = i0;
    for (; i1 - i >= SG_VL; i += SG_VL) adam_n(p + i, m + i, v + i, g + i, SG_VL, &c);
    if (i < i1) adam_n(p + i, m + i, v + i, g + i, i1 - i, &c);
}

/* ---- normals for z ------------------------------------------------------------ */

/* Philox4x32-10 on SG_VL counters at once: lane l of c[0..3] is one block's
 * counter, and becomes its four words (sg_philox is this on one lane). */
static inline void v_philox(vu c[4], uint64_t key)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        vu hi0 = vu_mulhi(c[0], 0xD2511F53u), lo0 = vu_mullo(c[0], 0xD2511F53u);
        vu hi1 = vu_mulhi(c[2], 0xCD9E8D57u), lo1 = vu_mullo(c[2], 0xCD9E8D57u);
        c[0] = vu_xor(vu_xor(hi1, c[1]), vu_set1(k0));
        c[1] = lo1;
        c[2] = vu_xor(vu_xor(hi0, c[3]), vu_set1(k1));
        c[3] = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

/* ln x for normal positive x, Cephes logf's reduction and polynomial: x =
 * m 2^e with m in [sqrt(1/2), sqrt(2)), ln x = e ln 2 + ln m, ln 2 split in
 * two so that e ln 2 adds no rounding of its own. */
static inline vf v_log(vf x)
{
    vf e, m = vf_frexp(x, &e); /* m in [1, 2) */
    vm big = vf_gt(m, vf_set1(1.41421356237f));
    m = vf_sel(big, vf_mul(m, vf_set1(0.5f)), m);
    e = vf_sel(big, vf_add(e, vf_set1(1.0f)), e);
    vf f = vf_sub(m, vf_set1(1.0f)), z = vf_mul(f, f);
    vf p = vf_set1(7.0376836292e-2f);
    p = vf_fma(p, f, vf_set1(-1.1514610310e-1f));
    p = vf_fma(p, f, vf_set1(1.1676998740e-1f));
    p = vf_fma(p, f, vf_set1(-1.2420140846e-1f));
    p = vf_fma(p, f, vf_set1(1.4249322787e-1f));
    p = vf_fma(p, f, vf_set1(-1.6668057665e-1f));
    p = vf_fma(p, f, vf_set1(2.0000714765e-1f));
    p = vf_fma(p, f, vf_set1(-2.4999993993e-1f));
    p = vf_fma(p, f, vf_set1(3.3333331174e-1f));
    vf y = vf_mul(vf_mul(p, f), z);
    y = vf_fma(e, vf_set1(-2.12194440e-4f), y);
    y = vf_fnma(vf_set1(0.5f), z, y);
    return vf_fma(e, vf_set1(0.693359375f), vf_add(f, y));
}

/* sin and cos of 2 pi u for u in [0, 1) a multiple of 2^-24. The reduction
 * is exact in turns: q = round(4 u), f = u - q / 4 in [-1/8, 1/8]; then r =
 * 2 pi f (2 pi in two parts) and Cephes sinf's and cosf's polynomials on
 * |r| <= pi / 4, rotated by q quarter turns. */
static inline void v_sincos_turns(vf u, vf *s, vf *c)
{
    vf q = vf_round(vf_mul(u, vf_set1(4.0f)));
    vf f = vf_fnma(q, vf_set1(0.25f), u);
    vf r = vf_fma(f, vf_set1(6.28318548202514648f), vf_mul(f, vf_set1(-1.7484555314e-7f)));
    vf z = vf_mul(r, r);
    vf sp = vf_fma(vf_fma(vf_set1(-1.9515295891e-4f), z, vf_set1(8.3321608736e-3f)), z,
                   vf_set1(-1.6666654611e-1f));
    vf sr = vf_fma(vf_mul(sp, z), r, r);
    vf cp = vf_fma(vf_fma(vf_set1(2.443315711809948e-5f), z, vf_set1(-1.388731625493765e-3f)), z,
                   vf_set1(4.166664568298827e-2f));
    vf cr = vf_fma(vf_mul(cp, z), z, vf_fnma(vf_set1(0.5f), z, vf_set1(1.0f)));
    /* Quarter turns q mod 4: (sin, cos) = (s, c), (c, -s), (-s, -c), (-c, s). */
    vu qi = vu_from_vf(q);
    vm odd = vu_test(qi, 1), sneg = vu_test(qi, 2), cneg = vu_test(vu_add(qi, vu_set1(1)), 2);
    vf sv = vf_sel(odd, cr, sr), cv = vf_sel(odd, sr, cr);
    *s = vf_sel(sneg, vf_neg(sv), sv);
    *c = vf_sel(cneg, vf_neg(cv), cv);
}

/* Elements 4 SG_VL g .. 4 SG_VL g + 4 SG_VL - 1 (Philox blocks SG_VL g ..
 * SG_VL g + SG_VL - 1). Box-Muller on two words gives two normals: r cos(2 pi
 * u2), r sin(2 pi u2) with r = sqrt(-2 ln u1), u1 = (w + 1) 2^-32 in (0, 1]
 * from all 32 bits of one word (so the tails reach 6.66 sigma) and u2 = (w >>
 * 8) 2^-24 from the other. */
static void v_normal_group(float *out, size_t g, uint64_t seed, uint32_t stream, uint32_t c2,
                           uint32_t c1)
{
    vu c[4] = {vu_add(vu_set1((uint32_t)(SG_VL * g)), vu_lanes()), vu_set1(c1), vu_set1(c2),
               vu_set1(stream)};
    v_philox(c, seed);
    vf z[4];
    for (int h = 0; h < 2; h++) {
        vf u1 = vf_mul(vf_add(vf_from_u32(c[2 * h]), vf_set1(1.0f)), vf_set1(0x1p-32f));
        vf u2 = vf_mul(vf_from_u31(vu_shr(c[2 * h + 1], 8)), vf_set1(0x1p-24f));
        vf rad = vf_sqrt(vf_mul(vf_set1(-2.0f), v_log(u1))), sn, cs;
        v_sincos_turns(u2, &sn, &cs);
        z[2 * h] = vf_mul(rad, cs);
        z[2 * h + 1] = vf_mul(rad, sn);
    }
    vf_store4(out, z); /* lane b of z[0..3] holds block b's four outputs */
}

/* z[i0, i1) by groups of 4 SG_VL (sg_normal_groups, ref.c). */
SG_VEC_LINKAGE void SG_VEC_FN(normal)(float *z, size_t i0, size_t i1, uint64_t seed,
                                      uint32_t stream, uint32_t c2, uint32_t c1)
{
    sg_normal_groups(z, i0, i1, 4 * SG_VL, v_normal_group, seed, stream, c2, c1);
}

/* ---- what only the vector ISAs share ------------------------------------------ */

#ifdef SG_VEC_FMA_CHAINS
/* The pack slot: the ISA file's hand-written packs (defined after this
 * header) for the two unit-stride layouts, the reference for any other. */
static void pack_rows_contiguous(float *dst, const float *src, size_t cs, size_t m, size_t k,
                                 size_t w);
static void pack_rows_transposed(float *dst, const float *src, size_t rs, size_t m, size_t k,
                                 size_t w);

static void SG_VEC_FN(pack)(float *dst, const float *src, size_t rs, size_t cs, size_t m, size_t k,
                            int w)
{
    if (rs == 1)
        pack_rows_contiguous(dst, src, cs, m, k, (size_t)w);
    else if (cs == 1)
        pack_rows_transposed(dst, src, rs, m, k, (size_t)w);
    else
        sg_pack_ref(dst, src, rs, cs, m, k, w);
}

/* The peak: SG_VEC_FMA_CHAINS independent FMA chains on vector registers. */
static double SG_VEC_FN(fma_peak)(size_t iters)
{
    vf a[SG_VEC_FMA_CHAINS];
    const vf x = vf_set1(0.999999f), y = vf_set1(1e-7f);
    for (int c = 0; c < SG_VEC_FMA_CHAINS; c++) a[c] = vf_set1((float)c);
    for (size_t n = 0; n < iters; n++)
#pragma GCC unroll 32
        for (int c = 0; c < SG_VEC_FMA_CHAINS; c++) a[c] = vf_fma(a[c], x, y);
    vf s = a[0];
    for (int c = 1; c < SG_VEC_FMA_CHAINS; c++) s = vf_add(s, a[c]);
    volatile float sink = vf_first(s);
    (void)sink;
    return 2.0 * SG_VL * SG_VEC_FMA_CHAINS * (double)iters;
}

/* The slots this file fills in a vector ISA's table. */
#define SG_VEC_SLOTS                                                                               \
    .vec_floats = SG_VL, .pack = SG_VEC_FN(pack), .bias_act_fwd = SG_VEC_FN(bias_act_fwd),         \
    .act_bwd = SG_VEC_FN(act_bwd), .colsum = SG_VEC_FN(colsum),                                    \
    .sigmoid_bce = SG_VEC_FN(sigmoid_bce), .bce_bwd = SG_VEC_FN(bce_bwd),                          \
    .adam = SG_VEC_FN(adam), .normal = SG_VEC_FN(normal), .fma_peak = SG_VEC_FN(fma_peak)
#endif

#endif
