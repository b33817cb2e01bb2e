/* model.c: the networks' forward and backward passes, Adam, and the step.
 *
 * Every function here is called by all threads of one parallel region with
 * their ith; the GEMMs split their tiles and end with a barrier, elementwise
 * passes take row or element slices. The fused path puts bias + activation
 * in the forward GEMM's epilogue, the activation's backward in the epilogue
 * of the backward-data GEMM that produces the gradient, sigmoid + BCE in one
 * kernel, and Adam inside the weight gradient's product (each finished dW
 * tile updates m, v, W and W's packed copies from an L1 tile); the products
 * read the weights pre-packed. With e->fusion 0 each of these runs as the
 * separate passes PyTorch makes, on the row-major weights. Both give the
 * same bits: the same kernels on the same sums in the same order.
 *
 * With bf16 products (g->bf) every product runs on the bf16 GEMM layer
 * (gemm_bf16.h) with the same epilogues, the weights read from their bf16
 * packed copies; the weight gradients go to grad and Adam is one pass per
 * net that also writes the bf16 copies of each block of W it updates. A
 * forward layer's epilogue and a backward-data product's pack their output
 * in bf16 as the next product's A (sg_gemm_bf16_chain). */
#define _POSIX_C_SOURCE 200809L
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "trace.h"
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
static void net_init(sg_net *n, const sg_kernels *k, int d0, int d1, int d2, int d3, sg_act a0,
                     sg_act a1, sg_act a2, size_t rows, uint64_t seed, uint32_t id)
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
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t in = (size_t)n->dims[l], out = (size_t)n->dims[l + 1];
        n->wf[l] = sg_xalloc(sg_packed_floats(k, out, in) * sizeof(float));
        n->wb[l] = sg_xalloc(sg_packed_floats(k, in, out) * sizeof(float));
        n->mp[l] = sg_xalloc(sg_packed_floats(k, in, out) * sizeof(float));
        n->vp[l] = sg_xalloc(sg_packed_floats(k, in, out) * sizeof(float));
    }
    n->k = k;
    n->packed_ok = 0;
    n->moments_stale = 0;
}

static void net_free(sg_net *n)
{
    for (int l = 0; l < SG_LAYERS; l++) sg_free(n->wf16[l]), sg_free(n->wb16[l]);
    sg_free(n->param), sg_free(n->grad), sg_free(n->m), sg_free(n->v);
    for (int l = 0; l < SG_LAYERS - 1; l++) sg_free(n->a[l]);
    sg_free(n->dz[0]), sg_free(n->dz[1]);
    for (int l = 0; l < SG_LAYERS; l++)
        sg_free(n->wf[l]), sg_free(n->wb[l]), sg_free(n->mp[l]), sg_free(n->vp[l]);
}

void sg_gan_init(sg_gan *g, const sg_gan_config *c, sg_engine *e, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->cfg = *c;
    g->e = e;
    size_t B = (size_t)c->batch, img = (size_t)c->image, lat = (size_t)c->latent;
    net_init(&g->G, e->k, c->latent, c->hidden, c->hidden, c->image, SG_ACT_RELU, SG_ACT_RELU,
             SG_ACT_TANH, 2 * B, seed, 0);
    net_init(&g->D, e->k, c->image, c->hidden, c->hidden, 1, SG_ACT_LRELU, SG_ACT_LRELU,
             SG_ACT_SIGMOID, 2 * B, seed, 1);
    g->xd = sg_xalloc(3 * B * img * sizeof(float));
    g->fake = g->xd + 2 * B * img;
    g->dxd = sg_xalloc(B * img * sizeof(float));
    g->z1 = sg_xalloc(2 * B * lat * sizeof(float));
    g->z2 = g->z1 + B * lat;
    g->t_d = sg_xalloc(2 * B * sizeof(float));
    g->t_g = sg_xalloc(B * sizeof(float));
    g->logit = sg_xalloc(2 * B * sizeof(float));
    g->y = sg_xalloc(2 * B * sizeof(float));
    g->loss = sg_xalloc(2 * B * sizeof(float));
    g->dlogit = sg_xalloc(2 * B * sizeof(float));
    for (size_t i = 0; i < B; i++) g->t_d[i] = 1.0f, g->t_d[B + i] = 0.0f, g->t_g[i] = 1.0f;
    size_t most = g->G.total > g->D.total ? g->G.total : g->D.total;
    g->denom = sg_xalloc(most * sizeof(float));
    /* The workspace for every product the step makes: forwards of 2B rows
     * (and B), backwards of 2B (D step) and B. */
    const sg_net *nets[2] = {&g->G, &g->D};
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < SG_LAYERS; l++) {
            size_t in = (size_t)nets[k]->dims[l], out = (size_t)nets[k]->dims[l + 1];
            sg_engine_reserve(e, 2 * B, out, in); /* forward          */
            sg_engine_reserve(e, 2 * B, in, out); /* backward-data    */
            sg_engine_reserve(e, out, in, 2 * B); /* backward-weights */
        }
}

