/* test_parity.c: simdgan's training iteration against PyTorch's, tensor by
 * tensor, from fixtures that tools/make_fixtures.py wrote with PyTorch 1.13;
 * and simdgan against itself, bit for bit, over 20 steps.
 *
 * For each kernel table this CPU runs (tables.h: one it supports that did
 * not run is a failure) and each fixture:
 * 1. The forwards, layer by layer: with the fixture's parameters (G and D as
 *    initialised, and D after step 1) on the fixture's inputs, each hidden
 *    layer's activations, D's logits and G's output against PyTorch's,
 *    within the bound below; unfused the same bits as fused.
 * 2. The step: fused and unfused, 1 and 2 threads: load the initial G and D,
 *    run the stored steps on the stored real batches and z (the fused path
 *    with keep_grads, so that its weight gradients reach memory), and compare
 *    losses, D(x), D(G(z)), every gradient, the updated parameters and the
 *    Adam moments after step 1, and the losses and parameters after the last
 *    step. The max difference of each is printed.
 * 3. Twenty steps (the fixture's inputs again and again), fused on 1 thread
 *    on the per-panel GEMM path (as trained: weight gradients never stored)
 *    against unfused on 2 threads on the KC x NC block path: the same bits,
 *    every step's losses and D(x), D(G(z)), and in the end every parameter
 *    and Adam moment (memcmp; nothing here may depend on fusion, thread
 *    count or GEMM blocking, so one run that changes all three stands for
 *    each alone; SIMDGAN_FUSION, SIMDGAN_GEMM_PATH and --threads tell them
 *    apart when it fails).
 *
 * The forward's bound, per element of layer l, from what both sides compute:
 * y = act(W x + b) on K inputs, simdgan from its own previous layer x, PyTorch
 * from its own x' (the fixture's; the same input for l = 0). Each side's
 * float sum is within (K + 1) u S of the exact one (u = 2^-24, S = sum |W x'|
 * + |b| + P, any summation order), and the exact sums differ by at most P =
 * sum |W| |x - x'|: |y - y'| <= 2 (K + 2) u S + P. ReLU and LeakyReLU do not
 * enlarge a difference (LeakyReLU's 0.2 x rounds once on each side: + 2 u
 * |y'|), tanh neither, plus 8 ulps of |y'| for the two implementations (ours
 * within 2 ulp of libm, test_kernels). The measured worst is printed as a
 * fraction of it.
 *
 * The step's tolerances (fp32), and why:
 * - losses, D(x), D(G(z)): 2e-5 relative. Both sides sum the same float
 *   terms in another order, and exp/tanh differ by up to 1 ulp (Sleef in
 *   PyTorch, libm or our vector code here); saturated terms are exact.
 * - gradients: |diff| <= 2e-5 max|g| + 1e-5 |g|, i.e. about 1e-5 of the
 *   tensor's scale. GEMM sums of up to 200 products in a different blocked
 *   order (and D's real and fake halves as one batch of 200 instead of two
 *   products of 100) differ by a few ulp of the partial sums.
 *   Except G's in step_sat: they pass through D's last layer, 5000 times
 *   the usual weights, and are ill-conditioned. PyTorch itself, rerun from
 *   the fixture's inputs on OpenBLAS's Haswell kernels instead of Prescott,
 *   differs from the file by 8.7e-6 of the scale in G.0.weight (step_h32:
 *   1.3e-7); so G's gradients and moments there get 5e-5 of the scale
 *   (measured here: up to 2.2e-5, the ref table).
 * - Adam moments: m = 0.1 g and v = 0.001 g^2 on step 1, so their
 *   tolerances follow from the gradient's.
 * - parameters after step 1: Adam's first step is lr g / (|g| + eps); where
 *   |g| is near eps a tiny gradient difference moves the step by up to 2 lr,
 *   so elements whose gradient is below 1e-6 get 2 lr, the rest 1e-7
 *   absolute (a step of lr = 2e-4 rounded in float near weights of 0.1).
 * - after the last step: the same 2 lr where gradients were tiny, otherwise
 *   a few ulp per step on top of step 1's: 1e-6 absolute.
 *
 * 4. bf16 products (sg_gan_use_bf16), on every bf16 path this CPU runs (one
 *    it cannot run is skipped with a line saying why) with each fp32 table:
 *    the forwards and the step as in 1 and 2, against two fixtures from the
 *    same init and inputs as step_h32 (tools/make_fixtures.py):
 *    - step_bf16_h32: simdgan's semantics emulated in PyTorch (operands
 *      rounded to bf16, products exact, fp32 sums, everything else fp32).
 *      The products of bf16 values are exact in fp32 on both sides, so only
 *      the order of the fp32 sums differs, as in fp32: the forward's bound
 *      above with the rounded operands (r = round to bf16) in S = sum |r(W)
 *      r(x')| + |b| and P = sum |r(W)| |r(x) - r(x')|. A few fp32 ulp of
 *      difference can carry an operand across a bf16 rounding boundary (a
 *      flip: one bf16 ulp, up to 2^-7 of it), and P holds that exactly, so
 *      a layer whose difference comes from one flip sits near 1 of its
 *      bound (measured: 0.97). The step: losses, D(x), D(G(z)), parameters
 *      as in fp32 (a first Adam step is a sign where |g| is within 3
 *      GRAD_FLIP of the scale or 1e-6; elsewhere + lr eps / |g|);
 *      gradients and moments GRAD_FLIP = 1e-4 instead of 1e-5, for the
 *      flips: one moves one term of a gradient's sum by 2^-7 of it, up to
 *      3e-4 of the tensor's scale in D's last layer (terms |dlogit h1| <=
 *      0.0058 x 0.8 against a scale of 0.12). That is not a bound (several
 *      flips on large terms of one element would exceed it) but flips are
 *      rare: measured 3.5e-5 of the scale at worst, 0.14 of the tolerance.
 *    - step_autocast_h32: PyTorch's own bf16 (torch.autocast), which also
 *      rounds each Linear's bias and output and each activation to bf16
 *      (u = 2^-8 relative per rounding). Forward, per element, the bound
 *      above plus u (|b| + 2 |y'|): the bias, the Linear's output (which
 *      ReLU, LeakyReLU and tanh do not enlarge relative to their own output:
 *      act'(p) |p| <= |act(p)|) and the activation's output (measured worst
 *      0.98 of it, again where P dominates). Losses, D(x), D(G(z)): 4 u
 *      relative: each D output y rounded (u |y|, so u in log y) after its
 *      logit (u |logit|, |logit| < 0.35 here, times y (1 - y) in y and 1 - y
 *      in log y), i.e. 1.35 u per term before the forward's own difference,
 *      against terms |log y| >= 0.45: up to 3 u relative if all aligned
 *      (measured 0.06 of 4 u). Gradients are not
 *      compared (PyTorch's are products with bf16 outputs, after bf16
 *      activations: up to 14.5 u of the tensor's scale from step_bf16_h32's,
 *      where sums cancel); they set the parameters' tolerance instead. Adam's
 *      first step is lr g / (|g| + eps): where autocast's |g| is above
 *      GRAD_SIGN = 32 u of its tensor's scale (over twice that measured
 *      difference, so the signs agree) the parameter after step 1 must
 *      agree to 1e-7 + lr eps / |g|, elsewhere to 2 lr + 1e-7 (a sign flip
 *      moves it exactly 2 lr: measured 0.9998 of it). After the last step,
 *      + 2.01 lr per later step: with betas 0.9 / 0.999 no Adam step of
 *      steps 2 and 3 exceeds 1.004 lr (Cauchy-Schwarz on m / sqrt(v)).
 *      These catch a wrong product, not a wrong rounding: an fp32 step
 *      passes them (autocast is that close to fp32); step_bf16_h32 is the
 *      test of the rounding.
 *    And simdgan against itself: twenty steps fused on 1, 2 and 3 threads
 *    and unfused on 2, all bit for bit (losses, parameters, moments); and
 *    one step's weight gradients farther from the fp32 step's than 1e-3 of
 *    their scale (measured: 2.9e-3 at least), so that bf16 silently ignored
 *    fails. */
