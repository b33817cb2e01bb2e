/* state.c: writing and reading the training state (see state.h). */
#define _POSIX_C_SOURCE 200809L
#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "platform.h"
#include "safetensors.h"
#include "util.h"

/* The largest step count a state may hold: 2^50, or LONG_MAX where long
 * has 32 bits (Windows). */
#define STEP_MAX ((long)((1LL << 50) < LONG_MAX ? (1LL << 50) : LONG_MAX))

#define STATE_FORMAT "simdgan-state"
#define STATE_FORMAT_VERSION "1"
#define NT (2 * 3 * 2 * SG_LAYERS) /* nets x (param, m, v) x tensors per net */

static const char *const suffix[3] = {"", ".exp_avg", ".exp_avg_sq"};

typedef struct tensor_ref {
    char name[48];
    float *data;
    int ndim;
    int64_t shape[2];
} tensor_ref;

/* The state's tensors in file order: G then D; per tensor the parameter, then
 * exp_avg, then exp_avg_sq. */
static void list_tensors(const sg_gan *g, tensor_ref t[NT])
{
    const sg_net *nets[2] = {&g->G, &g->D};
    const char *prefix[2] = {"G", "D"};
    int k = 0;
    for (int n = 0; n < 2; n++) {
        sg_net *net = (sg_net *)nets[n];
        float *bufs[3] = {net->param, net->m, net->v};
        for (int i = 0; i < 2 * SG_LAYERS; i++)
            for (int b = 0; b < 3; b++, k++) {
                snprintf(t[k].name, sizeof t[k].name, "%s.%s%s", prefix[n], sg_net_names[i],
                         suffix[b]);
                t[k].data = sg_net_tensor(net, bufs[b], sg_net_names[i], &t[k].ndim, t[k].shape);
            }
    }
}

static size_t count_of(const tensor_ref *t)
{
    return (size_t)(t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0]);
}

/* CRC-32 of the tensors' little-endian bytes, in file order. */
static uint32_t crc_tensors(const float *const *data, const size_t *count, int n)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    unsigned char buf[4096];
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < count[i];) {
            size_t m = 0;
            for (; m < sizeof buf / 4 && j < count[i]; m++, j++) {
                uint32_t u;
                memcpy(&u, &data[i][j], 4);
                buf[4 * m] = (unsigned char)u, buf[4 * m + 1] = (unsigned char)(u >> 8);
                buf[4 * m + 2] = (unsigned char)(u >> 16), buf[4 * m + 3] = (unsigned char)(u >> 24);
            }
            crc = crc32(crc, buf, (uInt)(4 * m));
        }
    }
    return (uint32_t)crc;
}

int sg_gan_finite(const sg_gan *g)
{
    /* The step keeps the weights' moments in their packed layout; bring the
     * row-major copies read here up to date (g itself is never const). */
    sg_gan_sync((sg_gan *)g);
    const sg_net *nets[2] = {&g->G, &g->D};
    for (int n = 0; n < 2; n++) {
        const float *bufs[3] = {nets[n]->param, nets[n]->m, nets[n]->v};
        for (int b = 0; b < 3; b++)
            for (size_t i = 0; i < nets[n]->total; i++)
                if (!isfinite(bufs[b][i])) return 0;
    }
    return 1;
}

int sg_state_write(const char *path, const sg_gan *g, const sg_state *s)
{
    if (!sg_gan_finite(g))
        return sg_error("%s: not written: the weights are not finite (the run diverged)", path);
    tensor_ref t[NT];
    list_tensors(g, t);
    sg_st_tensor st[NT];
    const float *data[NT];
    size_t count[NT];
    for (int i = 0; i < NT; i++) {
        st[i].name = t[i].name;
        st[i].data = data[i] = t[i].data;
        st[i].ndim = t[i].ndim;
        st[i].shape[0] = t[i].shape[0], st[i].shape[1] = t[i].shape[1];
        count[i] = count_of(&t[i]);
    }
    char v[24][40];
    int k = 0;
#define PUT(...) snprintf(v[k++], sizeof v[0], __VA_ARGS__)
    PUT("%d", s->cfg.latent);
    PUT("%d", s->cfg.hidden);
    PUT("%d", s->cfg.image);
    PUT("%d", s->cfg.batch);
    PUT("%.17g", s->cfg.lr);
    PUT("%" PRIu64, s->seed);
    PUT("%08" PRIx32, s->data_crc);
    PUT("%ld", s->data_n);
    PUT("%d", s->threads);
    PUT("%d", s->epochs);
    PUT("%ld", s->epoch);
    PUT("%ld", s->step);
    PUT("%ld", s->steps_per_epoch);
    PUT("%ld", g->G.step);
    PUT("%ld", g->D.step);
    PUT("%ld", s->pair_step);
    PUT("%08" PRIx32, crc_tensors(data, count, NT));
#undef PUT
    const char *meta[] = {
        "format", STATE_FORMAT, "format_version", STATE_FORMAT_VERSION,
        "version", SIMDGAN_VERSION, "latent", v[0], "hidden", v[1], "image", v[2],
        "batch", v[3], "lr", v[4], "seed", v[5], "dataset", s->dataset, "data_crc32", v[6],
        "data_images", v[7], "isa", s->isa, "precision", s->precision, "bf16_path", s->bf16_path,
        "threads", v[8], "epochs", v[9], "epoch", v[10],
        "step", v[11], "steps_per_epoch", v[12], "adam_step_G", v[13], "adam_step_D", v[14],
        "pair_step", v[15], "tensor_crc32", v[16],
        "rng", "philox4x32-10 keyed by seed: init stream 1+layer, shuffle of epoch e stream 16 "
               "counter e, z of global step s stream 17 counter s"};
    return sg_st_write(path, st, NT, meta, (int)(sizeof meta / sizeof *meta / 2));
}

