/* test_gradcheck.c: every backward formula against central finite
 * differences of the forward, computed in double.
 *
 * For each kernel table this CPU runs: the Linear layer's three products
 * (through sg_gemm), ReLU, LeakyReLU, Tanh and Sigmoid backward (act_bwd and
 * the GEMM epilogue), BCE backward, and the fused sigmoid+BCE, whose
 * saturated outputs (sigmoid exactly 0.0f or 1.0f) must give PyTorch's exact
 * 0 gradient and the -100 log clamp in the loss. */
#include <string.h>

#include "check.h"
#include "cpu.h"
#include "gemm.h"
#include "util.h"

static unsigned lcg = 7;
static double drand(void)
{
    lcg = lcg * 1664525u + 1013904223u;
    return (double)(lcg >> 8) / 16777216.0 * 2.0 - 1.0;
}

static double act_d(double x, sg_act a)
{
    switch (a) {
    case SG_ACT_RELU: return x > 0 ? x : 0;
    case SG_ACT_LRELU: return x > 0 ? x : 0.2 * x;
    case SG_ACT_TANH: return tanh(x);
    case SG_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return x;
    }
}

static double bce_d(double y, double t)
{
    return -(t * fmax(log(y), -100.0) + (1 - t) * fmax(log(1 - y), -100.0));
}

/* Linear: L = sum(R * (X W^T + b)); dX = R W, dW = R^T X, db = colsum R. */
static void check_linear(const sg_kernels *k)
{
    enum { M = 5, IN = 7, OUT = 3 };
    double X[M * IN], W[OUT * IN], b[OUT], R[M * OUT];
    float Xf[M * IN], Wf[OUT * IN], Rf[M * OUT], dX[M * IN], dW[OUT * IN], db[OUT];
    for (int i = 0; i < M * IN; i++) Xf[i] = (float)drand(), X[i] = Xf[i];
    for (int i = 0; i < OUT * IN; i++) Wf[i] = (float)drand(), W[i] = Wf[i];
    for (int i = 0; i < OUT; i++) b[i] = drand();
    for (int i = 0; i < M * OUT; i++) Rf[i] = (float)drand(), R[i] = Rf[i];
    sg_engine e;
    CHECK(sg_engine_init(&e, k, 1) == 0, "%s", sg_last_error());
    sg_engine_reserve(&e, 16, 16, 16);
    sg_gemm(&e, M, IN, OUT, (sg_view){Rf, OUT, 1}, (sg_view){Wf, IN, 1}, dX, IN, 0, NULL, 0);
    sg_gemm(&e, OUT, IN, M, (sg_view){Rf, 1, OUT}, (sg_view){Xf, IN, 1}, dW, IN, 0, NULL, 0);
    k->colsum(db, Rf, OUT, M, 0, OUT);
    sg_engine_free(&e);

    const double h = 1e-6;
    double num[M * IN > OUT * IN ? M * IN : OUT * IN];
    double *vars[3] = {X, W, b};
    int sizes[3] = {M * IN, OUT * IN, OUT};
    float *got[3] = {dX, dW, db};
    const char *names[3] = {"Linear dX", "Linear dW", "Linear db"};
    for (int v = 0; v < 3; v++) {
        for (int i = 0; i < sizes[v]; i++) {
            double keep = vars[v][i], L[2];
            for (int s = 0; s < 2; s++) {
                vars[v][i] = keep + (s ? -h : h);
                L[s] = 0;
                for (int r = 0; r < M; r++)
                    for (int o = 0; o < OUT; o++) {
                        double y = b[o];
                        for (int p = 0; p < IN; p++) y += X[r * IN + p] * W[o * IN + p];
                        L[s] += R[r * OUT + o] * y;
                    }
            }
            vars[v][i] = keep;
            num[i] = (L[0] - L[1]) / (2 * h);
        }
        /* float products of O(1) values against an O(h^2) exact difference:
         * 1e-5 absolute covers the float rounding of sums of 7 terms. */
        check_close(names[v], got[v], num, (size_t)sizes[v], 1e-5, 1e-5);
    }
}

/* Activations: L = sum(R * act(x)); dx from act_bwd at y = act(x), and the
 * same through the backward GEMM epilogue (dx = (R . I) * act'(y)). Points
 * are kept away from the kinks at 0. */
