/* classifier.c: the evaluation classifier (an MLP 784-H-H-10), its file, its
 * forward pass for the metrics, and its training by simdgan's own engine.
 *
 * The network is an sg_net (src/model.h) with activations ReLU, ReLU, none,
 * so the forward, backward and Adam passes are model.c's, on the GEMM driver
 * and the kernel table (fused or not, as the engine says); only softmax and
 * cross-entropy live here, in portable C (in double, per row). Every pass is
 * split over threads by output tiles or rows, never over a reduction, so a
 * seed gives the same bytes at any thread count on a given ISA.
 *
 * The shipped models (models/, see models/README.md) were made with:
 *   simdgan classifier --dataset mnist --seed 0 --epochs 30 \
 *       --out models/classifier-mnist.safetensors
 *   simdgan classifier --dataset fashion-mnist --seed 0 --epochs 30 --shift 1 \
 *       --out models/classifier-fashion-mnist.safetensors */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "classifier.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "cpu.h"
#include "model.h"
#include "platform.h"
#include "rng.h"
#include "safetensors.h"
#include "train.h"
#include "util.h"

#define IMG 784    /* 28 x 28 inputs                                     */
#define SIDE 28
#define CHUNK 500  /* rows per forward pass in sg_classifier_run          */
/* The widest classifier: the evaluation's statistics take 16 H^2 doubles
 * and dsyevd on H x H (128 MiB and seconds at 1024). */
#define MAX_HIDDEN 1024
#define MAX_SHIFT 13
/* Counter words of the classifier's random numbers. Init uses
 * SG_STREAM_INIT + layer with word 2 = 2 (the GAN's G and D use 0 and 1, so
 * a classifier never starts from D's first layer); the translations use
 * their own stream with word 2 = epoch; shuffles are SG_STREAM_SHUFFLE's. */
#define NET_ID 2u
#define STREAM_SHIFT 32u

struct sg_classifier {
    sg_net net;        /* dims {784, H, H, 10}: param [total]; a[0], a[1] [rows, H];
                          grad, m, v [total] and dz[0], dz[1] [rows, max(H, 10)] when training */
    sg_gan ctx;        /* what model.c's passes read: the engine, Adam's settings, denom */
    float *logit;      /* [net.rows, 10] */
    char name[96];     /* "simdgan-mlp784-H-H-10-<dataset>" */
    char id[128];
    char dataset[32];
    char isa[16];      /* the kernel table it was trained with ("" if unknown) */
    char recipe[160];  /* training settings, for the metadata               */
    uint64_t seed;
    int epochs;        /* -1 when unknown */
    double test_accuracy; /* -1 when not measured */
};

static const char *const names[2 * SG_LAYERS] = {"0.weight", "0.bias", "2.weight",
                                                 "2.bias",   "4.weight", "4.bias"};

/* A classifier of width H whose scratch holds `rows` rows; with training, the
 * gradient, Adam and backward buffers too. Parameters are zero. */
static sg_classifier *classifier_new(int H, size_t rows, int training)
{
    sg_classifier *c = sg_xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    sg_net *n = &c->net;
    sg_net_layout(n, IMG, H, H, SG_CLASSES, SG_ACT_RELU, SG_ACT_RELU, SG_ACT_NONE);
    const size_t off = n->total;
    n->param = sg_xalloc(off * sizeof(float));
    n->rows = rows;
    n->a[0] = sg_xalloc(rows * (size_t)H * sizeof(float));
    n->a[1] = sg_xalloc(rows * (size_t)H * sizeof(float));
    c->logit = sg_xalloc(rows * SG_CLASSES * sizeof(float));
    if (training) {
        size_t widest = H > SG_CLASSES ? (size_t)H : SG_CLASSES;
        n->grad = sg_xalloc(off * sizeof(float));
        n->m = sg_xalloc(off * sizeof(float));
        n->v = sg_xalloc(off * sizeof(float));
        n->dz[0] = sg_xalloc(rows * widest * sizeof(float));
        n->dz[1] = sg_xalloc(rows * widest * sizeof(float));
        c->ctx.denom = sg_xalloc(off * sizeof(float));
    }
    c->epochs = -1;
    c->test_accuracy = -1.0;
    return c;
}