#include <string.h>

#include "check.h"
#include "cpu.h"
#include "model.h"
#include "safetensors.h"
#include "tables.h"
#include "util.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

/* What a fixture's products are: fp32, simdgan's bf16 emulated
 * (step_bf16_h32), or torch.autocast's bf16 (step_autocast_h32). */
typedef enum { PREC_FP32, PREC_BF16, PREC_AUTOCAST } prec;

#define U16 0x1p-8 /* bf16's unit roundoff: round to nearest, 8 bits */
#define GRAD_SIGN (32 * U16) /* autocast: gradients above this of their scale keep their sign */
#define GRAD_FLIP 1e-4       /* bf16 against its emulation: gradients' rel (fp32: 1e-5) */

/* An operand as the products see it: bf16-rounded unless fp32. */
static double opnd(prec p, float v) { return p == PREC_FP32 ? v : sg_bf16_roundf(v); }

typedef struct run_ctx {
    sg_st_file *f;
    int step;
} run_ctx;

/* The tutorial's config with the fixture's latent, hidden and batch. */
static sg_gan_config fixture_config(sg_st_file *f)
{
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.latent = atoi(sg_st_meta(f, "latent"));
    c.hidden = atoi(sg_st_meta(f, "hidden"));
    c.batch = atoi(sg_st_meta(f, "batch"));
    return c;
}

static const float *need(sg_st_file *f, const char *name, size_t count)
{
    int nd;
    int64_t shape[SG_ST_MAX_DIMS];
    const float *p = sg_st_get(f, name, &nd, shape);
    if (!p) {
        fprintf(stderr, "%s\n", sg_last_error());
        exit(1);
    }
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if ((size_t)n != count) {
        fprintf(stderr, "fixture tensor %s has %lld elements, expected %zu\n", name,
                (long long)n, count);
        exit(1);
    }
    return p;
}

