/* model.c: the networks' forward and backward passes, Adam, and the step.
 *
 * Every function here is called by all threads of one parallel region with
 * their ith; the GEMMs split their tiles and end with a barrier, elementwise
 * passes take row or element slices. The fused path puts bias + activation
 * in the forward GEMM's epilogue, the activation's backward in the epilogue
 * of the backward-data GEMM that produces the gradient, sigmoid + BCE in one
 * kernel and Adam in one pass; with e->fusion 0 each of these runs as the
 * separate passes PyTorch makes. */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "util.h"

const char *const sg_net_names[2 * SG_LAYERS] = {"0.weight", "0.bias", "2.weight",
                                                 "2.bias",   "4.weight", "4.bias"};

void sg_gan_config_default(sg_gan_config *c)
{
    c->latent = 64, c->hidden = 256, c->image = 784, c->batch = 100;
    c->lr = 2e-4, c->beta1 = 0.9, c->beta2 = 0.999, c->eps = 1e-8;
}

static size_t pad16(size_t n) { return (n + 15) / 16 * 16; }

void sg_net_layout(sg_net *n, int d0, int d1, int d2, int d3, sg_act a0, sg_act a1, sg_act a2)
{
    memset(n, 0, sizeof *n);
    n->dims[0] = d0, n->dims[1] = d1, n->dims[2] = d2, n->dims[3] = d3;
    n->act[0] = a0, n->act[1] = a1, n->act[2] = a2;
    size_t off = 0;
    for (int l = 0; l < SG_LAYERS; l++) {
        n->off_w[l] = off;
        off += pad16((size_t)n->dims[l + 1] * (size_t)n->dims[l]);
        n->off_b[l] = off;
        off += pad16((size_t)n->dims[l + 1]);
    }
    n->total = off;
}

/* Lays out the buffers and draws PyTorch's Linear init from stream `id`. */
static void net_init(sg_net *n, int d0, int d1, int d2, int d3, sg_act a0, sg_act a1, sg_act a2,
                     size_t rows, uint64_t seed, uint32_t id)
{
    sg_net_layout(n, d0, d1, d2, d3, a0, a1, a2);
    const size_t off = n->total;
    n->param = sg_xalloc(off * sizeof(float));
    n->grad = sg_xalloc(off * sizeof(float));
    n->m = sg_xalloc(off * sizeof(float));
    n->v = sg_xalloc(off * sizeof(float));
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t in = (size_t)n->dims[l], out = (size_t)n->dims[l + 1];
        /* kaiming_uniform_(a = sqrt(5)) gives bound sqrt(3) * sqrt(2 / 6) / sqrt(in)
         * = 1 / sqrt(in); the bias has the same bound. */
        float bound = (float)(1.0 / sqrt((double)in));
        sg_rng_uniform(n->param + n->off_w[l], 0, out * in, -bound, bound, seed,
                       SG_STREAM_INIT + (uint32_t)l, id, 0);
        sg_rng_uniform(n->param + n->off_b[l], 0, out, -bound, bound, seed,
                       SG_STREAM_INIT + (uint32_t)l, id, 1);
    }
    n->rows = rows;
    size_t widest = 0;
    for (int l = 0; l <= SG_LAYERS; l++)
        if ((size_t)n->dims[l] > widest) widest = (size_t)n->dims[l];
    for (int l = 0; l < SG_LAYERS - 1; l++)
        n->a[l] = sg_xalloc(rows * (size_t)n->dims[l + 1] * sizeof(float));
    n->dz[0] = sg_xalloc(rows * widest * sizeof(float));
    n->dz[1] = sg_xalloc(rows * widest * sizeof(float));
}

static void net_free(sg_net *n)
{
    sg_free(n->param), sg_free(n->grad), sg_free(n->m), sg_free(n->v);
    for (int l = 0; l < SG_LAYERS - 1; l++) sg_free(n->a[l]);
    sg_free(n->dz[0]), sg_free(n->dz[1]);
}

