/* sample.c: z for sampling and evaluation, G files, and G's forward pass
 * over many rows (sample.h). */
#define _POSIX_C_SOURCE 200809L
#include "sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "safetensors.h"
#include "util.h"

#define SG_IMAGE 784

void sg_sample_z(const sg_kernels *k, float *z, size_t n, int latent, uint64_t seed)
{
    k->normal(z, 0, n * (size_t)latent, seed, SG_STREAM_Z, 0, SG_Z_SAMPLE);
}

typedef struct generate_ctx {
    sg_gan *g;
    sg_net *G;
    const float *z;
    size_t n;
    float *x;
} generate_ctx;

static void generate_thread(void *ctx, int ith)
{
    const generate_ctx *c = ctx;
    size_t L = (size_t)c->G->dims[0], out = (size_t)c->G->dims[SG_LAYERS];
    for (size_t r0 = 0; r0 < c->n; r0 += c->G->rows) {
        size_t m = c->n - r0 < c->G->rows ? c->n - r0 : c->G->rows;
        sg_net_forward(c->g, c->G, c->z + r0 * L, m, c->x + r0 * out, out, ith);
    }
}

void sg_net_generate(sg_gan *g, sg_net *G, const float *z, size_t n, float *x)
{
    /* fp32 products in a bf16 run too, so that a grid or an evaluation made
     * during training is what `simdgan sample` and `simdgan eval` make from
     * the G it writes: off the bf16 layer, G's fp32 packed copies are made
     * from its weights here, and its bf16 copies again before the next step. */
    sg_bf16_engine *bf = g->bf;
    if (bf) g->bf = NULL, sg_net_params_changed(G);
    generate_ctx c = {g, G, z, n, x};
    sg_parallel(g->e, generate_thread, &c);
    if (bf) g->bf = bf, sg_net_params_changed(G);
}

struct sg_generator {
    sg_gan gan;          /* G holds the file's weights; D is unused */
    char dataset[64];
    int have_dataset;
};

#define G_FORMAT "expected a G: 0.weight [H, L], 0.bias [H], 2.weight [H, H], 2.bias [H], " \
                 "4.weight [784, H], 4.bias [784]"

/* "[a, b]" or "[a]" for error messages. */
static const char *shape_str(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && at < cap; d++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
    return buf;
}

/* Closes f and returns NULL, for the refusals below (their error is set). */
static sg_generator *refuse(sg_st_file *f)
{
    sg_st_close(f);
    return NULL;
}

sg_generator *sg_generator_load(const char *path, sg_engine *e, size_t rows)
{
    sg_st_file *f = sg_st_open(path);
    if (!f) return NULL;
    const float *t[2 * SG_LAYERS];
    int ndim[2 * SG_LAYERS];
    int64_t shape[2 * SG_LAYERS][SG_ST_MAX_DIMS];
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        t[i] = sg_st_get(f, sg_net_names[i], &ndim[i], shape[i]);
        if (!t[i]) {
            sg_error("%s: no tensor %s; " G_FORMAT, path, sg_net_names[i]);
            return refuse(f);
        }
    }
    if (sg_st_count(f) != 2 * SG_LAYERS) {
        sg_error("%s: %d tensors; " G_FORMAT, path, sg_st_count(f));
        return refuse(f);
    }
    /* L and H from the first layer; every other shape must follow. */
    int64_t H = ndim[0] == 2 ? shape[0][0] : -1, L = ndim[0] == 2 ? shape[0][1] : -1;
    const int64_t want[2 * SG_LAYERS][2] = {{H, L}, {H, 0}, {H, H}, {H, 0}, {SG_IMAGE, H},
                                           {SG_IMAGE, 0}};
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        int wd = i % 2 == 0 ? 2 : 1;
        if (ndim[i] != wd || shape[i][0] != want[i][0] || (wd == 2 && shape[i][1] != want[i][1]) ||
            H < 1 || L < 1) {
            char got[64];
            shape_str(got, sizeof got, ndim[i], shape[i]);
            sg_error("%s: tensor %s is %s; " G_FORMAT, path, sg_net_names[i], got);
            return refuse(f);
        }
    }
    if (L > 4096 || H > 8192) {
        sg_error("%s: latent %lld, hidden %lld; expected a G with latent at most 4096 and "
                 "hidden at most 8192", path, (long long)L, (long long)H);
        return refuse(f);
    }
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        size_t count = (size_t)shape[i][0] * (ndim[i] == 2 ? (size_t)shape[i][1] : 1);
        for (size_t j = 0; j < count; j++)
            if (!isfinite(t[i][j])) {
                sg_error("%s: tensor %s has a non-finite value at element %zu; expected "
                         "finite weights", path, sg_net_names[i], j);
                return refuse(f);
            }
    }

    sg_generator *g = sg_xmalloc(sizeof *g);
    sg_gan_config cfg;
    sg_gan_config_default(&cfg);
    cfg.latent = (int)L, cfg.hidden = (int)H, cfg.image = SG_IMAGE;
    cfg.batch = (int)(rows ? rows : 1);
    sg_gan_init(&g->gan, &cfg, e, 0);
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        int nd;
        int64_t sh[2];
        float *dst = sg_net_tensor(&g->gan.G, g->gan.G.param, sg_net_names[i], &nd, sh);
        memcpy(dst, t[i], (size_t)sh[0] * (nd == 2 ? (size_t)sh[1] : 1) * sizeof(float));
    }
    const char *ds = sg_st_meta(f, "dataset");
    g->have_dataset = ds != NULL;
    if (ds) snprintf(g->dataset, sizeof g->dataset, "%s", ds);   /* a longer name is no dataset's */
    sg_st_close(f);
    return g;
}

int sg_generator_latent(const sg_generator *g) { return g->gan.cfg.latent; }
int sg_generator_hidden(const sg_generator *g) { return g->gan.cfg.hidden; }
const char *sg_generator_dataset(const sg_generator *g)
{
    return g->have_dataset ? g->dataset : NULL;
}

void sg_generator_run(sg_generator *g, const float *z, size_t n, float *x)
{
    sg_net_generate(&g->gan, &g->gan.G, z, n, x);
}

void sg_generator_free(sg_generator *g)
{
    if (!g) return;
    sg_gan_free(&g->gan);
    free(g);
}