static void fill(void *ctx, sg_gan *g, int ith, int nth)
{
    (void)nth;
    if (ith != 0) return;
    run_ctx *r = ctx;
    char name[64];
    size_t B = (size_t)g->cfg.batch, img = (size_t)g->cfg.image, lat = (size_t)g->cfg.latent;
    snprintf(name, sizeof name, "x_real.s%d", r->step);
    memcpy(g->xd, need(r->f, name, B * img), B * img * 4);
    snprintf(name, sizeof name, "z1.s%d", r->step);
    memcpy(g->z1, need(r->f, name, B * lat), B * lat * 4);
    snprintf(name, sizeof name, "z2.s%d", r->step);
    memcpy(g->z2, need(r->f, name, B * lat), B * lat * 4);
}

/* Writes the fixture's tensors prefix<k> into net's param (and says so:
 * the packed copies the fused path reads are rebuilt from it). */
static void load_net(sg_st_file *f, sg_net *net, const char *prefix)
{
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        int nd;
        int64_t shape[2];
        float *dst = sg_net_tensor(net, net->param, sg_net_names[i], &nd, shape);
        char name[64];
        snprintf(name, sizeof name, "%s%s", prefix, sg_net_names[i]);
        size_t n = (size_t)(nd == 2 ? shape[0] * shape[1] : shape[0]);
        memcpy(dst, need(f, name, n), n * 4);
    }
    sg_net_params_changed(net);
}

/* ---- 1. the forwards, layer by layer ----------------------------------- */

typedef struct fwd_ctx {
    sg_gan *g;
    sg_net *net;
    const float *x;
    size_t rows;
    float *out; /* [rows, net->dims[SG_LAYERS]] */
} fwd_ctx;

static void fwd_thread(void *p, int ith)
{
    fwd_ctx *c = p;
    sg_net_forward(c->g, c->net, c->x, c->rows, c->out, (size_t)c->net->dims[SG_LAYERS], ith);
}

/* One layer's output y [rows, N] against PyTorch's yt, from the inputs x
 * (simdgan's) and xt (PyTorch's) [rows, K] and the fixture's W [N, K] and b
 * [N], within the bound in the header for precision p. Returns the worst
 * |y - yt| / bound; *maxdiff gets the largest |y - yt|. */
static double check_layer(const char *label, const char *name, const float *y, const float *yt,
                          const float *x, const float *xt, const float *W, const float *b,
                          size_t rows, size_t N, size_t K, sg_act act, prec p, double *maxdiff)
{
    const double u = 0x1p-24;
    double worst = 0.0;
    for (size_t i = 0; i < rows; i++)
        for (size_t n = 0; n < N; n++) {
            double S = fabs(b[n]), P = 0.0;
            for (size_t k = 0; k < K; k++) {
                const double w = opnd(p, W[n * K + k]), xk = opnd(p, x[i * K + k]),
                             xtk = opnd(p, xt[i * K + k]);
                S += fabs(w * xtk);
                P += fabs(w) * fabs(xk - xtk);
            }
            const double want = yt[i * N + n], d = fabs((double)y[i * N + n] - want);
            double tol = 2.0 * (double)(K + 2) * u * (S + P) + P + 1e-30;
            if (act == SG_ACT_LRELU) tol += 2.0 * u * fabs(want);
            if (act == SG_ACT_TANH) tol += 8.0 * 0x1p-23 * fabs(want);
            if (p == PREC_AUTOCAST) tol += U16 * (fabs(b[n]) + 2.0 * fabs(want));
            if (d > *maxdiff) *maxdiff = d;
            if (!(d <= worst * tol)) worst = d / tol;
            if (!(d <= tol)) {
                CHECK(d <= tol, "%s %s[%zu][%zu] = %.9g, PyTorch %.9g (bound %.3g; %.3g from "
                      "the previous layer)", label, name, i, n, (double)y[i * N + n], want, tol, P);
                return worst;
            }
        }
    return worst;
}

/* A run's label: "fixture [table, bf16 path<inside>]<after>". */
static void label_of(char *buf, size_t cap, const char *file, const sg_kernels *k,
                     const sg_bf16_kernels *bk, const char *inside, const char *after)
{
    snprintf(buf, cap, "%s [%s%s%s%s]%s", strrchr(file, '/') + 1, k->isa, bk ? ", bf16 " : "",
             bk ? bk->path : "", inside, after);
}

/* The five forwards of step 1 (make_fixtures.py's LAYERS), each with the
 * fixture's parameters and input: fused against PyTorch's, layer by layer;
 * unfused bit for bit the same as fused. bk: bf16 products on that path
 * (the fixture's precision p says how they are bounded), or NULL. */