void sg_gan_init(sg_gan *g, const sg_gan_config *c, sg_engine *e, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->cfg = *c;
    g->e = e;
    size_t B = (size_t)c->batch, img = (size_t)c->image, lat = (size_t)c->latent;
    net_init(&g->G, c->latent, c->hidden, c->hidden, c->image, SG_ACT_RELU, SG_ACT_RELU,
             SG_ACT_TANH, B, seed, 0);
    net_init(&g->D, c->image, c->hidden, c->hidden, 1, SG_ACT_LRELU, SG_ACT_LRELU,
             SG_ACT_SIGMOID, 2 * B, seed, 1);
    g->xd = sg_xalloc(2 * B * img * sizeof(float));
    g->dxd = sg_xalloc(B * img * sizeof(float));
    g->z1 = sg_xalloc(B * lat * sizeof(float));
    g->z2 = sg_xalloc(B * lat * sizeof(float));
    g->t_d = sg_xalloc(2 * B * sizeof(float));
    g->t_g = sg_xalloc(B * sizeof(float));
    g->logit = sg_xalloc(2 * B * sizeof(float));
    g->y = sg_xalloc(2 * B * sizeof(float));
    g->loss = sg_xalloc(2 * B * sizeof(float));
    g->dlogit = sg_xalloc(2 * B * sizeof(float));
    for (size_t i = 0; i < B; i++) g->t_d[i] = 1.0f, g->t_d[B + i] = 0.0f, g->t_g[i] = 1.0f;
    size_t most = g->G.total > g->D.total ? g->G.total : g->D.total;
    g->denom = sg_xalloc(most * sizeof(float));
    /* The workspace for every product the step makes. */
    size_t rows[2] = {B, 2 * B};
    const sg_net *nets[2] = {&g->G, &g->D};
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < SG_LAYERS; l++) {
            size_t in = (size_t)nets[k]->dims[l], out = (size_t)nets[k]->dims[l + 1];
            sg_engine_reserve(e, rows[k], out, in); /* forward          */
            sg_engine_reserve(e, rows[k], in, out); /* backward-data    */
            sg_engine_reserve(e, out, in, rows[k]); /* backward-weights */
        }
}

void sg_gan_free(sg_gan *g)
{
    net_free(&g->G), net_free(&g->D);
    sg_free(g->xd), sg_free(g->dxd), sg_free(g->z1), sg_free(g->z2);
    sg_free(g->t_d), sg_free(g->t_g), sg_free(g->logit), sg_free(g->y), sg_free(g->loss);
    sg_free(g->dlogit), sg_free(g->denom);
}

void sg_net_forward(sg_gan *g, sg_net *net, const float *x, size_t rows, float *out, size_t ldo,
                    int ith)
{
    sg_engine *e = g->e;
    const float *in = x;
    size_t ldin = (size_t)net->dims[0];
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t K = (size_t)net->dims[l], N = (size_t)net->dims[l + 1];
        float *y = l + 1 == SG_LAYERS ? out : net->a[l];
        size_t ldy = l + 1 == SG_LAYERS ? ldo : N;
        sg_act act = net->act[l] == SG_ACT_SIGMOID ? SG_ACT_NONE : net->act[l];
        const float *W = net->param + net->off_w[l], *b = net->param + net->off_b[l];
        sg_view A = {in, ldin, 1}, Bt = {W, 1, K}; /* Y = X . W^T */
        if (e->fusion) {
            sg_epilogue epi = {b, act, SG_ACT_NONE, NULL, 0};
            sg_gemm(e, rows, N, K, A, Bt, y, ldy, 0, &epi, ith);
        } else {
            size_t i0, i1;
            sg_gemm(e, rows, N, K, A, Bt, y, ldy, 0, NULL, ith);
            sg_slice(rows, ith, e->nth, &i0, &i1);
            e->k->bias_act_fwd(y, ldy, b, i0, i1, N, act);
            sg_barrier(e);
        }
        in = y;
        ldin = ldy;
    }
}