int sg_gan_use_bf16(sg_gan *g, const sg_bf16_kernels *bk)
{
    sg_bf16_engine *be = sg_xmalloc(sizeof *be);
    if (sg_bf16_engine_init(be, g->e, bk) != 0) {
        free(be);
        return -1;
    }
    const size_t B = (size_t)g->cfg.batch;
    sg_net *nets[2] = {&g->G, &g->D};
    for (int n = 0; n < 2; n++)
        for (int l = 0; l < SG_LAYERS; l++) {
            sg_net *net = nets[n];
            size_t in = (size_t)net->dims[l], out = (size_t)net->dims[l + 1];
            sg_bf16_engine_reserve(be, 2 * B, out, in); /* forward          */
            sg_bf16_engine_reserve(be, 2 * B, in, out); /* backward-data    */
            sg_bf16_engine_reserve(be, out, in, 2 * B); /* backward-weights */
            net->wf16[l] = sg_xalloc(sg_bf16_b_panels(be, out) * sg_bf16_b_panel_bytes(be, in));
            net->wb16[l] = sg_xalloc(sg_bf16_b_panels(be, in) * sg_bf16_b_panel_bytes(be, out));
        }
    /* Adam reads the row-major moments from now on; the bf16 copies are made
     * before the first step. */
    sg_net_params_changed(&g->G);
    sg_net_params_changed(&g->D);
    g->bf = be;
    return 0;
}

void sg_gan_free(sg_gan *g)
{
    net_free(&g->G), net_free(&g->D);
    if (g->bf) sg_bf16_engine_free(g->bf), free(g->bf);
    sg_free(g->xd), sg_free(g->dxd), sg_free(g->z1);
    sg_free(g->t_d), sg_free(g->t_g), sg_free(g->logit), sg_free(g->y), sg_free(g->loss);
    sg_free(g->dlogit), sg_free(g->denom);
}

/* The weights' rows of W, m and v from wb, mp, vp (panel q of NR columns
 * holds row o's at q out NR + o NR), where the fused Adam left them newer:
 * the row-major copies are made only when something reads them (a
 * checkpoint, a grid, the unfused path). One thread, outside the step. */
static void sync_moments(sg_net *net)
{
    if (!net->moments_stale) return;
    const size_t NR = (size_t)net->k->nr;
    for (int l = 0; l < SG_LAYERS; l++) {
        const size_t in = (size_t)net->dims[l], out = (size_t)net->dims[l + 1];
        float *W = net->param + net->off_w[l], *m = net->m + net->off_w[l],
              *v = net->v + net->off_w[l];
        for (size_t j = 0; j < in; j += NR) {
            const size_t nr = in - j < NR ? in - j : NR;
            const float *wq = net->wb[l] + j * out, *mq = net->mp[l] + j * out,
                        *vq = net->vp[l] + j * out;
            for (size_t o = 0; o < out; o++) {
                memcpy(W + o * in + j, wq + o * NR, nr * sizeof(float));
                memcpy(m + o * in + j, mq + o * NR, nr * sizeof(float));
                memcpy(v + o * in + j, vq + o * NR, nr * sizeof(float));
            }
        }
    }
    net->moments_stale = 0;
}