/* Metadata readers: every value must be present and in range. */
static int meta_long(sg_st_file *f, const char *path, const char *key, long lo, long hi,
                     long *out)
{
    const char *s = sg_st_meta(f, key);
    if (!s) return sg_error("%s: damaged training state: no '%s' in its metadata", path, key);
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno || x < lo || x > hi)
        return sg_error("%s: damaged training state: %s '%.40s'; expected an integer from %ld to %ld",
                        path, key, s, lo, hi);
    *out = (long)x;
    return 0;
}

static int meta_str(sg_st_file *f, const char *path, const char *key, char *dst, size_t cap)
{
    const char *s = sg_st_meta(f, key);
    if (!s) return sg_error("%s: damaged training state: no '%s' in its metadata", path, key);
    if (strlen(s) >= cap)
        return sg_error("%s: damaged training state: %s is %zu characters; expected fewer than %zu",
                        path, key, strlen(s), cap);
    strcpy(dst, s);
    return 0;
}

static int meta_hex32(sg_st_file *f, const char *path, const char *key, uint32_t *out)
{
    const char *s = sg_st_meta(f, key);
    if (!s) return sg_error("%s: damaged training state: no '%s' in its metadata", path, key);
    char *end;
    errno = 0;
    unsigned long x = strtoul(s, &end, 16);
    if (strlen(s) != 8 || *end || errno || x > 0xffffffffUL)
        return sg_error("%s: damaged training state: %s '%.40s'; expected 8 hex digits", path, key, s);
    *out = (uint32_t)x;
    return 0;
}