void sg_classifier_free(sg_classifier *c)
{
    if (!c) return;
    sg_net *n = &c->net;
    sg_free(n->param), sg_free(n->grad), sg_free(n->m), sg_free(n->v);
    sg_free(n->a[0]), sg_free(n->a[1]), sg_free(n->dz[0]), sg_free(n->dz[1]);
    sg_free(c->logit), sg_free(c->ctx.denom);
    free(c);
}

int sg_classifier_features_dim(const sg_classifier *c) { return c->net.dims[1]; }

const char *sg_classifier_id(const sg_classifier *c) { return c->id; }

static void set_name(sg_classifier *c, const char *dataset)
{
    snprintf(c->dataset, sizeof c->dataset, "%s", dataset);
    snprintf(c->name, sizeof c->name, "simdgan-mlp784-%d-%d-10-%s", c->net.dims[1],
             c->net.dims[2], dataset);
}

/* ---- the file ------------------------------------------------------------ */

static void shape_str(char *dst, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(dst, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(dst + k, cap - k, "%s%lld", d ? "," : "", (long long)shape[d]);
    if (k < cap) snprintf(dst + k, cap - k, "]");
}

/* CRC-32 (zlib's) of the file's bytes. */
static int file_crc(const char *path, uint32_t *crc)
{
    FILE *f = sg_fopen(path, "rb");
    if (!f) return sg_error("%s: cannot open (%s)", path, strerror(errno));
    unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) c = crc32(c, buf, (uInt)got);
    int bad = ferror(f);
    fclose(f);
    if (bad) return sg_error("%s: read error", path);
    *crc = (uint32_t)c;
    return 0;
}

static const char *const expected_keys =
    "expected a classifier: 0.weight [H,784], 0.bias [H], 2.weight [H,H], 2.bias [H], "
    "4.weight [10,H], 4.bias [10]";

sg_classifier *sg_classifier_load(const char *path)
{
    sg_st_file *f = sg_st_open(path);
    if (!f) return NULL;
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
    char got[96];
    const float *w0 = sg_st_get(f, "0.weight", &ndim, shape);
    if (!w0 || ndim != 2 || shape[1] != IMG || shape[0] < 1 || shape[0] > MAX_HIDDEN) {
        if (w0) shape_str(got, sizeof got, ndim, shape);
        sg_error("%s: %s%s; %s (H up to %d)", path, w0 ? "0.weight has shape " : "no tensor 0.weight",
                 w0 ? got : "", expected_keys, MAX_HIDDEN);
        sg_st_close(f);
        return NULL;
    }
    const int H = (int)shape[0];
    if (sg_st_count(f) != 2 * SG_LAYERS) {
        sg_error("%s: %d tensors; %s", path, sg_st_count(f), expected_keys);
        sg_st_close(f);
        return NULL;
    }
    sg_classifier *c = classifier_new(H, CHUNK, 0);
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        int l = i / 2;
        int64_t want[2] = {c->net.dims[l + 1], c->net.dims[l]};
        int want_nd = i % 2 ? 1 : 2;
        const float *t = sg_st_get(f, names[i], &ndim, shape);
        int ok = t && ndim == want_nd && shape[0] == want[0] && (want_nd == 1 || shape[1] == want[1]);
        size_t count = want_nd == 1 ? (size_t)want[0] : (size_t)(want[0] * want[1]);
        for (size_t j = 0; ok && j < count; j++) ok = isfinite(t[j]);
        if (!ok) {
            if (t) shape_str(got, sizeof got, ndim, shape);
            if (!t)
                sg_error("%s: no tensor %s; %s", path, names[i], expected_keys);
            else if (ndim != want_nd || shape[0] != want[0] || (want_nd == 2 && shape[1] != want[1]))
                sg_error("%s: %s has shape %s; %s (H = %d from 0.weight)", path, names[i], got,
                         expected_keys, H);
            else
                sg_error("%s: %s holds a non-finite value; expected finite weights", path, names[i]);
            sg_classifier_free(c);
            sg_st_close(f);
            return NULL;
        }
        memcpy(c->net.param + (i % 2 ? c->net.off_b[l] : c->net.off_w[l]), t, count * sizeof(float));
    }
    const char *s;
    if ((s = sg_st_meta(f, "name")) && *s) snprintf(c->name, sizeof c->name, "%s", s);
    else {
        const char *base = strrchr(path, '/');
        snprintf(c->name, sizeof c->name, "%s", base ? base + 1 : path);
    }
    if ((s = sg_st_meta(f, "dataset"))) snprintf(c->dataset, sizeof c->dataset, "%s", s);
    if ((s = sg_st_meta(f, "isa"))) snprintf(c->isa, sizeof c->isa, "%s", s);
    if ((s = sg_st_meta(f, "train"))) snprintf(c->recipe, sizeof c->recipe, "%s", s);
    if ((s = sg_st_meta(f, "seed"))) c->seed = strtoull(s, NULL, 10);
    if ((s = sg_st_meta(f, "epochs"))) c->epochs = atoi(s);
    if ((s = sg_st_meta(f, "test_accuracy"))) c->test_accuracy = atof(s);
    sg_st_close(f);
    uint32_t crc;
    if (file_crc(path, &crc) != 0) {
        sg_classifier_free(c);
        return NULL;
    }
    snprintf(c->id, sizeof c->id, "%s (crc32 %08x)", c->name, (unsigned)crc);
    return c;
}