void sg_net_params_changed(sg_net *net)
{
    sync_moments(net); /* the repack reads the row-major m and v */
    net->packed_ok = 0;
}

void sg_gan_sync(sg_gan *g)
{
    sync_moments(&g->G);
    sync_moments(&g->D);
}

/* Products' names in the trace: net, layer, product. */
enum { P_FWD, P_BWD_DATA, P_WGRAD };
static const char *pname(const sg_gan *g, const sg_net *net, int l, int kind)
{
    static const char *const names[2][SG_LAYERS][3] = {
        {{"G.l0.fwd", "G.l0.bwd_data", "G.l0.wgrad"},
         {"G.l1.fwd", "G.l1.bwd_data", "G.l1.wgrad"},
         {"G.l2.fwd", "G.l2.bwd_data", "G.l2.wgrad"}},
        {{"D.l0.fwd", "D.l0.bwd_data", "D.l0.wgrad"},
         {"D.l1.fwd", "D.l1.bwd_data", "D.l1.wgrad"},
         {"D.l2.fwd", "D.l2.bwd_data", "D.l2.wgrad"}}};
    return net == &g->G ? names[0][l][kind] : net == &g->D ? names[1][l][kind] : "gemm";
}

/* Whether net's products read its packed weights: the fused path, on a net
 * that has them; bf16 products always do. */
static int use_packed(const sg_gan *g, const sg_net *net)
{
    return net->wf[0] != NULL && (g->e->fusion || g->bf);
}

/* This thread's share of net's bf16 packed weights, from param: each
 * weight's column panels of wf16 and of wb16 split over the threads. No
 * barrier: the next product that reads them packs its A first and waits for
 * every thread before it reads B. */
static void pack_bf16(sg_gan *g, sg_net *net, int ith)
{
    const sg_bf16_engine *be = g->bf;
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t in = (size_t)net->dims[l], out = (size_t)net->dims[l + 1], q0, q1;
        const float *W = net->param + net->off_w[l];
        sg_slice(sg_bf16_b_panels(be, out), ith, g->e->nth, &q0, &q1);
        sg_bf16_pack_b(be, net->wf16[l], (sg_view){W, 1, in}, in, out, q0, q1);
        sg_slice(sg_bf16_b_panels(be, in), ith, g->e->nth, &q0, &q1);
        sg_bf16_pack_b(be, net->wb16[l], (sg_view){W, in, 1}, out, in, q0, q1);
    }
}

/* Rebuilds net's packed weights from param where they are stale (once after
 * init or a load; never in a step of the fused path, whose Adam keeps them
 * current). All threads read packed_ok here; it is written before a barrier
 * that every later reader crosses. */
static void ensure_packed(sg_gan *g, sg_net *net, int ith)
{
    if (net->packed_ok) return;
    SG_TRACE_BEGIN(t);
    if (g->bf) {
        pack_bf16(g, net, ith);
        SG_TRACE_END(ith, SG_PH_PACK_B, "weights", t);
        sg_barrier(g->e);
        if (ith == 0) net->packed_ok = 1;
        return;
    }
    const sg_kernels *k = g->e->k;
    const size_t NR = (size_t)k->nr;
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t in = (size_t)net->dims[l], out = (size_t)net->dims[l + 1], q0, q1;
        const float *W = net->param + net->off_w[l];
        sg_slice((out + NR - 1) / NR, ith, g->e->nth, &q0, &q1);
        sg_pack_b(k, net->wf[l], (sg_view){W, 1, in}, out, in, q0, q1);
        sg_slice((in + NR - 1) / NR, ith, g->e->nth, &q0, &q1);
        sg_pack_b(k, net->wb[l], (sg_view){W, in, 1}, in, out, q0, q1);
        sg_pack_b(k, net->mp[l], (sg_view){net->m + net->off_w[l], in, 1}, in, out, q0, q1);
        sg_pack_b(k, net->vp[l], (sg_view){net->v + net->off_w[l], in, 1}, in, out, q0, q1);
    }
    SG_TRACE_END(ith, SG_PH_PACK_B, "weights", t);
    sg_barrier(g->e);
    if (ith == 0) net->packed_ok = 1;
}

