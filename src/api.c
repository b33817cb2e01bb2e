/* api.c: the public C API (include/simdgan.h) over the trainer (train.h),
 * the generator (sample.h) and the kernel dispatch (cpu.h). The command's
 * `train` is built on simdgan_train. Handles are the internal objects
 * behind opaque names; statuses are the trainer's exit statuses. */
#define _POSIX_C_SOURCE 200809L
#include "simdgan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "hw.h"
#include "sample.h"
#include "train.h"
#include "util.h"

const char *simdgan_version(void) { return SIMDGAN_VERSION; }
int simdgan_api_version(void) { return SIMDGAN_API_VERSION; }
const char *simdgan_last_error(void) { return sg_last_error(); }

const char *simdgan_isa(void)
{
    char why[256];
    const sg_kernels *k = sg_kernels_select(NULL, why, sizeof why);
    return k ? k->isa : NULL;
}

void simdgan_config_init(simdgan_config *c)
{
    sg_train_opts o;
    sg_train_opts_default(&o);
    memset(c, 0, sizeof *c);
    c->size = sizeof *c;
    c->epochs = o.epochs;
    c->batch_size = o.cfg.batch;
    c->lr = o.cfg.lr;
    c->latent = o.cfg.latent;
    c->hidden = o.cfg.hidden;
    c->seed = o.seed;
    c->dataset = o.dataset;
    c->out = o.out;
    c->log_every = o.log_every;
    c->checkpoint_every = o.checkpoint_every;
    c->eval_n = o.eval_n;
    c->bind = "auto";
    c->precision = "fp32";
}

/* The trainer's options from a config. A field in fields_set or different
 * from its default counts as given: with resume, it must agree with the
 * state, and the others are taken from the state. */
static int to_opts(const simdgan_config *c, sg_train_opts *o)
{
    if (!c || c->size != sizeof *c)
        return sg_error("simdgan_config: size %zu; expected %zu (initialise it with "
                        "simdgan_config_init)", c ? c->size : 0, sizeof *c);
    simdgan_config d;
    simdgan_config_init(&d);
    sg_train_opts_default(o);
    o->given = c->fields_set;
#define FIELD(f, bit, dst)                                                                   \
    do {                                                                                     \
        dst = c->f;                                                                          \
        if (c->f != d.f) o->given |= (bit);                                                  \
    } while (0)
    FIELD(epochs, SIMDGAN_SET_EPOCHS, o->epochs);
    FIELD(batch_size, SIMDGAN_SET_BATCH_SIZE, o->cfg.batch);
    FIELD(lr, SIMDGAN_SET_LR, o->cfg.lr);
    FIELD(latent, SIMDGAN_SET_LATENT, o->cfg.latent);
    FIELD(hidden, SIMDGAN_SET_HIDDEN, o->cfg.hidden);
    FIELD(seed, SIMDGAN_SET_SEED, o->seed);
#undef FIELD
    if (c->dataset && strcmp(c->dataset, "mnist") != 0) o->given |= SIMDGAN_SET_DATASET;
    if (c->isa) o->given |= SIMDGAN_SET_ISA;
    const char *prec = c->precision ? c->precision : "fp32";
    if (strcmp(prec, "fp32") && strcmp(prec, "bf16"))
        return sg_error("precision %s: expected fp32 or bf16", prec);
    o->bf16 = strcmp(prec, "bf16") == 0;
    if (o->bf16) o->given |= SIMDGAN_SET_PRECISION;
    /* The command's ranges (simdgan train --help). */
#define RANGE(f, lo, hi)                                                                     \
    if (!(c->f >= (lo) && c->f <= (hi)))                                                     \
        return sg_error("simdgan_config: " #f " %g; expected %g to %g", (double)c->f,          \
                        (double)(lo), (double)(hi));
    RANGE(epochs, 0, SG_MAX_EPOCHS);
    RANGE(batch_size, 1, 60000);
    RANGE(latent, 1, 4096);
    RANGE(hidden, 1, 8192);
    RANGE(threads, 0, 1024);
    RANGE(log_every, 0, 1 << 30);
    RANGE(checkpoint_every, -1, 1LL << 40);
    RANGE(max_steps, 0, 1LL << 40);
    RANGE(eval_every, 0, 1000000);
    RANGE(eval_n, 4, 1000000);
#undef RANGE
    if (!(c->lr > 0.0) || !isfinite(c->lr))
        return sg_error("simdgan_config: lr %g; expected a finite positive number", c->lr);
    o->threads = c->threads;
    o->data = c->data;
    o->dataset = c->dataset ? c->dataset : "mnist";
    if (strcmp(o->dataset, "mnist") && strcmp(o->dataset, "fashion-mnist"))
        return sg_error("dataset %s: expected mnist or fashion-mnist", o->dataset);
    o->out = c->out && *c->out ? c->out : ".";
    o->log_every = c->log_every;
    o->isa = c->isa;
    o->resume = c->resume;
    o->checkpoint_every = c->checkpoint_every;
    o->max_steps = c->max_steps;
    o->eval_every = c->eval_every;
    o->eval_n = c->eval_n;
    o->fixed_z = c->fixed_z;
    o->quiet = c->quiet;
    o->signals = c->handle_signals;
    static const char *const pol[] = {"never", "always", "auto"};
    const char *b = c->bind ? c->bind : "auto";
    int p = 0;
    while (p < 3 && strcmp(b, pol[p])) p++;
    if (p == 3) return sg_error("bind %s: expected never, always or auto", b);
    o->bind = p; /* the order of sg_bind_policy */
    return 0;
}