int sg_classifier_save(const sg_classifier *c, const char *path)
{
    sg_st_tensor t[2 * SG_LAYERS];
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        int l = i / 2;
        t[i].name = names[i];
        if (i % 2 == 0) {
            t[i].data = c->net.param + c->net.off_w[l];
            t[i].ndim = 2, t[i].shape[0] = c->net.dims[l + 1], t[i].shape[1] = c->net.dims[l];
        } else {
            t[i].data = c->net.param + c->net.off_b[l];
            t[i].ndim = 1, t[i].shape[0] = c->net.dims[l + 1];
        }
    }
    char seed[32], epochs[32], acc[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    snprintf(epochs, sizeof epochs, "%d", c->epochs);
    snprintf(acc, sizeof acc, "%.4f", c->test_accuracy);
    const char *meta[] = {"format",  "pt",       "producer", "simdgan " SIMDGAN_VERSION,
                          "name",    c->name,    "dataset",  c->dataset,
                          "seed",    seed,       "epochs",   epochs,
                          "isa",     c->isa,     "train",    c->recipe,
                          "test_accuracy", acc};
    int n_meta = (int)(sizeof meta / sizeof *meta / 2) - (c->test_accuracy < 0.0);
    return sg_st_write(path, t, 2 * SG_LAYERS, meta, n_meta);
}

sg_classifier *sg_classifier_shipped(const char *dataset)
{
    if (strcmp(dataset, "mnist") && strcmp(dataset, "fashion-mnist")) {
        sg_error("dataset %s: expected mnist or fashion-mnist", dataset);
        return NULL;
    }
    char file[64], dirs[4][4096], path[4200], tried[4 * 4200 + 64] = "";
    snprintf(file, sizeof file, "classifier-%s.safetensors", dataset);
    int nd = 0;
    const char *env = sg_getenv("SIMDGAN_MODELS");
    if (env && *env) snprintf(dirs[nd++], sizeof dirs[0], "%s", env);
    char exe[4096];
    if (sg_exe_dir(exe, sizeof exe) == 0) {
        snprintf(dirs[nd++], sizeof dirs[0], "%.4000s/models", exe);
        snprintf(dirs[nd++], sizeof dirs[0], "%.4000s/../share/simdgan/models", exe);
    }
    /* Where the library holding this code is installed: a program linked
     * against libsimdgan.so (or Python's ctypes) runs from elsewhere. */
    char lib[4096];
    if (sg_module_dir((const void *)sg_classifier_shipped, lib, sizeof lib) == 0 &&
        (nd < 1 || strncmp(dirs[nd - 1], lib, strlen(lib)) != 0))
        snprintf(dirs[nd++], sizeof dirs[0], "%.4000s/../share/simdgan/models", lib);
    for (int i = 0; i < nd; i++) {
        sg_file_info st;
        snprintf(path, sizeof path, "%s/%s", dirs[i], file);
        if (sg_stat(path, 1, &st) == 0) return sg_classifier_load(path);
        size_t k = strlen(tried);
        snprintf(tried + k, sizeof tried - k, "%s%s", i ? ", " : "", dirs[i]);
    }
    sg_error("%s: not found in %s; expected the shipped models (set SIMDGAN_MODELS to their "
             "folder)", file, nd ? tried : "(no place: SIMDGAN_MODELS unset, the program's folder unknown)");
    return NULL;
}