void sg_net_forward(sg_gan *g, sg_net *net, const float *x, size_t rows, float *out, size_t ldo,
                    int ith)
{
    sg_engine *e = g->e;
    const int packed = use_packed(g, net);
    if (packed) ensure_packed(g, net, ith);
    const float *in = x;
    size_t ldin = (size_t)net->dims[0];
    /* bf16: each layer's epilogue packs its output as the next layer's A,
     * into the link buffer the layer does not read. */
    const void *a16 = NULL;
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t K = (size_t)net->dims[l], N = (size_t)net->dims[l + 1];
        float *y = l + 1 == SG_LAYERS ? out : net->a[l];
        size_t ldy = l + 1 == SG_LAYERS ? ldo : N;
        sg_act act = net->act[l] == SG_ACT_SIGMOID ? SG_ACT_NONE : net->act[l];
        const float *W = net->param + net->off_w[l], *b = net->param + net->off_b[l];
        sg_view A = {in, ldin, 1}, Bt = {W, 1, K}; /* Y = X . W^T */
        sg_epi epi = {b, act, SG_ACT_NONE, NULL, 0};
        const sg_epi *ep = e->fusion ? &epi : NULL; /* packed: fused or bf16 */
        const char *name = pname(g, net, l, P_FWD);
        if (g->bf && packed) {
            void *out16 = l + 1 < SG_LAYERS && ep ? g->bf->alink[l & 1] : NULL;
            sg_gemm_bf16_chain(g->bf, rows, N, K, A, a16, net->wf16[l], y, ldy, ep, out16, name,
                               ith);
            a16 = out16;
        } else if (packed)
            sg_gemm_packed(e, rows, N, K, A, net->wf[l], y, ldy, 0, ep, name, ith);
        else
            sg_gemm(e, rows, N, K, A, Bt, y, ldy, 0, ep, ith);
        if (!ep) {
            size_t i0, i1;
            sg_slice(rows, ith, e->nth, &i0, &i1);
            SG_TRACE_BEGIN(t);
            e->k->bias_act_fwd(y, ldy, b, i0, i1, N, act);
            SG_TRACE_END(ith, SG_PH_EPILOGUE, name, t);
            sg_barrier(e);
        }
        in = y;
        ldin = ldy;
    }
}

/* Adam's scalars for net's next update, t = net->step + 1. */
static sg_adam_coef adam_coef(const sg_gan_config *c, long t)
{
    sg_adam_coef h = {
        .b1 = (float)c->beta1,
        .c1 = (float)(1.0 - c->beta1),
        .b2 = (float)c->beta2,
        .c2 = (float)(1.0 - c->beta2),
        .step_size = (float)(c->lr / (1.0 - pow(c->beta1, (double)t))),
        .bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, (double)t)),
        .eps = (float)c->eps,
    };
    return h;
}

/* What a backward does with the weights: nothing (D in the G step), their
 * gradients into grad, or (fused path) Adam on each finished tile. */
enum { WG_NONE, WG_GRAD, WG_ADAM };

/* The tile consumer of a layer's fused weight-gradient product. */
typedef struct adam_tile_ctx {
    const sg_kernels *k;
    sg_net *net;
    int l;
    sg_adam_coef h;
    float *grad; /* net->grad's weight, or NULL */
} adam_tile_ctx;