void sg_net_backward(sg_gan *g, sg_net *net, const float *x, size_t rows, const float *dz_out,
                     int wgrad, float *dx, sg_act dact, const float *dact_y, int ith)
{
    sg_engine *e = g->e;
    const float *dz = dz_out;
    for (int l = SG_LAYERS - 1; l >= 0; l--) {
        size_t out = (size_t)net->dims[l + 1], in = (size_t)net->dims[l];
        const float *ain = l ? net->a[l - 1] : x; /* [rows, in] */
        if (wgrad) {
            /* dW [out, in] = dz^T . a_in; db [out] = column sums of dz. */
            size_t j0, j1;
            sg_view A = {dz, 1, out}, B = {ain, in, 1};
            sg_slice(out, ith, e->nth, &j0, &j1);
            e->k->colsum(net->grad + net->off_b[l], dz, out, rows, j0, j1);
            sg_gemm(e, out, in, rows, A, B, net->grad + net->off_w[l], in, 0, NULL, ith);
        }
        if (l == 0 && !dx) break;
        /* d a_in [rows, in] = dz . W, times act'(a_in): the next dz. */
        float *next = l ? net->dz[(l - 1) & 1] : dx;
        sg_act da = l ? net->act[l - 1] : dact;
        const float *y = l ? ain : dact_y;
        sg_view A = {dz, out, 1}, B = {net->param + net->off_w[l], in, 1};
        if (da == SG_ACT_NONE) {
            sg_gemm(e, rows, in, out, A, B, next, in, 0, NULL, ith);
        } else if (e->fusion) {
            sg_epilogue epi = {NULL, SG_ACT_NONE, da, y, in};
            sg_gemm(e, rows, in, out, A, B, next, in, 0, &epi, ith);
        } else {
            size_t i0, i1;
            sg_gemm(e, rows, in, out, A, B, next, in, 0, NULL, ith);
            sg_slice(rows, ith, e->nth, &i0, &i1);
            e->k->act_bwd(next, in, next, in, y, in, i0, i1, in, da);
            sg_barrier(e);
        }
        dz = next;
    }
    /* No barrier here: every path above ends in sg_gemm's barrier (or the
     * unfused pass's), so the gradients are complete for Adam. */
}

/* PyTorch's separate tensor ops, one pass each, on elements [i0, i1). */
static void adam_unfused(float *p, float *m, float *v, const float *gr, float *d, size_t i0,
                         size_t i1, const sg_adam_coef *h)
{
    for (size_t i = i0; i < i1; i++) m[i] = m[i] * h->b1;
    for (size_t i = i0; i < i1; i++) m[i] = fmaf(h->c1, gr[i], m[i]);
    for (size_t i = i0; i < i1; i++) v[i] = v[i] * h->b2;
    for (size_t i = i0; i < i1; i++) v[i] = fmaf(h->c2 * gr[i], gr[i], v[i]);
    for (size_t i = i0; i < i1; i++) d[i] = sqrtf(v[i]);
    for (size_t i = i0; i < i1; i++) d[i] = d[i] / h->bc2_sqrt;
    for (size_t i = i0; i < i1; i++) d[i] = d[i] + h->eps;
    for (size_t i = i0; i < i1; i++) p[i] = p[i] + -h->step_size * m[i] / d[i];
}

void sg_net_adam(sg_gan *g, sg_net *net, int ith)
{
    const sg_gan_config *c = &g->cfg;
    long t = net->step + 1;
    sg_adam_coef h = {
        .b1 = (float)c->beta1,
        .c1 = (float)(1.0 - c->beta1),
        .b2 = (float)c->beta2,
        .c2 = (float)(1.0 - c->beta2),
        .step_size = (float)(c->lr / (1.0 - pow(c->beta1, (double)t))),
        .bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, (double)t)),
        .eps = (float)c->eps,
    };
    size_t i0, i1;
    sg_slice(net->total / 16, ith, g->e->nth, &i0, &i1);
    i0 *= 16, i1 *= 16;
    if (g->e->fusion)
        g->e->k->adam(net->param, net->m, net->v, net->grad, i0, i1, &h);
    else
        adam_unfused(net->param, net->m, net->v, net->grad, g->denom, i0, i1, &h);
    sg_barrier(g->e);
    if (ith == 0) net->step = t;
}

