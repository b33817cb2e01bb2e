/* model.h: the tutorial's two networks and one training iteration.
 *
 *   G: Linear(latent, hidden) ReLU  Linear(hidden, hidden) ReLU  Linear(hidden, 784) Tanh
 *   D: Linear(784, hidden) LeakyReLU(0.2)  Linear(hidden, hidden) LeakyReLU(0.2)
 *      Linear(hidden, 1) Sigmoid
 *
 * One iteration (k = 1), as SEMANTICS.md describes: the D step on the real
 * batch and G(z1) run as one batch of 2B (D has no batch statistics), BCE
 * against 1 and 0, D's gradients only, Adam on D; then the G step with fresh
 * z2 through the updated D, BCE against 1, G's gradients only, Adam on G.
 *
 * G's first forward takes [z1; z2] as one batch of 2B (G changes only at
 * the end of the step, so G(z2) is the same computed early), and keeps the
 * z2 half's activations for its backward.
 *
 * Each network keeps its parameters, gradients and Adam moments in four
 * buffers of the same layout (tensors in state_dict order, each starting on
 * a 64-byte boundary), so that the unfused Adam is one pass over one buffer.
 * A model's networks also keep each weight packed as the forward and the
 * backward-data products read it (wf, wb: sg_pack_b's layout), so that no
 * step packs a weight: on the fused path Adam runs inside the weight
 * gradient's product, tile by tile, and writes param (row-major, the master
 * copy that checkpoints, PNGs and the API read), m, v and both packed
 * copies (m and v of weights in the packed layout, made row-major on
 * demand by sg_net_tensor); the gradient of a weight never reaches memory
 * (grad holds the biases' only, unless keep_grads). */
#ifndef SIMDGAN_MODEL_H
#define SIMDGAN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gemm.h"
#include "gemm_bf16.h"

#define SG_LAYERS 3

typedef struct sg_net {
    int dims[SG_LAYERS + 1];   /* in, hidden, hidden, out                   */
    sg_act act[SG_LAYERS];     /* each Linear's activation                  */
    size_t off_w[SG_LAYERS];   /* offsets of weight [out, in] and bias [out] */
    size_t off_b[SG_LAYERS];
    size_t total;              /* floats in each buffer, padding included   */
    float *param, *grad, *m, *v;
    long step;                 /* Adam's t: updates made so far            */
    /* Packed copies of each weight, or NULL (a net laid out by another
     * module, e.g. the classifier's): wf[l] B = W^T of the forward (panels
     * over out, K = in), wb[l] B = W of the backward-data product (panels
     * over in, K = out); mp[l], vp[l] the weight's Adam moments in wb's
     * layout, where the fused Adam keeps them (a dW tile's W, m and v are
     * then one contiguous block each). packed_ok 0: they do not match
     * param, m, v; the next fused pass repacks them. moments_stale: the
     * fused Adam moved mp, vp on and the weights' rows of m and v are old
     * (sg_net_tensor and the unfused Adam bring them up to date). */
    float *wf[SG_LAYERS], *wb[SG_LAYERS], *mp[SG_LAYERS], *vp[SG_LAYERS];
    const sg_kernels *k; /* the table whose NR they are laid out for */
    /* With bf16 products (sg_gan_use_bf16): each weight rounded to bf16 in
     * the bf16 path's packed layouts, B of the forward (wf16) and of the
     * backward-data product (wb16), which Adam writes block by block as
     * it updates the weights; the fp32 packed copies above are then unused
     * in the step. */
    void *wf16[SG_LAYERS], *wb16[SG_LAYERS];
    int packed_ok, moments_stale;
    size_t rows;               /* batch rows the activation buffers hold    */
    float *a[SG_LAYERS];       /* [rows, dims[l + 1]] layer outputs         */
    float *dz[2];              /* [rows, max dim] ping-pong gradients        */
} sg_net;

typedef struct sg_gan_config {
    int latent, hidden, image, batch;
    double lr, beta1, beta2, eps;
} sg_gan_config;

/* The tutorial's: latent 64, hidden 256, image 784, batch 100, Adam(2e-4,
 * 0.9, 0.999, 1e-8). */
void sg_gan_config_default(sg_gan_config *c);