/* dW rows [i, i + mr) (out), columns [j, j + nr) (in), from the scratch tile
 * c [MR, NR]: in wb's layout the tile's W, m and v are each one contiguous
 * block of mr NR floats, rows NR apart like c's, so Adam is one call of the
 * table's kernel over the block (elementwise: the bits of one pass over the
 * whole tensor; the padding columns, all zero, stay zero). Once the column
 * panel is done the new W goes to wf (adam_panel); param's rows are brought
 * up to date only when read (sync_moments): on the development machine
 * (AMD EPYC) keeping them current in the step cost ~0.3 ms a step. */
static void adam_tile(void *p, const float *c, size_t i, size_t j, size_t mr, size_t nr)
{
    const adam_tile_ctx *a = p;
    const sg_net *net = a->net;
    const size_t NR = (size_t)a->k->nr, in = (size_t)net->dims[a->l],
                 out = (size_t)net->dims[a->l + 1], blk = j * out + i * NR;
    float *wb = net->wb[a->l] + blk;
    a->k->adam(wb, net->mp[a->l] + blk, net->vp[a->l] + blk, c, 0, mr * NR, &a->h);
    if (a->grad)
        for (size_t r = 0; r < mr; r++)
            memcpy(a->grad + (i + r) * in + j, c + r * NR, nr * sizeof(float));
}

/* Column panel [j, j + nr) of W done (all its tiles, this thread): into wf,
 * whose panels run over out, the block [out][NR] of wb transposed, one
 * NR x NR square at a time by the table's pack (its vector transposes): a
 * scalar scatter per tile, NR floats apart, took 0.4 of Adam's time. */
static void adam_panel(void *p, size_t j, size_t nr)
{
    const adam_tile_ctx *a = p;
    const sg_net *net = a->net;
    const size_t NR = (size_t)a->k->nr, in = (size_t)net->dims[a->l],
                 out = (size_t)net->dims[a->l + 1];
    const float *wb = net->wb[a->l] + j * out;
    for (size_t o = 0; o < out; o += NR)
        a->k->pack(net->wf[a->l] + o * in + j * NR, wb + o * NR, NR, 1,
                   out - o < NR ? out - o : NR, nr, (int)NR);
}

/* The backward of net from dz_out [rows, dims[3]]; the activations it reads
 * are rows [row0, row0 + rows) of net->a (G's z2 half in the G step), its
 * input x is [rows, dims[0]] already offset. Per layer, top down: the
 * backward-data product first, since it reads W as it was; then the weight
 * gradient, which with WG_ADAM updates W. */