static void test_forward(const char *file, const sg_kernels *k, const sg_bf16_kernels *bk, prec p)
{
    static const struct {
        int is_d;
        const char *params, *input, *which, *out;
    } fwd[] = {
        {0, "G.init.", "z1.s1", "z1", "G.out.s1"},
        {0, "G.init.", "z2.s1", "z2", "G.out2.s1"},
        {1, "D.init.", "x_real.s1", "real", "D.logit_real.s1"},
        {1, "D.init.", "G.out.s1", "fake", "D.logit_fake.s1"},
        {1, "D.step1.", "G.out2.s1", "g", "D.logit_g.s1"},
    };
    sg_st_file *f = sg_st_open(file);
    CHECK(f != NULL, "%s", sg_last_error());
    if (!f) return;
    sg_gan_config c = fixture_config(f);
    sg_engine e;
    CHECK(sg_engine_init(&e, k, 1) == 0, "%s", sg_last_error());
    sg_gan g;
    sg_gan_init(&g, &c, &e, 0);
    if (bk) CHECK(sg_gan_use_bf16(&g, bk) == 0, "%s", sg_last_error());
    const size_t B = (size_t)c.batch, hmax = (size_t)c.hidden, omax = (size_t)c.image;
    float *out = sg_xalloc(B * omax * sizeof(float));
    float *fused[SG_LAYERS] = {sg_xalloc(B * hmax * 4), sg_xalloc(B * hmax * 4),
                               sg_xalloc(B * omax * 4)};
    char label[160];
    label_of(label, sizeof label, file, k, bk, "", " forward");
    int before = check_failures;
    double worst = 0.0, maxdiff = 0.0;
    const char *worst_at = "";
    char names[5][SG_LAYERS][64];
    for (size_t t = 0; t < sizeof fwd / sizeof *fwd; t++) {
        sg_net *net = fwd[t].is_d ? &g.D : &g.G;
        load_net(f, net, fwd[t].params);
        const float *x = need(f, fwd[t].input, B * (size_t)net->dims[0]);
        fwd_ctx ctx = {&g, net, x, B, out};
        e.fusion = 1;
        sg_parallel(&e, fwd_thread, &ctx);
        const float *xin = x, *xtin = x;
        for (int l = 0; l < SG_LAYERS; l++) {
            const size_t K = (size_t)net->dims[l], N = (size_t)net->dims[l + 1];
            char *name = names[t][l], wname[64];
            if (l + 1 < SG_LAYERS)
                snprintf(name, 64, "%s.h%d_%s.s1", fwd[t].is_d ? "D" : "G", l, fwd[t].which);
            else
                snprintf(name, 64, "%s", fwd[t].out);
            const float *y = l + 1 < SG_LAYERS ? net->a[l] : out, *yt = need(f, name, B * N);
            snprintf(wname, sizeof wname, "%s%s", fwd[t].params, sg_net_names[2 * l]);
            const float *W = need(f, wname, N * K);
            snprintf(wname, sizeof wname, "%s%s", fwd[t].params, sg_net_names[2 * l + 1]);
            const float *b = need(f, wname, N);
            sg_act act = net->act[l] == SG_ACT_SIGMOID ? SG_ACT_NONE : net->act[l];
            double r = check_layer(label, name, y, yt, xin, xtin, W, b, B, N, K, act, p, &maxdiff);
            if (r > worst) worst = r, worst_at = name;
            xin = y, xtin = yt;
            memcpy(fused[l], y, B * N * sizeof(float));
        }
        e.fusion = 0;
        sg_parallel(&e, fwd_thread, &ctx);
        for (int l = 0; l < SG_LAYERS; l++) {
            const size_t n = B * (size_t)net->dims[l + 1];
            CHECK(memcmp(l + 1 < SG_LAYERS ? net->a[l] : out, fused[l], n * sizeof(float)) == 0,
                  "%s: %s: unfused differs from fused", label, names[t][l]);
        }
    }
    printf("%-52s %s  15 layers: max diff %.2e, worst %.3f of the bound (%s); unfused == "
           "fused\n", label, check_failures == before ? "ok  " : "FAIL", maxdiff, worst, worst_at);
    for (int l = 0; l < SG_LAYERS; l++) sg_free(fused[l]);
    sg_free(out);
    sg_gan_free(&g);
    sg_engine_free(&e);
    sg_st_close(f);
}

/* ---- 2. the step against PyTorch's ----------------------------------------- */

static double scalar_of(sg_st_file *f, const char *name, int step)
{
    char full[64];
    snprintf(full, sizeof full, "%s.s%d", name, step);
    return need(f, full, 1)[0];
}

/* A tensor's tolerance: |got - want| <= atol + rel (2 max|want| + |want|);
 * for parameters after Adam also, by the reference gradient g of the
 * element: + tiny where |g| <= g_abs + g_rel max|g| (Adam's first step is a
 * sign there), else + eps_lr / |g| (lr eps / |g|: what eps does to it). */
typedef struct tol {
    double rel, atol, g_abs, g_rel, tiny, eps_lr;
} tol;

