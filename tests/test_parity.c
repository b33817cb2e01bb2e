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
 * The step's tolerances, and why:
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
 *   a few ulp per step on top of step 1's: 1e-6 absolute. */
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

typedef struct run_ctx {
    sg_st_file *f;
    int step;
} run_ctx;

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
 * [N], within the bound in the header. Returns the worst |y - yt| / bound;
 * *maxdiff gets the largest |y - yt|. */
static double check_layer(const char *label, const char *name, const float *y, const float *yt,
                          const float *x, const float *xt, const float *W, const float *b,
                          size_t rows, size_t N, size_t K, sg_act act, double *maxdiff)
{
    const double u = 0x1p-24;
    double worst = 0.0;
    for (size_t i = 0; i < rows; i++)
        for (size_t n = 0; n < N; n++) {
            double S = fabs(b[n]), P = 0.0;
            for (size_t k = 0; k < K; k++) {
                S += fabs((double)W[n * K + k] * xt[i * K + k]);
                P += fabs(W[n * K + k]) * fabs((double)x[i * K + k] - xt[i * K + k]);
            }
            const double want = yt[i * N + n], d = fabs((double)y[i * N + n] - want);
            double tol = 2.0 * (double)(K + 2) * u * (S + P) + P + 1e-30;
            if (act == SG_ACT_LRELU) tol += 2.0 * u * fabs(want);
            if (act == SG_ACT_TANH) tol += 8.0 * 0x1p-23 * fabs(want);
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

/* The five forwards of step 1 (make_fixtures.py's LAYERS), each with the
 * fixture's parameters and input: fused against PyTorch's, layer by layer;
 * unfused bit for bit the same as fused. */
static void test_forward(const char *file, const sg_kernels *k)
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
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.latent = atoi(sg_st_meta(f, "latent"));
    c.hidden = atoi(sg_st_meta(f, "hidden"));
    c.batch = atoi(sg_st_meta(f, "batch"));
    sg_engine e;
    CHECK(sg_engine_init(&e, k, 1) == 0, "%s", sg_last_error());
    sg_gan g;
    sg_gan_init(&g, &c, &e, 0);
    const size_t B = (size_t)c.batch, hmax = (size_t)c.hidden, omax = (size_t)c.image;
    float *out = sg_xalloc(B * omax * sizeof(float));
    float *fused[SG_LAYERS] = {sg_xalloc(B * hmax * 4), sg_xalloc(B * hmax * 4),
                               sg_xalloc(B * omax * 4)};
    char label[160];
    snprintf(label, sizeof label, "%s [%s] forward", strrchr(file, '/') + 1, k->isa);
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
            double r = check_layer(label, name, y, yt, xin, xtin, W, b, B, N, K, act, &maxdiff);
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

/* Compares one buffer of a network (param, grad, m or v) tensor by tensor.
 * tiny_g: the reference gradients, whose near-zero elements get 2 lr. */
static double compare_net(const char *label, sg_st_file *f, sg_net *net, float *buf,
                          const char *prefix, const char *gprefix, double rel_scale, double atol,
                          double lr)
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
        if (gprefix) {
            snprintf(gname, sizeof gname, "%s%s", gprefix, sg_net_names[i]);
            g = need(f, gname, n);
        }
        double scale = 0.0;
        for (size_t j = 0; j < n; j++)
            if (fabs(want[j]) > scale) scale = fabs(want[j]);
        for (size_t j = 0; j < n; j++) {
            double d = fabs((double)got[j] - want[j]);
            double tol = atol + rel_scale * (2.0 * scale + fabs(want[j]));
            if (g && fabs(g[j]) < 1e-6) tol += 2.0 * lr;
            if (d > worst) worst = d;
            if (d > tol) {
                CHECK(d <= tol, "%s %s[%zu] = %.9g, PyTorch %.9g (tolerance %.3g)", label, name,
                      j, (double)got[j], (double)want[j], tol);
                break;
            }
        }
    }
    return worst;
}

static void check_scalar(const char *label, const char *what, double got, double want)
{
    CHECK(fabs(got - want) <= 2e-5 * fabs(want) + 1e-7, "%s %s = %.9g, PyTorch %.9g", label, what,
          got, want);
}

