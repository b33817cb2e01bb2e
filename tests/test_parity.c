/* test_parity.c: simdgan's training iteration against PyTorch's, tensor by
 * tensor, from fixtures that tools/make_fixtures.py wrote with PyTorch 1.13.
 *
 * For each fixture, each kernel table this CPU runs, fused and unfused, and 1
 * and 2 threads: load the initial G and D, run the stored steps on the stored
 * real batches and z, and compare losses, D(x), D(G(z)), every gradient,
 * the updated parameters and the Adam moments after step 1, and the losses
 * and parameters after the last step. The max difference of each is printed.
 *
 * Tolerances, and why:
 * - losses, D(x), D(G(z)): 2e-5 relative. Both sides sum the same float
 *   terms in another order, and exp/tanh differ by up to 1 ulp (Sleef in
 *   PyTorch, libm or our vector code here); saturated terms are exact.
 * - gradients: |diff| <= 2e-5 max|g| + 1e-5 |g|, i.e. about 1e-5 of the
 *   tensor's scale. GEMM sums of up to 200 products in a different blocked
 *   order (and D's real and fake halves as one batch of 200 instead of two
 *   products of 100) differ by a few ulp of the partial sums.
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
}

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
    e.fusion = fusion;
    sg_gan g;
    sg_gan_init(&g, &c, &e, 0);
    load_net(f, &g.G, "G.init.");
    load_net(f, &g.D, "D.init.");
    char label[160];
    snprintf(label, sizeof label, "%s [%s, %s, %d thread%s]", strrchr(file, '/') + 1, k->isa,
             fusion ? "fused" : "unfused", nth, nth > 1 ? "s" : "");
    run_ctx r = {f, 0};
    int before = check_failures;
    double dg = 0, dgrad = 0, dmom = 0, dp1 = 0, dpn = 0;
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
                         compare_net(label, f, &g.G, g.G.grad, "G.grad.", NULL, 1e-5, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.D, g.D.m, "D.adam_m.", NULL, 1e-5, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.G, g.G.m, "G.adam_m.", NULL, 1e-5, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.D, g.D.v, "D.adam_v.", NULL, 3e-5, 0, 0));
            dmom = fmax(dmom, compare_net(label, f, &g.G, g.G.v, "G.adam_v.", NULL, 3e-5, 0, 0));
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

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : FIXTURE_DIR;
    static const char *const names[] = {"step_h32", "step_edge", "step_sat"};
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    for (size_t n = 0; n < sizeof names / sizeof *names; n++) {
        char file[4096];
        snprintf(file, sizeof file, "%s/%s.safetensors", dir, names[n]);
        for (const sg_kernels *const *t = sg_kernels_built(); *t; t++) {
            if (!sg_kernels_runnable(*t, &ci)) continue;
            for (int fusion = 1; fusion >= 0; fusion--)
                for (int nth = 1; nth <= 2; nth++) run_fixture(file, *t, fusion, nth);
        }
    }
    return check_finish("test_parity");
}