/* Sigmoid + BCE on n logits by one thread (n is 2B at most): outputs, losses
 * and logit gradients for a mean over `count` elements. */
static void sigmoid_bce(sg_gan *g, const float *t, size_t n, float count)
{
    const sg_kernels *k = g->e->k;
    if (g->e->fusion) {
        k->sigmoid_bce(g->y, g->loss, g->dlogit, g->logit, t, count, 0, n);
    } else {
        memcpy(g->y, g->logit, n * sizeof(float));
        k->bias_act_fwd(g->y, 1, NULL, 0, n, 1, SG_ACT_SIGMOID);
        k->bce_fwd(g->loss, g->y, t, 0, n);
        k->bce_bwd(g->dlogit, g->y, t, count, 0, n);
        k->act_bwd(g->dlogit, 1, g->dlogit, 1, g->y, 1, 0, n, 1, SG_ACT_SIGMOID);
    }
}

static float mean(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return (float)(s / (double)n);
}

void sg_gan_step(sg_gan *g, int ith)
{
    const size_t B = (size_t)g->cfg.batch, img = (size_t)g->cfg.image;
    sg_engine *e = g->e;

    /* D step: [real; G(z1)] as one batch of 2B, BCE against 1 then 0. */
    sg_net_forward(g, &g->G, g->z1, B, g->xd + B * img, img, ith);
    sg_net_forward(g, &g->D, g->xd, 2 * B, g->logit, 1, ith);
    if (ith == 0) {
        sigmoid_bce(g, g->t_d, 2 * B, (float)B);
        g->d_loss = mean(g->loss, B) + mean(g->loss + B, B);
        g->d_x = mean(g->y, B);
        g->d_g_z = mean(g->y + B, B);
    }
    sg_barrier(e);
    sg_net_backward(g, &g->D, g->xd, 2 * B, g->dlogit, 1, NULL, SG_ACT_NONE, NULL, ith);
    sg_net_adam(g, &g->D, ith);

    /* G step: G(z2) through the updated D, BCE against 1; D's input gradient
     * times tanh' is G's last dz. */
    sg_net_forward(g, &g->G, g->z2, B, g->xd, img, ith);
    sg_net_forward(g, &g->D, g->xd, B, g->logit, 1, ith);
    if (ith == 0) {
        sigmoid_bce(g, g->t_g, B, (float)B);
        g->g_loss = mean(g->loss, B);
    }
    sg_barrier(e);
    sg_net_backward(g, &g->D, g->xd, B, g->dlogit, 0, g->dxd, SG_ACT_TANH, g->xd, ith);
    sg_net_backward(g, &g->G, g->z2, B, g->dxd, 1, NULL, SG_ACT_NONE, NULL, ith);
    sg_net_adam(g, &g->G, ith);
}

float *sg_net_tensor(sg_net *net, float *buf, const char *name, int *ndim, int64_t shape[2])
{
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        if (strcmp(name, sg_net_names[i]) != 0) continue;
        int l = i / 2;
        if (i % 2 == 0) {
            *ndim = 2, shape[0] = net->dims[l + 1], shape[1] = net->dims[l];
            return buf + net->off_w[l];
        }
        *ndim = 1, shape[0] = net->dims[l + 1];
        return buf + net->off_b[l];
    }
    return NULL;
}

typedef struct step_ctx {
    sg_gan *g;
    sg_fill_fn fill;
    void *ctx;
} step_ctx;

static void step_thread(void *p, int ith)
{
    const step_ctx *c = p;
    c->fill(c->ctx, c->g, ith, c->g->e->nth);
    sg_barrier(c->g->e);
    sg_gan_step(c->g, ith);
}

void sg_gan_run_step(sg_gan *g, sg_fill_fn fill, void *ctx)
{
    step_ctx c = {g, fill, ctx};
    sg_parallel(g->e, step_thread, &c);
}