static void net_backward(sg_gan *g, sg_net *net, const float *x, size_t row0, size_t rows,
                         const float *dz_out, int wg, float *dx, sg_act dact,
                         const float *dact_y, int ith)
{
    sg_engine *e = g->e;
    const sg_kernels *k = e->k;
    const int packed = use_packed(g, net);
    if (packed) ensure_packed(g, net, ith);
    const long t = net->step + 1;
    adam_tile_ctx actx = {k, net, 0, adam_coef(&g->cfg, t), NULL};
    const float *dz = dz_out;
    const void *dz16 = NULL; /* bf16: dz as packed by the epilogue that made it */
    for (int l = SG_LAYERS - 1; l >= 0; l--) {
        size_t out = (size_t)net->dims[l + 1], in = (size_t)net->dims[l];
        const float *ain = l ? net->a[l - 1] + row0 * in : x; /* [rows, in] */
        float *next = NULL;
        if (l > 0 || dx) {
            /* d a_in [rows, in] = dz . W, times act'(a_in): the next dz. */
            next = l ? net->dz[(l - 1) & 1] : dx;
            sg_act da = l ? net->act[l - 1] : dact;
            const float *y = l ? ain : dact_y;
            sg_view A = {dz, out, 1}, B = {net->param + net->off_w[l], in, 1};
            sg_epi epi = {NULL, SG_ACT_NONE, da, y, in};
            const int pass = da != SG_ACT_NONE && !e->fusion; /* act' as its own pass */
            const sg_epi *ep = da == SG_ACT_NONE || pass ? NULL : &epi;
            const char *name = pname(g, net, l, P_BWD_DATA);
            if (g->bf && packed) {
                /* Packed for the next backward-data product, where one follows. */
                void *out16 = !pass && (l > 1 || (l == 1 && dx)) ? g->bf->alink[l & 1] : NULL;
                sg_gemm_bf16_chain(g->bf, rows, in, out, A, dz16, net->wb16[l], next, in, ep,
                                   out16, name, ith);
                dz16 = out16;
            } else if (packed)
                sg_gemm_packed(e, rows, in, out, A, net->wb[l], next, in, 0, ep, name, ith);
            else
                sg_gemm(e, rows, in, out, A, B, next, in, 0, ep, ith);
            if (pass) {
                size_t i0, i1;
                sg_slice(rows, ith, e->nth, &i0, &i1);
                SG_TRACE_BEGIN(t);
                k->act_bwd(next, in, next, in, y, in, i0, i1, in, da);
                SG_TRACE_END(ith, SG_PH_EPILOGUE, name, t);
                sg_barrier(e);
            }
        }
        if (wg != WG_NONE) {
            /* dW [out, in] = dz^T . a_in; db [out] = column sums of dz. */
            size_t j0, j1;
            sg_view A = {dz, 1, out}, B = {ain, in, 1};
            float *db = net->grad + net->off_b[l];
            sg_slice(out, ith, e->nth, &j0, &j1);
            const char *name = pname(g, net, l, P_WGRAD);
            SG_TRACE_BEGIN(t);
            k->colsum(db, dz, out, rows, j0, j1);
            SG_TRACE_END(ith, SG_PH_EPILOGUE, name, t);
            if (wg == WG_ADAM) {
                const size_t ob = net->off_b[l];
                SG_TRACE_BEGIN(ta);
                k->adam(net->param + ob, net->m + ob, net->v + ob, db, j0, j1, &actx.h);
                SG_TRACE_END(ith, SG_PH_ADAM, name, ta);
                actx.l = l;
                actx.grad = g->keep_grads ? net->grad + net->off_w[l] : NULL;
                sg_gemm_panels(e, out, in, rows, A, B, adam_tile, adam_panel, &actx, name, ith);
            } else if (g->bf) {
                sg_gemm_bf16(g->bf, out, in, rows, A, B, net->grad + net->off_w[l], in, 0, NULL,
                             name, ith);
            } else {
                sg_gemm(e, out, in, rows, A, B, net->grad + net->off_w[l], in, 0, NULL, ith);
            }
        }
        dz = next;
    }
    /* No barrier here: every path above ends in sg_gemm's barrier (or the
     * unfused pass's), so the gradients are complete for Adam, and with
     * WG_ADAM the update is. */
    if (wg == WG_ADAM && ith == 0) net->step = t, net->moments_stale = 1;
}