/* ---- forward ------------------------------------------------------------- */

/* Softmax of one row of logits z [10] into p, in double. */
static void softmax_row(const float *z, double *p)
{
    double m = z[0], s = 0.0;
    for (int j = 1; j < SG_CLASSES; j++) m = z[j] > m ? z[j] : m;
    for (int j = 0; j < SG_CLASSES; j++) s += p[j] = exp((double)z[j] - m);
    for (int j = 0; j < SG_CLASSES; j++) p[j] /= s;
}

typedef struct run_ctx {
    sg_classifier *c;
    const float *x; /* [n, 784] */
    size_t n;
    float *feat;    /* [n, H] or NULL */
    float *prob;    /* [n, 10] or NULL */
} run_ctx;

static void run_body(void *p, int ith)
{
    run_ctx *r = p;
    sg_classifier *c = r->c;
    sg_engine *e = c->ctx.e;
    const size_t H = (size_t)c->net.dims[1];
    for (size_t r0 = 0; r0 < r->n; r0 += CHUNK) {
        size_t rows = r->n - r0 < CHUNK ? r->n - r0 : CHUNK, i0, i1;
        sg_net_forward(&c->ctx, &c->net, r->x + r0 * IMG, rows, c->logit, SG_CLASSES, ith);
        sg_slice(rows, ith, e->nth, &i0, &i1);
        for (size_t i = i0; i < i1; i++) {
            if (r->feat) memcpy(r->feat + (r0 + i) * H, c->net.a[1] + i * H, H * sizeof(float));
            if (r->prob) {
                double q[SG_CLASSES];
                softmax_row(c->logit + i * SG_CLASSES, q);
                for (int j = 0; j < SG_CLASSES; j++) r->prob[(r0 + i) * SG_CLASSES + j] = (float)q[j];
            }
        }
        sg_barrier(e); /* the next chunk overwrites a[] and logit */
    }
}

/* Workspace for every product a forward pass of `rows` rows makes. */
static void reserve_forward(sg_engine *e, const sg_net *n, size_t rows)
{
    for (int l = 0; l < SG_LAYERS; l++) sg_engine_reserve(e, rows, (size_t)n->dims[l + 1], (size_t)n->dims[l]);
}

void sg_classifier_run(sg_classifier *c, sg_engine *e, const float *x, size_t n, float *feat,
                       float *prob)
{
    if (n == 0) return;
    c->ctx.e = e;
    reserve_forward(e, &c->net, n < CHUNK ? n : CHUNK);
    run_ctx r = {c, x, n, feat, prob};
    sg_parallel(e, run_body, &r);
}

static void pixel_lut(float lut[256])
{
    for (int p = 0; p < 256; p++) lut[p] = ((float)p / 255.0f - 0.5f) / 0.5f;
}