static void run_fixture(const char *file, const sg_kernels *k, int fusion, int nth)
{
    sg_st_file *f = sg_st_open(file);
    CHECK(f != NULL, "%s", sg_last_error());
    if (!f) return;
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.latent = atoi(sg_st_meta(f, "latent"));
    c.hidden = atoi(sg_st_meta(f, "hidden"));
    c.batch = atoi(sg_st_meta(f, "batch"));
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
    g.keep_grads = 1; /* the fused path's weight gradients too, for the comparison */
    load_net(f, &g.G, "G.init.");
    load_net(f, &g.D, "D.init.");
    char label[160];
    snprintf(label, sizeof label, "%s [%s, %s, %d thread%s]", strrchr(file, '/') + 1, k->isa,
             fusion ? "fused" : "unfused", nth, nth > 1 ? "s" : "");
    run_ctx r = {f, 0};
    int before = check_failures;
    double dg = 0, dgrad = 0, dmom = 0, dp1 = 0, dpn = 0;
    const double grel = sg_st_meta(f, "d_last_weight_scale") ? 5e-5 : 1e-5; /* G's, above */
    for (int s = 1; s <= steps; s++) {
        r.step = s;
        sg_gan_run_step(&g, fill, &r);
        check_scalar(label, "d_loss", g.d_loss, scalar_of(f, "d_loss", s));
        check_scalar(label, "g_loss", g.g_loss, scalar_of(f, "g_loss", s));
        check_scalar(label, "D(x)", g.d_x, scalar_of(f, "d_x", s));
        check_scalar(label, "D(G(z))", g.d_g_z, scalar_of(f, "d_g_z", s));
        dg = fmax(dg, fabs(g.d_loss - scalar_of(f, "d_loss", s)));
        dg = fmax(dg, fabs(g.g_loss - scalar_of(f, "g_loss", s)));
        if (s == 1) {
            dgrad = fmax(compare_net(label, f, &g.D, g.D.grad, "D.grad.", NULL, 1e-5, 0, 0),
                         compare_net(label, f, &g.G, g.G.grad, "G.grad.", NULL, grel, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.D, g.D.m, "D.adam_m.", NULL, 1e-5, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.G, g.G.m, "G.adam_m.", NULL, grel, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.D, g.D.v, "D.adam_v.", NULL, 3e-5, 0, 0));
            dmom = fmax(dmom,
                        compare_net(label, f, &g.G, g.G.v, "G.adam_v.", NULL, 3 * grel, 0, 0));
            dp1 = fmax(compare_net(label, f, &g.D, g.D.param, "D.step1.", "D.grad.", 0, 1e-7, c.lr),
                       compare_net(label, f, &g.G, g.G.param, "G.step1.", "G.grad.", 0, 1e-7, c.lr));
        }
    }
    if (steps > 1)
        dpn = fmax(compare_net(label, f, &g.D, g.D.param, "D.final.", "D.grad.", 0, 1e-6, c.lr),
                   compare_net(label, f, &g.G, g.G.param, "G.final.", "G.grad.", 0, 1e-6, c.lr));
    printf("%-52s %s  max diff: losses %.2e, grads %.2e, moments %.2e, step-1 params %.2e, "
           "final params %.2e\n", label, check_failures == before ? "ok  " : "FAIL", dg, dgrad,
           dmom, dp1, dpn);
    sg_gan_free(&g);
    sg_engine_free(&e);
    sg_st_close(f);
}

/* ---- 3. twenty steps, the same bits every way ------------------------------ */

enum { NSTEPS = 20 };

typedef struct variant {
    int fusion, nth, path;
} variant;

/* Runs NSTEPS steps from the fixture's initial G and D, step s on the
 * fixture's inputs of step (s - 1) % steps + 1; each step's d_loss, g_loss,
 * D(x) and D(G(z)) go to scalars[s - 1][0..3]. Leaves g and e for the
 * caller to compare and free. */
static void run_variant(sg_st_file *f, const sg_kernels *k, variant v, sg_engine *e, sg_gan *g,
                        float scalars[NSTEPS][4])
{
    sg_gan_config c;
    sg_gan_config_default(&c);
    c.latent = atoi(sg_st_meta(f, "latent"));
    c.hidden = atoi(sg_st_meta(f, "hidden"));
    c.batch = atoi(sg_st_meta(f, "batch"));
    const int steps = atoi(sg_st_meta(f, "steps"));
    CHECK(sg_engine_init(e, k, v.nth) == 0, "%s", sg_last_error());
    e->fusion = v.fusion;
    e->path = v.path;
    sg_gan_init(g, &c, e, 0);
    load_net(f, &g->G, "G.init.");
    load_net(f, &g->D, "D.init.");
    run_ctx r = {f, 0};
    for (int s = 1; s <= NSTEPS; s++) {
        r.step = (s - 1) % steps + 1;
        sg_gan_run_step(g, fill, &r);
        const float out[4] = {g->d_loss, g->g_loss, g->d_x, g->d_g_z};
        memcpy(scalars[s - 1], out, sizeof out);
    }
}