int sg_state_read(const char *path, sg_state *s, sg_st_file **file)
{
    sg_file_info st;
    if (sg_stat(path, 0, &st) != 0) {
        if (errno == ENOENT) return 1;
        return sg_error("%s: cannot read the training state (%s)", path, strerror(errno));
    }
    sg_st_file *f = sg_st_open(path);
    if (!f) return -1;
    memset(s, 0, sizeof *s);
    char fmt[32];
    long latent, hidden, image, batch, data_n, threads, epochs, spe;
    if (meta_str(f, path, "format", fmt, sizeof fmt) != 0) goto bad;
    if (strcmp(fmt, STATE_FORMAT) != 0) {
        sg_error("%s: format '%s'; expected a simdgan training state (%s)", path, fmt, STATE_FORMAT);
        goto bad;
    }
    const char *lr = sg_st_meta(f, "lr"), *seed = sg_st_meta(f, "seed");
    char *end;
    if (meta_long(f, path, "latent", 1, 4096, &latent) || meta_long(f, path, "hidden", 1, 8192, &hidden) ||
        meta_long(f, path, "image", 1, 1 << 20, &image) || meta_long(f, path, "batch", 1, 60000, &batch) ||
        meta_long(f, path, "data_images", 1, 1L << 30, &data_n) ||
        meta_long(f, path, "threads", 1, 1024, &threads) ||
        meta_long(f, path, "epochs", 0, 1000000, &epochs) ||
        meta_long(f, path, "steps_per_epoch", 1, 1L << 30, &spe) ||
        meta_long(f, path, "epoch", 0, 1000000, &s->epoch) ||
        meta_long(f, path, "step", 0, spe - 1, &s->step) ||
        meta_long(f, path, "adam_step_G", 0, STEP_MAX, &s->g_step) ||
        meta_long(f, path, "adam_step_D", 0, STEP_MAX, &s->d_step) ||
        meta_long(f, path, "pair_step", -1, STEP_MAX, &s->pair_step) ||
        meta_str(f, path, "dataset", s->dataset, sizeof s->dataset) ||
        meta_str(f, path, "isa", s->isa, sizeof s->isa) ||
        meta_str(f, path, "version", s->version, sizeof s->version) ||
        meta_hex32(f, path, "data_crc32", &s->data_crc))
        goto bad;
    errno = 0;
    double lrv = lr ? strtod(lr, &end) : 0.0;
    if (!lr || !*lr || *end || errno || !isfinite(lrv) || !(lrv > 0.0)) {
        sg_error("%s: damaged training state: lr '%.40s'; expected a finite positive number", path,
                 lr ? lr : "(missing)");
        goto bad;
    }
    errno = 0;
    unsigned long long sd = seed ? strtoull(seed, &end, 10) : 0;
    if (!seed || !*seed || *end || errno || seed[0] == '-') {
        sg_error("%s: damaged training state: seed '%.40s'; expected an integer below 2^64", path,
                 seed ? seed : "(missing)");
        goto bad;
    }
    long global = s->epoch * spe + s->step;
    if (s->d_step != global || s->g_step != global) {
        sg_error("%s: damaged training state: Adam steps G %ld, D %ld at step %ld; expected equal",
                 path, s->g_step, s->d_step, global);
        goto bad;
    }
    sg_gan_config_default(&s->cfg);
    s->cfg.latent = (int)latent, s->cfg.hidden = (int)hidden, s->cfg.image = (int)image;
    s->cfg.batch = (int)batch, s->cfg.lr = lrv;
    s->seed = (uint64_t)sd;
    s->data_n = data_n, s->threads = (int)threads, s->epochs = (int)epochs;
    s->steps_per_epoch = spe;
    /* States written before --precision existed are fp32 runs. */
    const char *prec = sg_st_meta(f, "precision");
    if (prec && strcmp(prec, "fp32") && strcmp(prec, "bf16")) {
        sg_error("%s: damaged training state: precision '%.40s'; expected fp32 or bf16", path,
                 prec);
        goto bad;
    }
    snprintf(s->precision, sizeof s->precision, "%s", prec ? prec : "fp32");
    const char *bpath = sg_st_meta(f, "bf16_path");
    static const char *const paths[] = {"amx", "avx512bf16", "bfmmla", "ref"};
    int known = 0;
    for (size_t i = 0; bpath && i < sizeof paths / sizeof *paths; i++)
        known |= strcmp(bpath, paths[i]) == 0;
    if (!strcmp(s->precision, "bf16") ? !known : bpath && strcmp(bpath, "none")) {
        sg_error("%s: damaged training state: bf16_path '%.40s' with precision %s; expected %s",
                 path, bpath ? bpath : "(missing)", s->precision,
                 strcmp(s->precision, "bf16") ? "none" : "amx, avx512bf16, bfmmla or ref");
        goto bad;
    }
    snprintf(s->bf16_path, sizeof s->bf16_path, "%s", bpath ? bpath : "none");

    /* The CRC over the tensors in file order, by name (so before shapes are
     * checked: a missing tensor is damage too). */
    const float *data[NT];
    size_t count[NT];
    int k = 0;
    const char *prefix[2] = {"G", "D"};
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < 2 * SG_LAYERS; i++)
            for (int b = 0; b < 3; b++, k++) {
                char name[48];
                int ndim;
                int64_t shape[SG_ST_MAX_DIMS];
                snprintf(name, sizeof name, "%s.%s%s", prefix[n], sg_net_names[i], suffix[b]);
                data[k] = sg_st_get(f, name, &ndim, shape);
                if (!data[k]) {
                    sg_error("%s: damaged training state: no tensor %s", path, name);
                    goto bad;
                }
                count[k] = 1;
                for (int d = 0; d < ndim; d++) count[k] *= (size_t)shape[d];
            }
    if (sg_st_count(f) != NT) {
        sg_error("%s: damaged training state: %d tensors; expected %d", path, sg_st_count(f), NT);
        goto bad;
    }
    uint32_t want;
    if (meta_hex32(f, path, "tensor_crc32", &want) != 0) goto bad;
    uint32_t got = crc_tensors(data, count, NT);
    if (got != want) {
        sg_error("%s: damaged training state: CRC-32 of the tensors is %08" PRIx32
                 ", the file says %08" PRIx32, path, got, want);
        goto bad;
    }
    *file = f;
    return 0;
bad:
    sg_st_close(f);
    return -1;
}

int sg_state_load_tensors(sg_st_file *f, const char *path, sg_gan *g, const sg_state *s)
{
    tensor_ref t[NT];
    list_tensors(g, t);
    int rc = 0;
    for (int i = 0; i < NT && rc == 0; i++) {
        int ndim;
        int64_t shape[SG_ST_MAX_DIMS];
        const float *src = sg_st_get(f, t[i].name, &ndim, shape);
        if (!src || ndim != t[i].ndim || shape[0] != t[i].shape[0] ||
            (ndim == 2 && shape[1] != t[i].shape[1])) {
            rc = sg_error("%s: damaged training state: tensor %s has the wrong shape for latent %d, "
                          "hidden %d", path, t[i].name, g->cfg.latent, g->cfg.hidden);
            break;
        }
        memcpy(t[i].data, src, count_of(&t[i]) * sizeof(float));
    }
    sg_st_close(f);
    if (rc == 0) {
        g->G.step = s->g_step;
        g->D.step = s->d_step;
        if (!sg_gan_finite(g))
            rc = sg_error("%s: damaged training state: a tensor holds a value that is not finite", path);
    }
    return rc;
}