/* Compares one buffer of a network (param, grad, m or v) tensor by tensor
 * with the fixture's prefix<k>, the gradients gprefix<k> (or NULL) deciding
 * tol's terms. Returns the max |diff|; *ratio gets the worst |diff| / tol
 * if larger. */
static double compare_net(const char *label, sg_st_file *f, sg_net *net, float *buf,
                          const char *prefix, const char *gprefix, tol t, double *ratio)
{
    double worst = 0.0;
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        int nd;
        int64_t shape[2];
        const float *got = sg_net_tensor(net, buf, sg_net_names[i], &nd, shape);
        size_t n = (size_t)(nd == 2 ? shape[0] * shape[1] : shape[0]);
        char name[64], gname[64];
        snprintf(name, sizeof name, "%s%s", prefix, sg_net_names[i]);
        const float *want = need(f, name, n);
        const float *g = NULL;
        double scale = 0.0, gscale = 0.0;
        if (gprefix) {
            snprintf(gname, sizeof gname, "%s%s", gprefix, sg_net_names[i]);
            g = need(f, gname, n);
            for (size_t j = 0; j < n; j++)
                if (fabs(g[j]) > gscale) gscale = fabs(g[j]);
        }
        /* Maxima as comparisons: aarch64 GCC 12's vectoriser crashes on an
         * fmax reduction (internal compiler error in vect_transform_reduction). */
        for (size_t j = 0; j < n; j++)
            if (fabs(want[j]) > scale) scale = fabs(want[j]);
        double r = *ratio;
        for (size_t j = 0; j < n; j++) {
            double d = fabs((double)got[j] - want[j]);
            double tl = t.atol + t.rel * (2.0 * scale + fabs(want[j]));
            if (g && fabs(g[j]) <= t.g_abs + t.g_rel * gscale)
                tl += t.tiny;
            else if (g)
                tl += t.eps_lr / fabs(g[j]);
            if (d > worst) worst = d;
            if (d / tl > r) r = d / tl;
            if (d > tl) {
                CHECK(d <= tl, "%s %s[%zu] = %.9g, PyTorch %.9g (tolerance %.3g)", label, name,
                      j, (double)got[j], (double)want[j], tl);
                break;
            }
        }
        *ratio = r;
    }
    return worst;
}

/* got against the fixture's want, relative rel; *ratio as compare_net. */
static void check_scalar(const char *label, const char *what, double got, double want,
                         double rel, double *ratio)
{
    const double tl = rel * fabs(want) + 1e-7, d = fabs(got - want);
    if (d / tl > *ratio) *ratio = d / tl;
    CHECK(d <= tl, "%s %s = %.9g, PyTorch %.9g", label, what, got, want);
}

/* Runs the fixture's steps, fused or not on nth threads, with bf16 products
 * on bk (or NULL: fp32), and compares with the fixture (precision p) as the
 * header says. */