static void check_acts(const sg_kernels *k)
{
    enum { N = 64 };
    static const sg_act acts[] = {SG_ACT_RELU, SG_ACT_LRELU, SG_ACT_TANH, SG_ACT_SIGMOID};
    static const char *names[] = {"relu", "lrelu", "tanh", "sigmoid"};
    float x[N], y[N], r[N], dx[N], eye[N * N], dx2[N];
    double num[N];
    for (int i = 0; i < N * N; i++) eye[i] = i % (N + 1) == 0;
    for (int a = 0; a < 4; a++) {
        for (int i = 0; i < N; i++) {
            double v = 3 * drand();
            if (fabs(v) < 0.05) v = 0.1;
            x[i] = (float)v, y[i] = x[i], r[i] = (float)drand();
        }
        k->bias_act_fwd(y, N, NULL, 0, 1, N, acts[a]);
        k->act_bwd(dx, N, r, N, y, N, 0, 1, N, acts[a]);
        for (int i = 0; i < N; i++) {
            double h = 1e-6;
            num[i] = r[i] * (act_d(x[i] + h, acts[a]) - act_d(x[i] - h, acts[a])) / (2 * h);
        }
        check_close(names[a], dx, num, N, 1e-6, 1e-5);
        /* The epilogue path: dx2 [1, N] = r [1, N] . I [N, N] times act'(y). */
        sg_engine e;
        CHECK(sg_engine_init(&e, k, 1) == 0, "%s", sg_last_error());
        sg_engine_reserve(&e, N, N, N);
        sg_epi epi = {NULL, SG_ACT_NONE, acts[a], y, N};
        sg_gemm(&e, 1, N, N, (sg_view){r, N, 1}, (sg_view){eye, N, 1}, dx2, N, 0, &epi, 0);
        sg_engine_free(&e);
        check_close(names[a], dx2, num, N, 1e-6, 1e-5);
    }
}

/* BCE (mean over n) and the fused sigmoid + BCE. */
static void check_bce(const sg_kernels *k)
{
    enum { N = 40 };
    float y[N], t[N], dy[N], z[N], s[N], loss[N], dz[N];
    double num[N];
    for (int i = 0; i < N; i++) {
        y[i] = (float)(0.5 + 0.45 * drand());
        t[i] = (float)(i % 2);
        z[i] = (float)(6 * drand());
    }
    k->bce_bwd(dy, y, t, (float)N, 0, N);
    for (int i = 0; i < N; i++) {
        double h = 1e-7;
        num[i] = (bce_d(y[i] + h, t[i]) - bce_d(y[i] - h, t[i])) / (2 * h) / N;
    }
    check_close("bce dy", dy, num, N, 1e-7, 1e-5);

    k->sigmoid_bce(s, loss, dz, z, t, (float)N, 0, N);
    for (int i = 0; i < N; i++) {
        double h = 1e-6;
        num[i] = (bce_d(act_d(z[i] + h, SG_ACT_SIGMOID), t[i]) -
                  bce_d(act_d(z[i] - h, SG_ACT_SIGMOID), t[i])) / (2 * h) / N;
    }
    check_close("sigmoid+bce dz", dz, num, N, 1e-7, 1e-5);

    /* Saturation: sigmoid(+-120) is exactly 1.0f / 0.0f in float; PyTorch's
     * BCE backward then gives exactly 0 (not the naive (y - t) / N), and the
     * loss term whose log is -inf is clamped to 100. */
    float zs[4] = {120.0f, 120.0f, -120.0f, -120.0f}, ts[4] = {1, 0, 1, 0};
    k->sigmoid_bce(s, loss, dz, zs, ts, 4.0f, 0, 4);
    CHECK(s[0] == 1.0f && s[2] == 0.0f, "sigmoid(+-120) = %g, %g", s[0], s[2]);
    for (int i = 0; i < 4; i++) CHECK(dz[i] == 0.0f, "saturated dz[%d] = %g, expected 0", i, dz[i]);
    CHECK(loss[0] == 0.0f && loss[3] == 0.0f, "loss where y = t: %g %g", loss[0], loss[3]);
    CHECK(loss[1] == 100.0f && loss[2] == 100.0f, "clamped loss %g %g, expected 100", loss[1],
          loss[2]);
}

int main(void)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    for (const sg_kernels *const *t = sg_kernels_built(); *t; t++) {
        if (!sg_kernels_runnable(*t, &ci)) {
            printf("skip %s: not supported by this CPU\n", (*t)->isa);
            continue;
        }
        int before = check_failures;
        check_linear(*t);
        check_acts(*t);
        check_bce(*t);
        printf("%s: gradient checks %s\n", (*t)->isa, check_failures == before ? "pass" : "FAIL");
    }
    return check_finish("test_gradcheck");
}
