/* train.c: the tutorial's training loop around sg_gan_step: data, shuffles,
 * z, log lines, sample grids and checkpoints. */
#define _POSIX_C_SOURCE 200809L
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpu.h"
#include "hw.h"
#include "mnist.h"
#include "png.h"
#include "rng.h"
#include "safetensors.h"
#include "util.h"

void sg_train_opts_default(sg_train_opts *o)
{
    memset(o, 0, sizeof *o);
    sg_gan_config_default(&o->cfg);
    o->epochs = 200;
    o->seed = 0;
    o->dataset = "mnist";
    o->out = ".";
    o->log_every = 200;
}

int sg_threads_default(int *nth, const char **why)
{
#ifdef _OPENMP
    const char *s = getenv("OMP_NUM_THREADS");
    if (s && *s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (*end || v < 1 || v > 1024)
            return sg_error("OMP_NUM_THREADS=%s: expected one integer from 1 to 1024", s);
        *nth = (int)v;
        *why = "OMP_NUM_THREADS";
        return 0;
    }
    *nth = sg_hw_get()->cores;
    *why = "physical cores";
#else
    *nth = 1;
    *why = "built without OpenMP";
#endif
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* What each step's fill needs: the data, this epoch's order, the step. */
typedef struct fill_ctx {
    const sg_dataset *ds;
    const uint32_t *perm;
    const float *lut;  /* pixel -> ((p / 255) - 0.5) / 0.5, as torchvision computes it */
    size_t step;       /* index of the step within the epoch */
    uint32_t global;   /* steps since the start, for z's counters */
    uint64_t seed;
} fill_ctx;

static void gather(const fill_ctx *f, float *dst, size_t first, size_t i0, size_t i1, size_t img)
{
    for (size_t r = i0; r < i1; r++) {
        const uint8_t *px = f->ds->images + (size_t)f->perm[first + r] * img;
        for (size_t j = 0; j < img; j++) dst[r * img + j] = f->lut[px[j]];
    }
}

static void fill_step(void *ctx, sg_gan *g, int ith, int nth)
{
    const fill_ctx *f = ctx;
    const size_t B = (size_t)g->cfg.batch, img = (size_t)g->cfg.image, zl = B * (size_t)g->cfg.latent;
    size_t i0, i1;
    sg_slice(B, ith, nth, &i0, &i1);
    gather(f, g->xd, f->step * B, i0, i1, img);
    sg_slice(zl, ith, nth, &i0, &i1);
    g->e->k->normal(g->z1, i0, i1, f->seed, SG_STREAM_Z, f->global, 0);
    g->e->k->normal(g->z2, i0, i1, f->seed, SG_STREAM_Z, f->global, 1);
}

static int join(char *dst, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(dst, cap, "%s/%s", dir, name) >= cap)
        return sg_error("%s/%s: path too long", dir, name);
    return 0;
}

/* The output folder must exist or be creatable, and be writable, before any
 * training time is spent. */
static int prepare_out(const char *out, char *samples, size_t cap)
{
    if (sg_mkdir(out) != 0) return sg_error("--out %s: %s", out, sg_last_error());
    char probe[4096];
    sg_outfile o;
    if (join(probe, sizeof probe, out, ".simdgan-probe") != 0) return -1;
    if (sg_out_open(&o, probe) != 0)
        return sg_error("--out %s: folder is not writable (%s)", out, strerror(errno));
    sg_out_abort(&o);
    if (join(samples, cap, out, "samples") != 0) return -1;
    if (sg_mkdir(samples) != 0) return sg_error("--out %s: %s", out, sg_last_error());
    return 0;
}

static int save_net(const char *out, const char *file, sg_net *net, const sg_train_opts *o)
{
    char path[4096], epochs[32], seed[32];
    if (join(path, sizeof path, out, file) != 0) return -1;
    sg_st_tensor t[2 * SG_LAYERS];
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        t[i].name = sg_net_names[i];
        t[i].data = sg_net_tensor(net, net->param, sg_net_names[i], &t[i].ndim, t[i].shape);
    }
    snprintf(epochs, sizeof epochs, "%d", o->epochs);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    const char *meta[] = {"format", "pt", "producer", "simdgan " SIMDGAN_VERSION,
                          "epochs", epochs, "seed", seed, "dataset", o->dataset};
    return sg_st_write(path, t, 2 * SG_LAYERS, meta, 5);
}