static void run_fixture(const char *file, const sg_kernels *k, const sg_bf16_kernels *bk, prec p,
                        int fusion, int nth)
{
    sg_st_file *f = sg_st_open(file);
    CHECK(f != NULL, "%s", sg_last_error());
    if (!f) return;
    sg_gan_config c = fixture_config(f);
    int steps = atoi(sg_st_meta(f, "steps"));
    sg_engine e;
    CHECK(sg_engine_init(&e, k, nth) == 0, "%s", sg_last_error());
    if (e.max_nth < nth) { /* a build without OpenMP: the 1-thread run again */
        sg_engine_free(&e);
        sg_st_close(f);
        return;
    }
    e.fusion = fusion;
    sg_gan g;
    sg_gan_init(&g, &c, &e, 0);
    if (bk) CHECK(sg_gan_use_bf16(&g, bk) == 0, "%s", sg_last_error());
    g.keep_grads = 1; /* the fused path's weight gradients too, for the comparison */
    load_net(f, &g.G, "G.init.");
    load_net(f, &g.D, "D.init.");
    char label[160], inside[64];
    snprintf(inside, sizeof inside, ", %s, %d thread%s", fusion ? "fused" : "unfused", nth,
             nth > 1 ? "s" : "");
    label_of(label, sizeof label, file, k, bk, inside, "");
    run_ctx r = {f, 0};
    int before = check_failures;
    double dg = 0, dgrad = 0, dmom = 0, dp1 = 0, dpn = 0;
    double rg = 0, rgrad = 0, rmom = 0, rp1 = 0, rpn = 0; /* worst |diff| / tolerance */
    /* Gradients' rel: D's, G's (step_sat's G: above), bf16's (the header). */
    const double drel = p == PREC_BF16 ? GRAD_FLIP : 1e-5;
    const double grel = p == PREC_BF16 ? GRAD_FLIP : sg_st_meta(f, "d_last_weight_scale") ? 5e-5
                                                                                          : 1e-5;
    const double srel = p == PREC_AUTOCAST ? 4 * U16 : 2e-5, lr = c.lr, eps = c.eps;
    /* Parameters after step 1 and after the last: Adam's first step is a
     * sign where the gradient is within its tolerance of 0 (bf16: 3 rel of
     * the scale, or 1e-6), elsewhere eps moves it by lr eps / |g| at most
     * (autocast: the header). */
    const tol p1 = p == PREC_AUTOCAST ? (tol){0, 1e-7, 0, GRAD_SIGN, 2 * lr, lr * eps}
                   : p == PREC_BF16   ? (tol){0, 1e-7, 1e-6, 3 * GRAD_FLIP, 2 * lr, lr * eps}
                                      : (tol){0, 1e-7, 1e-6, 0, 2 * lr, 0};
    const tol pn = p == PREC_AUTOCAST
                       ? (tol){0, 1e-7 + 2.01 * lr * (steps - 1), 0, GRAD_SIGN, 2 * lr, lr * eps}
                   : p == PREC_BF16 ? (tol){0, 1e-6, 1e-6, 3 * GRAD_FLIP, 2 * lr, lr * eps}
                                    : (tol){0, 1e-6, 1e-6, 0, 2 * lr, 0};
    for (int s = 1; s <= steps; s++) {
        r.step = s;
        sg_gan_run_step(&g, fill, &r);
        check_scalar(label, "d_loss", g.d_loss, scalar_of(f, "d_loss", s), srel, &rg);
        check_scalar(label, "g_loss", g.g_loss, scalar_of(f, "g_loss", s), srel, &rg);
        check_scalar(label, "D(x)", g.d_x, scalar_of(f, "d_x", s), srel, &rg);
        check_scalar(label, "D(G(z))", g.d_g_z, scalar_of(f, "d_g_z", s), srel, &rg);
        dg = fmax(dg, fabs(g.d_loss - scalar_of(f, "d_loss", s)));
        dg = fmax(dg, fabs(g.g_loss - scalar_of(f, "g_loss", s)));
        if (s == 1) {
            if (p != PREC_AUTOCAST) {
                const tol td = {drel, 0, 0, 0, 0, 0}, tg = {grel, 0, 0, 0, 0, 0},
                          tvd = {3 * drel, 0, 0, 0, 0, 0}, tvg = {3 * grel, 0, 0, 0, 0, 0};
                sg_net *D = &g.D, *G = &g.G;
                dgrad = fmax(compare_net(label, f, D, D->grad, "D.grad.", NULL, td, &rgrad),
                             compare_net(label, f, G, G->grad, "G.grad.", NULL, tg, &rgrad));
                dmom = fmax(dmom, compare_net(label, f, D, D->m, "D.adam_m.", NULL, td, &rmom));
                dmom = fmax(dmom, compare_net(label, f, G, G->m, "G.adam_m.", NULL, tg, &rmom));
                dmom = fmax(dmom, compare_net(label, f, D, D->v, "D.adam_v.", NULL, tvd, &rmom));
                dmom = fmax(dmom, compare_net(label, f, G, G->v, "G.adam_v.", NULL, tvg, &rmom));
            }
            dp1 = fmax(compare_net(label, f, &g.D, g.D.param, "D.step1.", "D.grad.", p1, &rp1),
                       compare_net(label, f, &g.G, g.G.param, "G.step1.", "G.grad.", p1, &rp1));
        }
    }
    if (steps > 1)
        dpn = fmax(compare_net(label, f, &g.D, g.D.param, "D.final.", "D.grad.", pn, &rpn),
                   compare_net(label, f, &g.G, g.G.param, "G.final.", "G.grad.", pn, &rpn));
    char grads[96] = "grads, moments not compared, ";
    if (p != PREC_AUTOCAST)
        snprintf(grads, sizeof grads, "grads %.2e (%.3f), moments %.2e (%.3f), ", dgrad, rgrad,
                 dmom, rmom);
    printf("%-52s %s  max diff (of the tolerance): losses %.2e (%.3f), %sstep-1 params %.2e "
           "(%.3f), final params %.2e (%.3f)\n", label, check_failures == before ? "ok  " : "FAIL",
           dg, rg, grads, dp1, rp1, dpn, rpn);
    sg_gan_free(&g);
    sg_engine_free(&e);
    sg_st_close(f);
}

/* ---- 3. twenty steps, the same bits every way ------------------------------ */

enum { NSTEPS = 20 };

typedef struct variant {
    int fusion, nth, path;
} variant;

/* Runs NSTEPS steps from the fixture's initial G and D, with bf16 products
 * on bk (or NULL), step s on the fixture's inputs of step (s - 1) % steps +
 * 1; each step's d_loss, g_loss, D(x) and D(G(z)) go to scalars[s - 1][0..3].
 * Leaves g and e for the caller to compare and free; 0 when the engine has
 * fewer than v.nth threads (a build without OpenMP: nothing left to free). */