void sg_net_backward(sg_gan *g, sg_net *net, const float *x, size_t rows, const float *dz_out,
                     int wgrad, float *dx, sg_act dact, const float *dact_y, int ith)
{
    net_backward(g, net, x, 0, rows, dz_out, wgrad ? WG_GRAD : WG_NONE, dx, dact, dact_y, ith);
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

/* Adam on elements [i0, i1) of net's parameters: the table's kernel, or
 * (unfused) PyTorch's separate ops. */
static void adam_range(sg_gan *g, sg_net *net, size_t i0, size_t i1, const sg_adam_coef *h)
{
    if (g->e->fusion)
        g->e->k->adam(net->param, net->m, net->v, net->grad, i0, i1, h);
    else
        adam_unfused(net->param, net->m, net->v, net->grad, g->denom, i0, i1, h);
}

void sg_net_adam(sg_gan *g, sg_net *net, int ith)
{
    long t = net->step + 1;
    sg_adam_coef h = adam_coef(&g->cfg, t);
    size_t i0, i1;
    sg_slice(net->total / 16, ith, g->e->nth, &i0, &i1);
    i0 *= 16, i1 *= 16;
    SG_TRACE_BEGIN(tr);
    adam_range(g, net, i0, i1, &h);
    const char *name = net == &g->G ? "G.adam" : net == &g->D ? "D.adam" : "adam";
    SG_TRACE_END(ith, SG_PH_ADAM, name, tr);
    if (ith == 0) net->packed_ok = 0; /* read after the barrier */
    sg_barrier(g->e);
    if (ith == 0) net->step = t;
}

/* Adam on net in a bf16 run, writing the bf16 copies of the weights it
 * updates. The work is cut into blocks of NR rows of W (one wf16 panel, NR
 * the bf16 path's), and each thread takes the blocks whose middle falls in
 * its share of all the weights. Per block: Adam on the block's rows of the
 * row-major fp32 W, m and v (contiguous; elementwise, so the bits of one
 * pass) and on its biases; then the new W, still in L2, rounded into its
 * wf16 panel and into steps [o0, o1) of every wb16 panel (bf16.h: NR is
 * whole K steps). Cutting the blocks by columns as well, for finer shares,
 * made Adam ~15% slower on Zen 4. No barrier: the next product that reads
 * the copies packs its A first and waits for every thread before it reads
 * B. t is net's step after this update; the caller advances net->step once
 * no thread reads it. */
static void adam_bf16(sg_gan *g, sg_net *net, long t, int ith)
{
    const sg_bf16_engine *be = g->bf;
    const sg_adam_coef h = adam_coef(&g->cfg, t);
    const size_t NR = (size_t)be->k.nr;
    size_t total = 0, base = 0, e0, e1;
    for (int l = 0; l < SG_LAYERS; l++) total += (size_t)net->dims[l] * (size_t)net->dims[l + 1];
    sg_slice(total, ith, g->e->nth, &e0, &e1);
    uint64_t pack_ns = 0;
    SG_TRACE_BEGIN(ta);
    for (int l = 0; l < SG_LAYERS; l++) {
        const size_t in = (size_t)net->dims[l], out = (size_t)net->dims[l + 1];
        const float *W = net->param + net->off_w[l];
        for (size_t o0 = 0; o0 < out; o0 += NR) {
            const size_t o1 = out - o0 < NR ? out : o0 + NR, mid = base + (o0 + o1) * in / 2;
            if (mid < e0 || mid >= e1) continue;
            adam_range(g, net, net->off_w[l] + o0 * in, net->off_w[l] + o1 * in, &h);
            adam_range(g, net, net->off_b[l] + o0, net->off_b[l] + o1, &h);
            const uint64_t tp = sg_trace_on ? sg_trace_now() : 0;
            sg_bf16_pack_b(be, net->wf16[l], (sg_view){W, 1, in}, in, out, o0 / NR, o0 / NR + 1);
            sg_bf16_pack_b_steps(be, net->wb16[l], (sg_view){W, in, 1}, out, in, 0,
                                 sg_bf16_b_panels(be, in), o0, o1);
            if (tp) pack_ns += sg_trace_now() - tp;
        }
        base += out * in;
    }
    /* The packs' time as one PACK_B event nested in the ADAM one. */
    const char *name = net == &g->G ? "G.adam" : "D.adam";
    if (pack_ns) sg_trace_event(ith, SG_PH_PACK_B, name, sg_trace_now() - pack_ns);
    SG_TRACE_END(ith, SG_PH_ADAM, name, ta);
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
    /* Adam inside the weight gradients' products (fp32 fused), or a pass
     * after them over grad (unfused; bf16, which writes the bf16 copies). In
     * bf16 the steps Adam counts advance at the end, when no thread reads
     * them any more. */
    const int adam_in_wgrad = e->fusion && !g->bf;
    const long step_d = g->D.step + 1, step_g = g->G.step + 1;

    /* G on [z1; z2]: G(z1) to xd's rows [B, 2B), G(z2) to the last B. */
    sg_net_forward(g, &g->G, g->z1, 2 * B, g->xd + B * img, img, ith);

    /* D step: [real; G(z1)] as one batch of 2B, BCE against 1 then 0. */
    sg_net_forward(g, &g->D, g->xd, 2 * B, g->logit, 1, ith);
    if (ith == 0) {
        SG_TRACE_BEGIN(t);
        sigmoid_bce(g, g->t_d, 2 * B, (float)B);
        g->d_loss = mean(g->loss, B) + mean(g->loss + B, B);
        g->d_x = mean(g->y, B);
        g->d_g_z = mean(g->y + B, B);
        SG_TRACE_END(ith, SG_PH_LOSS, "D.loss", t);
    }
    sg_barrier(e);
    net_backward(g, &g->D, g->xd, 0, 2 * B, g->dlogit, adam_in_wgrad ? WG_ADAM : WG_GRAD, NULL,
                 SG_ACT_NONE, NULL, ith);
    if (g->bf)
        adam_bf16(g, &g->D, step_d, ith);
    else if (!adam_in_wgrad)
        sg_net_adam(g, &g->D, ith);

    /* G step: G(z2) through the updated D, BCE against 1; D's input gradient
     * times tanh' is G's last dz; G's backward on the z2 half. */
    sg_net_forward(g, &g->D, g->fake, B, g->logit, 1, ith);
    if (ith == 0) {
        SG_TRACE_BEGIN(t);
        sigmoid_bce(g, g->t_g, B, (float)B);
        g->g_loss = mean(g->loss, B);
        SG_TRACE_END(ith, SG_PH_LOSS, "G.loss", t);
    }
    sg_barrier(e);
    net_backward(g, &g->D, g->fake, 0, B, g->dlogit, WG_NONE, g->dxd, SG_ACT_TANH, g->fake, ith);
    net_backward(g, &g->G, g->z2, B, B, g->dxd, adam_in_wgrad ? WG_ADAM : WG_GRAD, NULL,
                 SG_ACT_NONE, NULL, ith);
    if (g->bf)
        adam_bf16(g, &g->G, step_g, ith);
    else if (!adam_in_wgrad)
        sg_net_adam(g, &g->G, ith);
    /* A bf16 step ends with a barrier after G's Adam, which nothing in the
     * step waits for, and then counts both updates. */
    if (g->bf) {
        sg_barrier(e);
        if (ith == 0) g->D.step = step_d, g->G.step = step_g;
    }
}

float *sg_net_tensor(sg_net *net, float *buf, const char *name, int *ndim, int64_t shape[2])
{
    if (net->wf[0] && (buf == net->param || buf == net->m || buf == net->v)) {
        sync_moments(net);
        net->packed_ok = 0;
    }
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
    SG_TRACE_BEGIN(t);
    c->fill(c->ctx, c->g, ith, c->g->e->nth);
    SG_TRACE_END(ith, SG_PH_FILL, "fill", t);
    sg_barrier(c->g->e);
    sg_gan_step(c->g, ith);
}

static void pack_thread(void *p, int ith)
{
    sg_gan *g = p;
    ensure_packed(g, &g->G, ith);
    ensure_packed(g, &g->D, ith);
}

void sg_gan_run_step(sg_gan *g, sg_fill_fn fill, void *ctx)
{
    step_ctx c = {g, fill, ctx};
    /* The unfused Adam works on the row-major moments. */
    if (!g->e->fusion) sg_gan_sync(g);
    /* Stale packed weights (after init or a load) are rebuilt in a region
     * of their own, so that no step packs a weight. */
    if ((g->e->fusion || g->bf) && (!g->G.packed_ok || !g->D.packed_ok))
        sg_parallel(g->e, pack_thread, g);
    sg_trace_step_begin();
    sg_parallel(g->e, step_thread, &c);
    sg_trace_step_end();
}