double sg_classifier_accuracy(sg_classifier *c, sg_engine *e, const sg_dataset *ds)
{
    if (ds->n == 0) return 0.0;
    float lut[256];
    pixel_lut(lut);
    float *x = sg_xmalloc(CHUNK * IMG * sizeof(float));     /* [CHUNK, 784] */
    float *prob = sg_xmalloc(CHUNK * SG_CLASSES * sizeof(float)); /* [CHUNK, 10] */
    size_t right = 0;
    for (size_t r0 = 0; r0 < ds->n; r0 += CHUNK) {
        size_t rows = ds->n - r0 < CHUNK ? ds->n - r0 : CHUNK;
        for (size_t j = 0; j < rows * IMG; j++) x[j] = lut[ds->images[r0 * IMG + j]];
        sg_classifier_run(c, e, x, rows, NULL, prob);
        for (size_t i = 0; i < rows; i++) {
            const float *q = prob + i * SG_CLASSES;
            int best = 0;
            for (int j = 1; j < SG_CLASSES; j++) best = q[j] > q[best] ? j : best;
            right += best == ds->labels[r0 + i];
        }
    }
    free(x);
    free(prob);
    return (double)right / (double)ds->n;
}

/* ---- training ------------------------------------------------------------ */

void sg_classifier_opts_default(sg_classifier_opts *o)
{
    memset(o, 0, sizeof *o);
    o->dataset = "mnist";
    o->seed = 0;
    o->epochs = 30;
    o->hidden = 256;
    o->batch = 100;
    o->shift = 2;
    o->lr = 1e-3;
    o->decay = 0.3;
}

typedef struct train_ctx {
    sg_classifier *c;
    const sg_dataset *ds;
    const uint32_t *perm;  /* [n] this epoch's order           */
    const int8_t *shift;   /* [n, 2] this epoch's (dx, dy)     */
    const float *lut;      /* [256] pixel -> [-1, 1]           */
    float *x;              /* [B, 784] the batch               */
    float *dlogit;         /* [B, 10] loss gradient at logits  */
    double *loss;          /* [B] per-row cross-entropy        */
    size_t B, steps;
    double loss_sum;       /* over the epoch, summed in order  */
} train_ctx;

/* Rows [i0, i1) of step s's batch: image perm[s B + r] translated by its
 * (dx, dy), the uncovered border filled with the background (pixel 0). */
static void fill_rows(const train_ctx *t, size_t s, size_t i0, size_t i1)
{
    for (size_t r = i0; r < i1; r++) {
        uint32_t img = t->perm[s * t->B + r];
        const uint8_t *px = t->ds->images + (size_t)img * IMG;
        int dx = t->shift[2 * (size_t)img], dy = t->shift[2 * (size_t)img + 1];
        float *dst = t->x + r * IMG;
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++) {
                int sy = y - dy, sx = x - dx;
                int in = sy >= 0 && sy < SIDE && sx >= 0 && sx < SIDE;
                dst[y * SIDE + x] = t->lut[in ? px[sy * SIDE + sx] : 0];
            }
    }
}

/* Cross-entropy of one row's logits z [10] against label, and its gradient
 * dz = (softmax(z) - onehot) / B for the batch mean. */
static double xent_row(const float *z, int label, float *dz, double inv_b)
{
    double p[SG_CLASSES];
    softmax_row(z, p);
    for (int j = 0; j < SG_CLASSES; j++) dz[j] = (float)((p[j] - (j == label)) * inv_b);
    return -log(p[label] > 1e-300 ? p[label] : 1e-300);
}