int simdgan_train(const simdgan_config *c)
{
    sg_train_opts o;
    if (to_opts(c, &o) != 0) return SIMDGAN_BAD_INPUT;
    return sg_train(&o);
}

int simdgan_trainer_open(const simdgan_config *c, simdgan_trainer **t)
{
    sg_train_opts o;
    if (!t) return sg_error("simdgan_trainer_open: no handle to fill"), SIMDGAN_BAD_INPUT;
    *t = NULL;
    if (to_opts(c, &o) != 0) return SIMDGAN_BAD_INPUT;
    return sg_trainer_open(&o, (sg_trainer **)t);
}

/* The caller's callback behind the trainer's. */
typedef struct log_adapter {
    simdgan_log_fn fn;
    void *user;
} log_adapter;

static int on_line(void *p, const sg_log_line *l)
{
    const log_adapter *a = p;
    simdgan_log line = {l->epoch, l->epochs, l->step, l->steps, l->d_loss, l->g_loss, l->d_x,
                        l->d_g_z, l->ms_per_step};
    return a->fn(a->user, &line);
}

int simdgan_trainer_steps(simdgan_trainer *t, long steps, simdgan_log_fn on_log,
                          void *user)
{
    sg_trainer *tr = (sg_trainer *)t;
    if (!tr || steps < 0) return sg_error("simdgan_trainer_steps: no trainer, or steps < 0"), SIMDGAN_BAD_INPUT;
    const long at = sg_trainer_step(tr);
    if (steps > SG_MAX_EPOCHS * sg_trainer_steps_per_epoch(tr) - at)
        return sg_error("simdgan_trainer_steps: %ld more steps: more than %ld epochs in all", steps,
                        SG_MAX_EPOCHS), SIMDGAN_BAD_INPUT;
    log_adapter a = {on_log, user};
    int rc = sg_trainer_run(tr, at + steps, on_log ? on_line : NULL, &a);
    sg_hw_unbind(); /* the caller's thread ran as thread 0 of the steps */
    return rc;
}