typedef struct sg_gan {
    sg_gan_config cfg;
    sg_engine *e;
    sg_bf16_engine *bf; /* bf16 products (sg_gan_use_bf16), or NULL: fp32 */
    sg_net G, D;
    float *xd;      /* [3B, image] real rows, G(z1), G(z2): D's input in the D step
                     * is the first 2B rows, in the G step the last B (fake) */
    float *fake;    /* xd + 2B image: G(z2) [B, image], the last G step's images */
    float *dxd;     /* [B, image] gradient at G's last pre-activation, G step      */
    float *z1, *z2; /* [B, latent] each, z2 right after z1: G's input [2B, latent] */
    int keep_grads; /* fused path: also store each weight gradient in grad (tests) */
    float *t_d;     /* [2B] targets of the D step: B ones, B zeros  */
    float *t_g;     /* [B] targets of the G step: ones              */
    float *logit, *y, *loss, *dlogit; /* [2B] D's logits, sigmoid outputs, BCE terms, logit gradients */
    float *denom;   /* [max(G.total, D.total)] Adam scratch of the unfused path */
    /* the last step's figures */
    float d_loss, g_loss, d_x, d_g_z;
} sg_gan;

/* Allocates everything (after this nothing is allocated per step) and
 * initialises both networks like PyTorch's Linear: weight and bias
 * U(-1/sqrt(in), 1/sqrt(in)), from the seed. */
void sg_gan_init(sg_gan *g, const sg_gan_config *c, sg_engine *e, uint64_t seed);
void sg_gan_free(sg_gan *g);

/* Precision bf16 (`--precision bf16`), as torch.autocast("cpu", bfloat16)
 * does the products: every GEMM of the step on bf16 path bk (sg_bf16_select)
 * with both operands rounded to bf16 (round to nearest even), products
 * exact and accumulated in fp32; outputs, activations, gradients, loss, Adam
 * and the master weights stay fp32 (param, m, v row-major: the state and the
 * checkpoints are those of an fp32 run). Adam runs as one pass over each net
 * (the weight gradients go to grad) and then writes each weight's bf16
 * packed copies. Call once, after sg_gan_init and outside parallel regions;
 * -1 with error when the path cannot be used. */
int sg_gan_use_bf16(sg_gan *g, const sg_bf16_kernels *bk);

/* Called by every thread of a parallel region of e->nth threads, after the
 * real batch is in xd[0, B) and z1, z2 are filled. Ends with a barrier. */
void sg_gan_step(sg_gan *g, int ith);

/* Pieces of the step, exposed for the tests. All threads call them.
 * Forward through net for `rows` rows of x [rows, dims[0]]; the last layer's
 * output goes to out [rows, ldo] (activation applied unless the last act is
 * sigmoid, whose logits are left for the fused sigmoid+BCE). */
void sg_net_forward(sg_gan *g, sg_net *net, const float *x, size_t rows, float *out,
                    size_t ldo, int ith);
/* Backward from dz_out [rows, dims[3]] (gradient at the last layer's
 * pre-activation). With wgrad, fills net->grad. With dx, writes the input
 * gradient [rows, dims[0]], multiplied in the epilogue by dact's derivative
 * at dact_y [rows, dims[0]] when dact is not SG_ACT_NONE. */
void sg_net_backward(sg_gan *g, sg_net *net, const float *x, size_t rows,
                     const float *dz_out, int wgrad, float *dx, sg_act dact,
                     const float *dact_y, int ith);
/* Adam on all of net's parameters (t = ++net->step), this thread's slice,
 * on the row-major param, m and v (a model's step makes them current before
 * its region). */
void sg_net_adam(sg_gan *g, sg_net *net, int ith);
/* Says that net's param, m or v was written from outside other than
 * through sg_net_tensor (which says it itself): its packed copies are
 * rebuilt on the next fused pass. Call outside parallel regions.
 * sg_gan_init's nets start so. */
void sg_net_params_changed(sg_net *net);

/* Sets dims, activations, the tensors' offsets and total (each tensor on a
 * 64-byte boundary); allocates nothing, zeroes the rest of n. */
void sg_net_layout(sg_net *n, int d0, int d1, int d2, int d3, sg_act a0, sg_act a1, sg_act a2);

/* A tensor of a network by its state_dict name ("0.weight" ... "4.bias"),
 * in buf (net->param, grad, m or v), row-major: for m and v brought up to
 * date first. The caller may read and write it (call outside parallel
 * regions): what it writes is taken up by the next pass (the packed copies
 * are marked stale). */
float *sg_net_tensor(sg_net *net, float *buf, const char *name, int *ndim, int64_t shape[2]);
/* Brings the row-major m and v of both networks up to date (what
 * sg_net_tensor does per call), for code that reads the buffers whole. */
void sg_gan_sync(sg_gan *g);
extern const char *const sg_net_names[2 * SG_LAYERS];

/* Runs fill(ctx, ith, nth) then sg_gan_step in one parallel region. */
typedef void (*sg_fill_fn)(void *ctx, sg_gan *g, int ith, int nth);
void sg_gan_run_step(sg_gan *g, sg_fill_fn fill, void *ctx);

#endif