static const char *variant_name(const sg_engine *e, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s, %d thread%s, %s path", e->fusion ? "fused" : "unfused", e->nth,
             e->nth > 1 ? "s" : "", e->path == SG_PATH_BLOCK ? "block" : "panel");
    return buf;
}

static void test_twenty_steps(const char *file, const sg_kernels *k)
{
    static const variant va = {1, 1, SG_PATH_PANEL}, vb = {0, 2, SG_PATH_BLOCK};
    static const char *const scalar_names[4] = {"d_loss", "g_loss", "D(x)", "D(G(z))"};
    static const char *const buf_names[3] = {"", "adam_m.", "adam_v."};
    sg_st_file *f = sg_st_open(file);
    CHECK(f != NULL, "%s", sg_last_error());
    if (!f) return;
    sg_engine ea, eb;
    sg_gan ga, gb;
    float sa[NSTEPS][4], sb[NSTEPS][4];
    run_variant(f, k, va, &ea, &ga, sa);
    run_variant(f, k, vb, &eb, &gb, sb);
    char label[160], na[64], nb[64];
    snprintf(label, sizeof label, "%s [%s] %d steps", strrchr(file, '/') + 1, k->isa, NSTEPS);
    variant_name(&ea, na, sizeof na);
    variant_name(&eb, nb, sizeof nb);
    int before = check_failures;
    for (int s = 0; s < NSTEPS; s++)
        for (int q = 0; q < 4; q++)
            CHECK(memcmp(&sb[s][q], &sa[s][q], sizeof(float)) == 0, "%s: step %d %s is %.9g %s, "
                  "%.9g %s", label, s + 1, scalar_names[q], (double)sb[s][q], nb,
                  (double)sa[s][q], na);
    int tensors = 0;
    for (int net = 0; net < 2; net++) {
        sg_net *a = net ? &ga.D : &ga.G, *b = net ? &gb.D : &gb.G;
        float *bufs[3][2] = {{a->param, b->param}, {a->m, b->m}, {a->v, b->v}};
        for (int q = 0; q < 3; q++)
            for (int i = 0; i < 2 * SG_LAYERS; i++) {
                int nd;
                int64_t shape[2];
                const float *x = sg_net_tensor(a, bufs[q][0], sg_net_names[i], &nd, shape);
                const float *y = sg_net_tensor(b, bufs[q][1], sg_net_names[i], &nd, shape);
                size_t n = (size_t)(nd == 2 ? shape[0] * shape[1] : shape[0]);
                CHECK(memcmp(x, y, n * sizeof(float)) == 0, "%s: %s.%s%s differs: %s against %s",
                      label, net ? "D" : "G", buf_names[q], sg_net_names[i], nb, na);
                tensors++;
            }
    }
    printf("%-52s %s  %s against %s: losses and %d tensors bitwise equal\n", label,
           check_failures == before ? "ok  " : "FAIL", nb, na, tensors);
    sg_gan_free(&ga);
    sg_gan_free(&gb);
    sg_engine_free(&ea);
    sg_engine_free(&eb);
    sg_st_close(f);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : FIXTURE_DIR;
    static const char *const names[] = {"step_h32", "step_edge", "step_sat"};
    const sg_kernels *tables[8];
    tables_to_run(tables, 8);
    for (const sg_kernels **t = tables; *t; t++) {
        for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
            char file[4096];
            snprintf(file, sizeof file, "%s/%s.safetensors", dir, names[n]);
            test_forward(file, *t);
            for (int fusion = 1; fusion >= 0; fusion--)
                for (int nth = 1; nth <= 2; nth++) run_fixture(file, *t, fusion, nth);
            test_twenty_steps(file, *t);
        }
        table_ran(*t);
    }
    tables_all_ran("test_parity");
    return check_finish("test_parity");
}