static int run_variant(sg_st_file *f, const sg_kernels *k, const sg_bf16_kernels *bk, variant v,
                       sg_engine *e, sg_gan *g, float scalars[NSTEPS][4])
{
    sg_gan_config c = fixture_config(f);
    const int steps = atoi(sg_st_meta(f, "steps"));
    CHECK(sg_engine_init(e, k, v.nth) == 0, "%s", sg_last_error());
    if (e->max_nth < v.nth) {
        sg_engine_free(e);
        return 0;
    }
    e->fusion = v.fusion;
    e->path = v.path;
    sg_gan_init(g, &c, e, 0);
    if (bk) CHECK(sg_gan_use_bf16(g, bk) == 0, "%s", sg_last_error());
    load_net(f, &g->G, "G.init.");
    load_net(f, &g->D, "D.init.");
    run_ctx r = {f, 0};
    for (int s = 1; s <= NSTEPS; s++) {
        r.step = (s - 1) % steps + 1;
        sg_gan_run_step(g, fill, &r);
        const float out[4] = {g->d_loss, g->g_loss, g->d_x, g->d_g_z};
        memcpy(scalars[s - 1], out, sizeof out);
    }
    return 1;
}

static const char *variant_name(const sg_engine *e, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s, %d thread%s, %s path", e->fusion ? "fused" : "unfused", e->nth,
             e->nth > 1 ? "s" : "", e->path == SG_PATH_BLOCK ? "block" : "panel");
    return buf;
}

/* Each of the nv variants against the first, bit for bit. */
static void test_twenty_steps(const char *file, const sg_kernels *k, const sg_bf16_kernels *bk,
                              const variant *vs, int nv)
{
    static const char *const scalar_names[4] = {"d_loss", "g_loss", "D(x)", "D(G(z))"};
    static const char *const buf_names[3] = {"", "adam_m.", "adam_v."};
    sg_st_file *f = sg_st_open(file);
    CHECK(f != NULL, "%s", sg_last_error());
    if (!f) return;
    sg_engine ea, eb;
    sg_gan ga, gb;
    float sa[NSTEPS][4], sb[NSTEPS][4];
    char label[160], na[64], nb[64], steps[32];
    snprintf(steps, sizeof steps, " %d steps", NSTEPS);
    label_of(label, sizeof label, file, k, bk, "", steps);
    if (!run_variant(f, k, bk, vs[0], &ea, &ga, sa)) {
        sg_st_close(f);
        return;
    }
    variant_name(&ea, na, sizeof na);
    for (int q = 1; q < nv; q++) {
        if (!run_variant(f, k, bk, vs[q], &eb, &gb, sb)) continue;
        variant_name(&eb, nb, sizeof nb);
        int before = check_failures;
        for (int s = 0; s < NSTEPS; s++)
            for (int i = 0; i < 4; i++)
                CHECK(memcmp(&sb[s][i], &sa[s][i], sizeof(float)) == 0, "%s: step %d %s is "
                      "%.9g %s, %.9g %s", label, s + 1, scalar_names[i], (double)sb[s][i], nb,
                      (double)sa[s][i], na);
        int tensors = 0;
        for (int net = 0; net < 2; net++) {
            sg_net *a = net ? &ga.D : &ga.G, *b = net ? &gb.D : &gb.G;
            float *bufs[3][2] = {{a->param, b->param}, {a->m, b->m}, {a->v, b->v}};
            for (int j = 0; j < 3; j++)
                for (int i = 0; i < 2 * SG_LAYERS; i++) {
                    int nd;
                    int64_t shape[2];
                    const float *x = sg_net_tensor(a, bufs[j][0], sg_net_names[i], &nd, shape);
                    const float *y = sg_net_tensor(b, bufs[j][1], sg_net_names[i], &nd, shape);
                    size_t n = (size_t)(nd == 2 ? shape[0] * shape[1] : shape[0]);
                    CHECK(memcmp(x, y, n * sizeof(float)) == 0, "%s: %s.%s%s differs: %s "
                          "against %s", label, net ? "D" : "G", buf_names[j], sg_net_names[i],
                          nb, na);
                    tensors++;
                }
        }
        printf("%-52s %s  %s against %s: losses and %d tensors bitwise equal\n", label,
               check_failures == before ? "ok  " : "FAIL", nb, na, tensors);
        sg_gan_free(&gb);
        sg_engine_free(&eb);
    }
    sg_gan_free(&ga);
    sg_engine_free(&ea);
    sg_st_close(f);
}

/* ---- 4. bf16 products are used ---------------------------------------------- */

/* One step of the fixture fp32 and one with bf16 products on bk, the same
 * table, fused, 1 thread: every weight gradient must differ by more than
 * 1e-3 of its scale somewhere (measured on step_bf16_h32: 0.7 to 13 bf16
 * units of 2^-8, i.e. 2.9e-3 to 5e-2; the tight tolerance is 3e-5). */