int simdgan_trainer_fit(simdgan_trainer *t, int epochs, simdgan_log_fn on_log, void *user)
{
    sg_trainer *tr = (sg_trainer *)t;
    if (!tr || epochs < 0) return sg_error("simdgan_trainer_fit: no trainer, or epochs < 0"), SIMDGAN_BAD_INPUT;
    /* To the end of the epoch `epochs` after the current one's start. */
    const long spe = sg_trainer_steps_per_epoch(tr), at = sg_trainer_step(tr);
    if (epochs > SG_MAX_EPOCHS - at / spe)
        return sg_error("simdgan_trainer_fit: %d more epochs: more than %ld in all", epochs,
                        SG_MAX_EPOCHS), SIMDGAN_BAD_INPUT;
    log_adapter a = {on_log, user};
    int rc = sg_trainer_run(tr, (at / spe + epochs) * spe, on_log ? on_line : NULL, &a);
    sg_hw_unbind();
    return rc;
}

int simdgan_trainer_save(simdgan_trainer *t, const char *dir)
{
    if (!t || !dir) return sg_error("simdgan_trainer_save: no trainer or folder"), SIMDGAN_BAD_INPUT;
    return sg_trainer_save((sg_trainer *)t, dir);
}

int simdgan_trainer_sample(simdgan_trainer *t, size_t n, uint64_t seed, float *images)
{
    if (!t || !images || n == 0)
        return sg_error("simdgan_trainer_sample: no trainer, no buffer or n = 0"), SIMDGAN_BAD_INPUT;
    sg_gan *g = sg_trainer_gan((sg_trainer *)t);
    float *z = sg_xmalloc(n * (size_t)g->cfg.latent * sizeof(float));
    sg_sample_z(g->e->k, z, n, g->cfg.latent, seed);
    sg_net_generate(g, &g->G, z, n, images);
    sg_hw_unbind();
    free(z);
    return SIMDGAN_OK;
}

long simdgan_trainer_step(const simdgan_trainer *t)
{
    return t ? sg_trainer_step((const sg_trainer *)t) : -1;
}

long simdgan_trainer_steps_per_epoch(const simdgan_trainer *t)
{
    return t ? sg_trainer_steps_per_epoch((const sg_trainer *)t) : -1;
}

void simdgan_trainer_close(simdgan_trainer *t) { sg_trainer_close((sg_trainer *)t); }

struct simdgan_generator {
    sg_engine e;
    sg_generator *g;
};

int simdgan_generator_load(const char *path, simdgan_generator **out)
{
    char why[256];
    const char *nwhy;
    int nth;
    if (!out || !path) return sg_error("simdgan_generator_load: no path or handle"), SIMDGAN_BAD_INPUT;
    *out = NULL;
    const sg_kernels *k = sg_kernels_select(NULL, why, sizeof why);
    simdgan_generator *g = calloc(1, sizeof *g);
    if (!g) return sg_error("out of memory"), SIMDGAN_BAD_INPUT;
    if (!k || sg_threads_default(&nth, &nwhy) != 0 || sg_engine_init(&g->e, k, nth) != 0) {
        free(g);
        return SIMDGAN_BAD_INPUT;
    }
    if (!(g->g = sg_generator_load(path, &g->e, SG_GEN_ROWS))) {
        sg_engine_free(&g->e);
        free(g);
        return SIMDGAN_BAD_INPUT;
    }
    *out = g;
    return SIMDGAN_OK;
}

int simdgan_generator_latent(const simdgan_generator *g) { return g ? sg_generator_latent(g->g) : -1; }

int simdgan_generator_sample(simdgan_generator *g, size_t n, uint64_t seed, float *images)
{
    if (!g || !images || n == 0)
        return sg_error("simdgan_generator_sample: no generator, no buffer or n = 0"), SIMDGAN_BAD_INPUT;
    const int latent = sg_generator_latent(g->g);
    float *z = sg_xmalloc(n * (size_t)latent * sizeof(float));
    sg_sample_z(g->e.k, z, n, latent, seed);
    sg_generator_run(g->g, z, n, images);
    sg_hw_unbind();
    free(z);
    return SIMDGAN_OK;
}

void simdgan_generator_close(simdgan_generator *g)
{
    if (!g) return;
    sg_generator_free(g->g);
    sg_engine_free(&g->e);
    free(g);
}