int sg_train(const sg_train_opts *o)
{
    const sg_gan_config *c = &o->cfg;
    char dir[4096], samples[4096], path[4200];
    sg_dataset ds = {0};
    if (sg_data_find(dir, sizeof dir, o->data, o->dataset) != 0) return -1;
    if (sg_mnist_load(&ds, dir, 1) != 0) return -1;
    if ((size_t)c->batch > ds.n) {
        size_t n = ds.n;
        sg_dataset_free(&ds);
        return sg_error("--batch-size %d: larger than the %zu training images", c->batch, n);
    }
    /* Everything that can be refused is checked before the output folder is
     * touched: the data, the kernel table, the threads, the environment. */
    char why[256];
    const sg_kernels *k = sg_kernels_select(o->isa, why, sizeof why);
    int nth = o->threads;
    const char *nwhy = "--threads";
    sg_engine e;
    if (!k || (nth == 0 && sg_threads_default(&nth, &nwhy) != 0) ||
        sg_engine_init(&e, k, nth) != 0) {
        sg_dataset_free(&ds);
        return -1;
    }
    if (prepare_out(o->out, samples, sizeof samples) != 0) {
        sg_engine_free(&e);
        sg_dataset_free(&ds);
        return -1;
    }
    e.bind = 1;
    sg_gan g;
    sg_gan_init(&g, c, &e, o->seed);

    const size_t B = (size_t)c->batch, img = (size_t)c->image, steps = ds.n / B;
    uint32_t *perm = sg_xmalloc(ds.n * sizeof(uint32_t));
    float *real = sg_xmalloc(B * img * sizeof(float));
    float lut[256];
    for (int p = 0; p < 256; p++) lut[p] = ((float)p / 255.0f - 0.5f) / 0.5f;
    fill_ctx f = {&ds, perm, lut, 0, 0, o->seed};

    fprintf(stderr, "simdgan: %s, %zu images from %s; %s; %d threads (%s); %s kernels\n",
            o->dataset, ds.n, dir, why, e.nth, nwhy, e.fusion ? "fused" : "unfused");
    int rc = 0;
    double t0 = now();
    for (int epoch = 0; epoch < o->epochs && rc == 0; epoch++) {
        sg_rng_permutation(perm, ds.n, o->seed, SG_STREAM_SHUFFLE, (uint32_t)epoch);
        for (size_t s = 0; s < steps; s++) {
            f.step = s;
            f.global = (uint32_t)((size_t)epoch * steps + s);
            sg_gan_run_step(&g, fill_step, &f);
            if (o->log_every && (s + 1) % (size_t)o->log_every == 0) {
                printf("Epoch [%d/%d], Step [%zu/%zu], d_loss: %.4f, g_loss: %.4f, D(x): %.2f, "
                       "D(G(z)): %.2f\n",
                       epoch, o->epochs, s + 1, steps, g.d_loss, g.g_loss, g.d_x, g.d_g_z);
                fflush(stdout);
            }
        }
        /* The tutorial saves the last real batch once and the last G step's
         * G(z) (now in xd's first B rows) every epoch. */
        if (epoch == 0) {
            gather(&f, real, (steps - 1) * B, 0, B, img);
            rc = join(path, sizeof path, samples, "real_images.png");
            if (rc == 0) rc = sg_save_grid(path, real, (int)B, ds.rows, ds.cols);
        }
        char name[64];
        snprintf(name, sizeof name, "fake_images-%d.png", epoch + 1);
        if (rc == 0) rc = join(path, sizeof path, samples, name);
        if (rc == 0) rc = sg_save_grid(path, g.xd, (int)B, ds.rows, ds.cols);
    }
    double secs = now() - t0;
    if (rc == 0) rc = save_net(o->out, "G.safetensors", &g.G, o);
    if (rc == 0) rc = save_net(o->out, "D.safetensors", &g.D, o);
    if (rc == 0 && o->epochs > 0)
        fprintf(stderr, "simdgan: %d epochs in %.1f s (%.3f s/epoch, %.3f ms/step); wrote %s/ "
                        "and %s/{G,D}.safetensors\n",
                o->epochs, secs, secs / o->epochs, 1e3 * secs / ((double)o->epochs * (double)steps),
                samples, o->out);
    free(perm);
    free(real);
    sg_gan_free(&g);
    sg_engine_free(&e);
    sg_dataset_free(&ds);
    return rc;
}