static void test_bf16_used(const char *file, const sg_kernels *k, const sg_bf16_kernels *bk)
{
    sg_st_file *f = sg_st_open(file);
    CHECK(f != NULL, "%s", sg_last_error());
    if (!f) return;
    sg_gan_config c = fixture_config(f);
    sg_engine e[2];
    sg_gan g[2];
    for (int q = 0; q < 2; q++) {
        CHECK(sg_engine_init(&e[q], k, 1) == 0, "%s", sg_last_error());
        sg_gan_init(&g[q], &c, &e[q], 0);
        if (q) CHECK(sg_gan_use_bf16(&g[q], bk) == 0, "%s", sg_last_error());
        g[q].keep_grads = 1;
        load_net(f, &g[q].G, "G.init.");
        load_net(f, &g[q].D, "D.init.");
        run_ctx r = {f, 1};
        sg_gan_run_step(&g[q], fill, &r);
    }
    char label[160];
    label_of(label, sizeof label, file, k, bk, "", " against fp32");
    int before = check_failures;
    double least = INFINITY;
    for (int net = 0; net < 2; net++)
        for (int l = 0; l < SG_LAYERS; l++) {
            int nd;
            int64_t shape[2];
            sg_net *a = net ? &g[0].D : &g[0].G, *b = net ? &g[1].D : &g[1].G;
            const float *x = sg_net_tensor(a, a->grad, sg_net_names[2 * l], &nd, shape);
            const float *y = sg_net_tensor(b, b->grad, sg_net_names[2 * l], &nd, shape);
            const size_t n = (size_t)(shape[0] * shape[1]);
            double scale = 0.0, d = 0.0;
            for (size_t i = 0; i < n; i++) { /* comparisons: see compare_net */
                if (fabs(y[i]) > scale) scale = fabs(y[i]);
                if (fabs((double)x[i] - y[i]) > d) d = fabs((double)x[i] - y[i]);
            }
            least = fmin(least, d / scale);
            CHECK(d > 1e-3 * scale, "%s: %s.grad.%s: the bf16 step's is within %.3g of the fp32 "
                  "step's (scale %.3g): bf16 products not used?", label, net ? "D" : "G",
                  sg_net_names[2 * l], d, scale);
        }
    printf("%-52s %s  every weight gradient differs from fp32's by >= %.2e of its scale\n",
           label, check_failures == before ? "ok  " : "FAIL", least);
    for (int q = 0; q < 2; q++) {
        sg_gan_free(&g[q]);
        sg_engine_free(&e[q]);
    }
    sg_st_close(f);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : FIXTURE_DIR;
    static const char *const names[] = {"step_h32", "step_edge", "step_sat"};
    /* fp32 20 steps: fused, 1 thread, panel path against unfused, 2 threads,
     * block path; bf16: fused on 1, 2, 3 threads and unfused on 2. */
    static const variant v32[] = {{1, 1, SG_PATH_PANEL}, {0, 2, SG_PATH_BLOCK}};
    static const variant v16[] = {{1, 1, SG_PATH_PANEL}, {1, 2, SG_PATH_PANEL},
                                  {1, 3, SG_PATH_BLOCK}, {0, 2, SG_PATH_BLOCK}};
    char emulated[4096], autocast[4096];
    snprintf(emulated, sizeof emulated, "%s/step_bf16_h32.safetensors", dir);
    snprintf(autocast, sizeof autocast, "%s/step_autocast_h32.safetensors", dir);
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const sg_kernels *tables[8];
    tables_to_run(tables, 8);
    for (const sg_kernels **t = tables; *t; t++) {
        for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
            char file[4096];
            snprintf(file, sizeof file, "%s/%s.safetensors", dir, names[n]);
            test_forward(file, *t, NULL, PREC_FP32);
            for (int fusion = 1; fusion >= 0; fusion--)
                for (int nth = 1; nth <= 2; nth++)
                    run_fixture(file, *t, NULL, PREC_FP32, fusion, nth);
            test_twenty_steps(file, *t, NULL, v32, 2);
        }
        for (const sg_bf16_kernels *const *b = sg_bf16_built(); *b; b++) {
            if (!sg_bf16_runnable(*b, &ci)) {
                char why[256];
                sg_bf16_select((*b)->path, why, sizeof why);
                printf("bf16 %s [%s]: not run (%s)\n", (*b)->path, (*t)->isa, sg_last_error());
                continue;
            }
            test_forward(emulated, *t, *b, PREC_BF16);
            test_forward(autocast, *t, *b, PREC_AUTOCAST);
            for (int fusion = 1; fusion >= 0; fusion--)
                for (int nth = 1; nth <= 2; nth++) {
                    run_fixture(emulated, *t, *b, PREC_BF16, fusion, nth);
                    run_fixture(autocast, *t, *b, PREC_AUTOCAST, fusion, nth);
                }
            test_twenty_steps(emulated, *t, *b, v16, 4);
            test_bf16_used(emulated, *t, *b);
        }
        table_ran(*t);
    }
    tables_all_ran("test_parity");
    return check_finish("test_parity");
}