static void epoch_body(void *p, int ith)
{
    train_ctx *t = p;
    sg_classifier *c = t->c;
    sg_engine *e = c->ctx.e;
    size_t i0, i1;
    sg_slice(t->B, ith, e->nth, &i0, &i1);
    for (size_t s = 0; s < t->steps; s++) {
        fill_rows(t, s, i0, i1);
        sg_barrier(e);
        sg_net_forward(&c->ctx, &c->net, t->x, t->B, c->logit, SG_CLASSES, ith);
        for (size_t i = i0; i < i1; i++) {
            int label = t->ds->labels[t->perm[s * t->B + i]];
            t->loss[i] = xent_row(c->logit + i * SG_CLASSES, label, t->dlogit + i * SG_CLASSES,
                                  1.0 / (double)t->B);
        }
        sg_barrier(e);
        /* loss[] is next written after Adam's barrier. */
        if (ith == 0)
            for (size_t i = 0; i < t->B; i++) t->loss_sum += t->loss[i];
        sg_net_backward(&c->ctx, &c->net, t->x, t->B, t->dlogit, 1, NULL, SG_ACT_NONE, NULL, ith);
        sg_net_adam(&c->ctx, &c->net, ith);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

sg_classifier *sg_classifier_train(const sg_classifier_opts *o, sg_engine *e,
                                   const sg_dataset *train, const sg_dataset *test, FILE *log)
{
    if (o->hidden < 1 || o->hidden > MAX_HIDDEN || o->batch < 1 || o->epochs < 0 ||
        o->shift < 0 || o->shift > MAX_SHIFT || !(o->lr > 0.0) || !isfinite(o->lr) ||
        !(o->decay > 0.0) || !isfinite(o->decay)) {
        sg_error("classifier options: hidden %d, batch %d, epochs %d, shift %d, lr %g, decay %g; "
                 "expected hidden 1..%d, batch >= 1, epochs >= 0, shift 0..%d, positive lr and decay",
                 o->hidden, o->batch, o->epochs, o->shift, o->lr, o->decay, MAX_HIDDEN, MAX_SHIFT);
        return NULL;
    }
    if (train->rows != SIDE || train->cols != SIDE || (size_t)o->batch > train->n) {
        sg_error("training set: %zu images of %dx%d for batches of %d; expected 28x28 images, "
                 "at least one batch", train->n, train->rows, train->cols, o->batch);
        return NULL;
    }
    const size_t B = (size_t)o->batch;
    sg_classifier *c = classifier_new(o->hidden, B > CHUNK ? B : CHUNK, 1);
    set_name(c, o->dataset);
    snprintf(c->id, sizeof c->id, "%s (not saved)", c->name);
    snprintf(c->isa, sizeof c->isa, "%s", e->k->isa);
    snprintf(c->recipe, sizeof c->recipe,
             "batch %d, shift %d, Adam lr %g x %g after each third of the epochs, betas 0.9 "
             "0.999, eps 1e-8", o->batch, o->shift, o->lr, o->decay);
    c->seed = o->seed;
    c->epochs = o->epochs;
    sg_net *n = &c->net;
    for (int l = 0; l < SG_LAYERS; l++) {
        /* PyTorch's Linear: weight and bias U(-1/sqrt(in), 1/sqrt(in)). */
        size_t in = (size_t)n->dims[l], out = (size_t)n->dims[l + 1];
        float bound = (float)(1.0 / sqrt((double)in));
        sg_rng_uniform(n->param + n->off_w[l], 0, out * in, -bound, bound, o->seed,
                       SG_STREAM_INIT + (uint32_t)l, NET_ID, 0);
        sg_rng_uniform(n->param + n->off_b[l], 0, out, -bound, bound, o->seed,
                       SG_STREAM_INIT + (uint32_t)l, NET_ID, 1);
    }
    c->ctx.e = e;
    c->ctx.cfg.beta1 = 0.9, c->ctx.cfg.beta2 = 0.999, c->ctx.cfg.eps = 1e-8;
    for (int l = 0; l < SG_LAYERS; l++) {
        size_t in = (size_t)n->dims[l], out = (size_t)n->dims[l + 1];
        sg_engine_reserve(e, B, out, in); /* forward          */
        sg_engine_reserve(e, B, in, out); /* backward-data    */
        sg_engine_reserve(e, out, in, B); /* backward-weights */
    }

    const size_t N = train->n;
    uint32_t *perm = sg_xmalloc(N * sizeof(uint32_t));
    int8_t *shift = sg_xmalloc(2 * N * sizeof(int8_t));
    float *u = o->shift ? sg_xmalloc(2 * N * sizeof(float)) : NULL;
    float lut[256];
    pixel_lut(lut);
    train_ctx t = {c, train, perm, shift, lut, sg_xalloc(B * IMG * sizeof(float)),
                   sg_xalloc(B * SG_CLASSES * sizeof(float)), sg_xmalloc(B * sizeof(double)),
                   B, N / B, 0.0};
    memset(shift, 0, 2 * N);
    double t0 = now();
    for (int epoch = 0; epoch < o->epochs; epoch++) {
        sg_rng_permutation(perm, N, o->seed, SG_STREAM_SHUFFLE, (uint32_t)epoch);
        if (o->shift) {
            const int w = 2 * o->shift + 1;
            sg_rng_uniform(u, 0, 2 * N, 0.0f, (float)w, o->seed, STREAM_SHIFT, (uint32_t)epoch, 0);
            for (size_t i = 0; i < 2 * N; i++) {
                int k = (int)u[i];
                shift[i] = (int8_t)((k < w ? k : w - 1) - o->shift);
            }
        }
        double lr = o->lr * pow(o->decay, (double)(3 * epoch / o->epochs));
        c->ctx.cfg.lr = lr;
        t.loss_sum = 0.0;
        sg_parallel(e, epoch_body, &t);
        c->ctx.e = e;
        if (test) c->test_accuracy = sg_classifier_accuracy(c, e, test);
        if (log) {
            fprintf(log, "epoch %d/%d  lr %.3g  loss %.4f", epoch + 1, o->epochs, lr,
                    t.loss_sum / (double)(t.steps * B));
            if (test) fprintf(log, "  test accuracy %.4f", c->test_accuracy);
            fprintf(log, "  %.1f s\n", now() - t0);
            fflush(log);
        }
    }
    if (test && o->epochs == 0) c->test_accuracy = sg_classifier_accuracy(c, e, test);
    free(perm);
    free(shift);
    free(u);
    sg_free(t.x);
    sg_free(t.dlogit);
    free(t.loss);
    return c;
}

/* ---- the command --------------------------------------------------------- */

static const char usage[] =
    "usage: simdgan classifier [flags]\n"
    "\n"
    "Trains the evaluation classifier, an MLP Linear(784,H) ReLU Linear(H,H) ReLU\n"
    "Linear(H,10), with softmax cross-entropy and Adam (lr 0.001, x0.3 after each\n"
    "third of the epochs; batch 100), each training image randomly translated by up\n"
    "to --shift pixels every epoch. Prints each epoch's loss and test accuracy and\n"
    "writes the weights as safetensors (keys 0.weight ... 4.bias). The same seed,\n"
    "threads and ISA give the same bytes.\n"
    "\n"
    "flags:\n"
    "  --dataset NAME   mnist or fashion-mnist (mnist)\n"
    "  --data DIR       folder with the four IDX files (default: as simdgan train)\n"
    "  --seed N         seed of init, shuffles and translations (0)\n"
    "  --epochs N       epochs over the training set (30)\n"
    "  --hidden N       hidden width H (256)\n"
    "  --shift N        largest translation in pixels, 0 for none (2)\n"
    "  --out FILE       output file (classifier-<dataset>.safetensors)\n"
    "  --threads N      threads (default: OMP_NUM_THREADS, else physical cores)\n"
    "  --isa NAME       ref, avx2, avx512 or neon (default: best for this CPU)\n"
    "  -h, --help       this text\n";

static int bad_flag(const char *flag, const char *val, const char *expected)
{
    fprintf(stderr, "simdgan: %s%s%s: expected %s\n", flag, val ? " " : "", val ? val : "", expected);
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int sg_cmd_classifier(int argc, char **argv)
{
    sg_classifier_opts o;
    sg_classifier_opts_default(&o);
    const char *data = NULL, *out = NULL, *isa = NULL;
    int threads = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val;
        char flag[64];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "simdgan: unexpected argument '%s'; see simdgan classifier --help\n", arg);
            return 2;
        }
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        static const char *const known[] = {"--dataset", "--data",  "--seed",    "--epochs", "--hidden",
                                            "--shift",   "--out",   "--threads", "--isa"};
        int found = 0;
        if (len < sizeof flag) {
            memcpy(flag, arg, len);
            flag[len] = 0;
            for (size_t k = 0; k < sizeof known / sizeof *known; k++) found |= !strcmp(flag, known[k]);
        }
        if (!found) {
            fprintf(stderr, "simdgan: unknown flag '%.*s'; see simdgan classifier --help\n", (int)len, arg);
            return 2;
        }
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return bad_flag(flag, NULL, "a value");
        long v;
        if (!strcmp(flag, "--dataset")) {
            if (strcmp(val, "mnist") && strcmp(val, "fashion-mnist"))
                return bad_flag(flag, val, "mnist or fashion-mnist");
            o.dataset = val;
        } else if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (!*val || *end || errno || val[0] == '-')
                return bad_flag(flag, val, "a non-negative integer below 2^64");
            o.seed = (uint64_t)s;
        } else if (!strcmp(flag, "--epochs")) {
            if (parse_long(val, 1, 100000, &v)) return bad_flag(flag, val, "an integer from 1 to 100000");
            o.epochs = (int)v;
        } else if (!strcmp(flag, "--hidden")) {
            if (parse_long(val, 1, MAX_HIDDEN, &v)) return bad_flag(flag, val, "an integer from 1 to 1024");
            o.hidden = (int)v;
        } else if (!strcmp(flag, "--shift")) {
            if (parse_long(val, 0, MAX_SHIFT, &v)) return bad_flag(flag, val, "an integer from 0 to 13");
            o.shift = (int)v;
        } else if (!strcmp(flag, "--threads")) {
            if (parse_long(val, 1, 1024, &v)) return bad_flag(flag, val, "an integer from 1 to 1024");
            threads = (int)v;
        } else if (!strcmp(flag, "--data")) {
            data = val;
        } else if (!strcmp(flag, "--out")) {
            if (!*val) return bad_flag(flag, NULL, "a file name");
            out = val;
        } else {
            isa = val;
        }
    }
    char default_out[64];
    if (!out) {
        snprintf(default_out, sizeof default_out, "classifier-%s.safetensors", o.dataset);
        out = default_out;
    }

    /* Everything that can be refused is checked before training starts. */
    char dir[4096], why[256];
    sg_dataset train = {0}, test = {0};
    if (sg_data_find(dir, sizeof dir, data, o.dataset) != 0 || sg_mnist_load(&train, dir, 1) != 0 ||
        sg_dataset_check(&train, o.dataset, dir) != 0 || sg_mnist_load(&test, dir, 0) != 0 ||
        sg_dataset_check(&test, o.dataset, dir) != 0) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        sg_dataset_free(&train);
        sg_dataset_free(&test);
        return 2;
    }
    const sg_kernels *k = sg_kernels_select(isa, why, sizeof why);
    const char *nwhy = "--threads";
    sg_engine e;
    sg_outfile probe;
    int ok = k && (threads || sg_threads_default(&threads, &nwhy) == 0) &&
             sg_engine_init(&e, k, threads) == 0;
    if (ok && sg_out_open(&probe, out) != 0) {
        sg_engine_free(&e);
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        sg_dataset_free(&train);
        sg_dataset_free(&test);
        return 2;
    }
    sg_out_abort(&probe);
    e.bind = SG_BIND_AUTO;
    fprintf(stderr, "simdgan: classifier on %s, %zu + %zu images from %s; %s; %d threads (%s)\n",
            o.dataset, train.n, test.n, dir, why, e.nth, nwhy);
    double t0 = now();
    sg_classifier *c = sg_classifier_train(&o, &e, &train, &test, stdout);
    double secs = now() - t0;
    int rc = c ? sg_classifier_save(c, out) : -1;
    sg_classifier *back = rc == 0 ? sg_classifier_load(out) : NULL;
    if (!back) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        rc = 2;
    } else {
        fprintf(stderr, "simdgan: %d epoch%s in %.1f s; test accuracy %.4f; wrote %s: %s\n",
                o.epochs, o.epochs == 1 ? "" : "s", secs, c->test_accuracy, out, sg_classifier_id(back));
        rc = 0;
    }
    sg_classifier_free(back);
    sg_classifier_free(c);
    sg_engine_free(&e);
    sg_dataset_free(&train);
    sg_dataset_free(&test);
    return rc;
}
