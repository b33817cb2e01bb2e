/* train.c: the tutorial's training loop around sg_gan_step, made safe to
 * trust with hours of work: data, shuffles, z, log lines, sample grids, the
 * metrics log, the training state and checkpoints, the lock on the output
 * folder, clean stops on signals and divergence.
 *
 * Steps are numbered globally (epoch * steps_per_epoch + step); the shuffle
 * of an epoch and the z of a step are drawn from counters, so a run that
 * continues from a state written after global step s computes the same bits
 * as one that never stopped. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autothreads.h"
#include "cpu.h"
#include "eval.h"
#include "hw.h"
#include "mnist.h"
#include "platform.h"
#include "png.h"
#include "rng.h"
#include "safetensors.h"
#include "sample.h"
#include "state.h"
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
    o->checkpoint_every = -1;
    o->eval_n = 10000;
    o->progress = -1;
    o->bind = SG_BIND_AUTO;
}

int sg_threads_default(int *nth, const char **why)
{
#ifdef _OPENMP
    const char *s = sg_getenv("OMP_NUM_THREADS");
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

/* ---- signals ------------------------------------------------------------ */

/* The first SIGINT or SIGTERM asks for a clean stop after the current step;
 * a SIGINT after that exits at once, removing the temporaries in flight, so
 * the folder keeps its last complete state. */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (stop_signal && sig == SIGINT) {
        sg_out_unlink_pending();
        _Exit(SG_EXIT_SIGINT);
    }
    stop_signal = sig;
}

/* reset: forget a stop asked for before (a new run); else keep it (the
 * handlers are installed again around a part of the same run). A closed
 * stdout (simdgan train | head -1) does not stop the run: the log's write
 * fails with EPIPE instead, and training goes on (platform.h). On Windows,
 * Ctrl+C and a closed console arrive as SIGINT and SIGTERM. */
static void signals_install(int reset)
{
    if (reset) stop_signal = 0;
    sg_stop_push(on_signal);
}

static void signals_restore(void) { sg_stop_pop(); }

/* ---- the output folder -------------------------------------------------- */

static int is_dir(const char *path)
{
    sg_file_info st;
    return sg_stat(path, 1, &st) == 0 && st.kind == SG_KIND_DIR;
}

/* One run per folder: an exclusive lock on OUT/.simdgan.lock (flock;
 * LockFileEx), held until the process ends; the file holds the holder's PID
 * for the message. */
static int lock_out(const char *out, sg_lock *lock)
{
    char path[4096];
    long pid = 0;
    if (sg_join(path, sizeof path, out, ".simdgan.lock") != 0) return -1;
    switch (sg_lock_file(path, lock, &pid)) {
    case SG_LOCK_OK: return 0;
    case SG_LOCK_BUSY:
        return sg_error("--out %s: another simdgan run (pid %ld) is writing to this folder; "
                        "expected one run per folder (wait for it, or choose another --out)",
                        out, pid);
    case SG_LOCK_EOPEN:
        return sg_error("--out %s: cannot create its lock file (%s)", out, strerror(errno));
    case SG_LOCK_ELOCK:
        return sg_error("--out %s: cannot lock the folder (%s)", out, strerror(errno));
    default: return sg_error("--out %s: cannot write its lock file (%s)", out, strerror(errno));
    }
}

/* 1 when name is one of the files a run writes into OUT or OUT/samples. */
static int run_output(const char *name, size_t len)
{
    static const char *const fixed[] = {"G.safetensors", "D.safetensors", SG_STATE_FILE,
                                        "metrics.csv", "real_images.png", ".simdgan-probe"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (len == strlen(fixed[i]) && !strncmp(name, fixed[i], len)) return 1;
    static const char *const numbered[] = {"fake_images-", "fixed_z-"};
    for (int i = 0; i < 2; i++) {
        size_t p = strlen(numbered[i]), d = p;
        if (len <= p + 4 || strncmp(name, numbered[i], p) || strncmp(name + len - 4, ".png", 4))
            continue;
        while (d < len - 4 && name[d] >= '0' && name[d] <= '9') d++;
        if (d == len - 4 && d > p) return 1;
    }
    return 0;
}

/* Removes the temporaries a killed run left: "<output>.tmp.<pid>" where
 * output is a file a run writes and pid a process that no longer exists.
 * Nothing else. */
static void clean_stale(const char *dir)
{
    sg_dir *d = sg_dir_open(dir);
    if (!d) return;
    const char *name;
    while ((name = sg_dir_next(d))) {
        const char *mark = strstr(name, SG_TMP_MARK);
        if (!mark || !run_output(name, (size_t)(mark - name))) continue;
        const char *digits = mark + strlen(SG_TMP_MARK);
        if (!*digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 9)
            continue;
        long pid = strtol(digits, NULL, 10);
        if (pid <= 0 || sg_pid_alive(pid)) continue;
        char path[4400];
        sg_file_info st;
        if (sg_join(path, sizeof path, dir, name) == 0 && sg_stat(path, 0, &st) == 0 &&
            st.kind == SG_KIND_FILE)
            sg_remove(path);
    }
    sg_dir_close(d);
}

/* A file simdgan will write must be a file or absent. */
static int check_target(const char *dir, const char *name)
{
    char path[4400];
    sg_file_info st;
    if (sg_join(path, sizeof path, dir, name) != 0) return -1;
    if (sg_stat(path, 0, &st) == 0 && st.kind != SG_KIND_FILE)
        return sg_error("%s: is %s; expected a file or nothing there", path,
                        st.kind == SG_KIND_DIR ? "a folder" : "not a regular file");
    return 0;
}

static int probe_write(const char *dir, const char *what)
{
    char probe[4400];
    sg_outfile o;
    if (sg_join(probe, sizeof probe, dir, ".simdgan-probe") != 0) return -1;
    if (sg_out_open(&o, probe) != 0)
        return sg_error("%s %s: folder is not writable (%s)", what, dir, strerror(errno));
    sg_out_abort(&o);
    return 0;
}

/* Before any training time is spent: OUT and OUT/samples exist and are
 * writable, locked for this run, cleared of stale temporaries, no folder
 * stands where an output goes, and the disk has room for a state and the
 * checkpoints beside the old ones. */
static int prepare_out(const char *out, char *samples, size_t cap, sg_lock *lock, size_t bytes)
{
    if (sg_mkdir(out) != 0) return sg_error("--out %s", sg_last_error());
    if (*lock == SG_NO_LOCK && lock_out(out, lock) != 0) return -1;
    if (probe_write(out, "--out") != 0) return -1;
    if (sg_join(samples, cap, out, "samples") != 0) return -1;
    if (sg_mkdir(samples) != 0) return sg_error("--out %s", sg_last_error());
    if (probe_write(samples, "--out") != 0) return -1;
    clean_stale(out);
    clean_stale(samples);
    static const char *const names[] = {"G.safetensors", "D.safetensors", SG_STATE_FILE,
                                        "metrics.csv"};
    for (int i = 0; i < 4; i++)
        if (check_target(out, names[i]) != 0) return -1;
    uint64_t avail;
    if (sg_free_bytes(out, &avail) == 0) {
        if (avail < bytes)
            return sg_error("--out %s: %.1f MiB free; a checkpoint and its samples need %.1f MiB",
                            out, (double)avail / 1048576.0, (double)bytes / 1048576.0);
    }
    return 0;
}

/* ---- checkpoints -------------------------------------------------------- */

static int save_net(sg_outfile *f, const char *out, const char *file, sg_net *net,
                    const sg_train_opts *o, long step)
{
    char path[4096], epochs[32], seed[32], st[32];
    if (sg_join(path, sizeof path, out, file) != 0) return -1;
    sg_st_tensor t[2 * SG_LAYERS];
    for (int i = 0; i < 2 * SG_LAYERS; i++) {
        t[i].name = sg_net_names[i];
        t[i].data = sg_net_tensor(net, net->param, sg_net_names[i], &t[i].ndim, t[i].shape);
    }
    snprintf(epochs, sizeof epochs, "%d", o->epochs);
    snprintf(seed, sizeof seed, "%" PRIu64, o->seed);
    snprintf(st, sizeof st, "%ld", step);
    const char *meta[] = {"format", "pt", "producer", "simdgan " SIMDGAN_VERSION,
                          "epochs", epochs, "seed", seed, "dataset", o->dataset, "step", st};
    return sg_st_write_tmp(f, path, t, 2 * SG_LAYERS, meta, 6);
}

/* G.safetensors and D.safetensors as a pair: both written and synced, then
 * both renamed; the state names the pair's step, and each file carries it. */
static int save_pair(const char *out, sg_gan *g, const sg_train_opts *o, long step)
{
    sg_outfile fg, fd;
    if (save_net(&fg, out, "G.safetensors", &g->G, o, step) != 0) return -1;
    if (save_net(&fd, out, "D.safetensors", &g->D, o, step) != 0) {
        sg_out_abort(&fg);
        return -1;
    }
    if (sg_out_rename(&fg) != 0) {
        sg_out_abort(&fd);
        return -1;
    }
    return sg_out_rename(&fd);
}

/* The step a checkpoint file says it holds, or -1. */
static long pair_file_step(const char *out, const char *file)
{
    char path[4096];
    if (sg_join(path, sizeof path, out, file) != 0) return -1;
    sg_st_file *f = sg_st_open(path);
    if (!f) return -1;
    const char *s = sg_st_meta(f, "step");
    long step = s ? strtol(s, NULL, 10) : -1;
    sg_st_close(f);
    return step;
}

/* ---- the metrics log ---------------------------------------------------- */

static const char metrics_header[] =
    "epoch,step,global_step,d_loss,g_loss,d_x,d_g_z,ms_per_step,fcd,fcd_floor,classifier_score,"
    "classes_covered,kl_uniform,precision,recall\n";

/* Opens OUT/metrics.csv for appending. A fresh run starts it anew; a resumed
 * one keeps the rows up to the state's global step (a killed run may have
 * logged steps past its last state, which the resumed run logs again). */
static FILE *metrics_open(const char *out, long keep_upto, int fresh)
{
    char path[4096];
    if (sg_join(path, sizeof path, out, "metrics.csv") != 0) return NULL;
    if (!fresh) {
        FILE *in = sg_fopen(path, "rb");
        if (in) {
            sg_outfile o;
            if (sg_out_open(&o, path) != 0) {
                fclose(in);
                return NULL;
            }
            char line[1024];
            int first = 1;
            while (fgets(line, sizeof line, in)) {
                long e, s, gs;
                if (first) {
                    first = 0;
                    fputs(metrics_header, o.f);
                    if (!strcmp(line, metrics_header)) continue;
                }
                if (sscanf(line, "%ld,%ld,%ld,", &e, &s, &gs) == 3 && gs <= keep_upto)
                    fputs(line, o.f);
            }
            fclose(in);
            if (sg_out_commit(&o) != 0) return NULL;
            FILE *f = sg_fopen(path, "ab");
            if (!f) sg_error("%s: cannot append (%s)", path, strerror(errno));
            return f;
        }
    }
    sg_outfile o;
    if (sg_out_open(&o, path) != 0) return NULL;
    fputs(metrics_header, o.f);
    if (sg_out_commit(&o) != 0) return NULL;
    FILE *f = sg_fopen(path, "ab");
    if (!f) sg_error("%s: cannot append (%s)", path, strerror(errno));
    return f;
}

/* ---- progress ----------------------------------------------------------- */

/* One line on stderr, redrawn in place at most 4 times a second: epoch,
 * step, steps/s, ETA. Cleared before anything else is printed. */
typedef struct progress {
    int on, shown;
    double t_start, t_last;
    long first, total, steps;
} progress;

static void progress_clear(progress *p)
{
    if (p->shown) fputs("\r\033[K", stderr);
    p->shown = 0;
}

static void progress_draw(progress *p, long gs, int epochs, double t)
{
    if (!p->on || (t - p->t_last < 0.25 && gs < p->total)) return;
    p->t_last = t;
    double rate = (double)(gs - p->first) / (t - p->t_start);
    double eta = rate > 0 ? (double)(p->total - gs) / rate : 0;
    long e = (long)eta;
    fprintf(stderr, "\r\033[Kepoch %ld/%d  step %ld/%ld  %.0f steps/s  ETA %ldh%02ldm%02lds",
            gs / p->steps + (gs < p->total), epochs, gs % p->steps, p->steps, rate, e / 3600,
            e / 60 % 60, e % 60);
    p->shown = 1;
}

/* ---- the loop ----------------------------------------------------------- */

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

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* --resume: the state's flags become the run's; a flag given on the command
 * line must agree. */
static int merge_state(sg_train_opts *o, const sg_state *s, const char *path)
{
    char a[64], b[64];
#define SAME(bit, flag, fmt, mine, theirs)                                                  \
    do {                                                                                    \
        snprintf(a, sizeof a, fmt, mine), snprintf(b, sizeof b, fmt, theirs);               \
        if ((o->given & (bit)) && strcmp(a, b) != 0)                                        \
            return sg_error("%s %s differs from the training state's %s (%s); expected the " \
                            "same value to continue, or another --out for a new run",       \
                            flag, a, b, path);                                              \
    } while (0)
    SAME(SIMDGAN_SET_LATENT, "--latent", "%d", o->cfg.latent, s->cfg.latent);
    SAME(SIMDGAN_SET_HIDDEN, "--hidden", "%d", o->cfg.hidden, s->cfg.hidden);
    SAME(SIMDGAN_SET_BATCH_SIZE, "--batch-size", "%d", o->cfg.batch, s->cfg.batch);
    SAME(SIMDGAN_SET_LR, "--lr", "%.9g", o->cfg.lr, s->cfg.lr);
    SAME(SIMDGAN_SET_SEED, "--seed", "%" PRIu64, o->seed, s->seed);
    SAME(SIMDGAN_SET_DATASET, "--dataset", "%s", o->dataset, s->dataset);
    SAME(SIMDGAN_SET_ISA, "--isa", "%s", o->isa ? o->isa : "", s->isa);
    SAME(SIMDGAN_SET_PRECISION, "--precision", "%s", o->bf16 ? "bf16" : "fp32", s->precision);
#undef SAME
    o->cfg.latent = s->cfg.latent, o->cfg.hidden = s->cfg.hidden, o->cfg.batch = s->cfg.batch;
    o->cfg.lr = s->cfg.lr;
    o->seed = s->seed;
    o->dataset = s->dataset;
    o->isa = s->isa;
    o->bf16 = strcmp(s->precision, "bf16") == 0;
    long at = s->epoch * s->steps_per_epoch + s->step;
    if (!(o->given & SIMDGAN_SET_EPOCHS))
        o->epochs = s->epochs;
    else if ((long)o->epochs * s->steps_per_epoch < at)
        return sg_error("--epochs %d: the training state (%s) is already at epoch %ld, step %ld; "
                        "expected at least %ld", o->epochs, path, s->epoch, s->step,
                        s->epoch + (s->step > 0));
    return 0;
}

struct sg_trainer {
    sg_train_opts o;      /* the caller's, with a resumed state's flags merged */
    char dir[4096], samples[4096], state_path[4200];
    sg_lock lock;
    int resumed, adapt, step_nth, stdout_ok, have_engine, have_gan;
    const sg_kernels *k;
    char why[256];
    const char *bf16_path; /* precision bf16: its path ("amx", ...); NULL: fp32 */
    char bf16_why[256];
    const char *nwhy;
    sg_dataset ds;
    sg_engine e;
    sg_gan g;
    sg_evaluator *ev;
    sg_autothreads at;
    size_t B, img, steps;
    long gs, start;       /* global step: now, and when opened            */
    long perm_epoch;      /* the epoch whose shuffle perm holds, -1: none  */
    sg_state st;          /* the state resumed from (o's strings point into it) */
    sg_state cur;         /* what the next state written says              */
    uint32_t *perm;       /* [n] this epoch's order                        */
    float *real;          /* [B, image] the first epoch's last real batch  */
    float lut[256];       /* pixel -> ((p / 255) - 0.5) / 0.5, as torchvision */
    fill_ctx f;
    float *ev_z, *ev_x;   /* [eval_n, latent], [eval_n, image]             */
    float *fixed_z, *fixed_x; /* [FIXED_Z_N, latent], [FIXED_Z_N, image]   */
    progress prog;
    FILE *metrics;
    double t_row;         /* when the last metrics row was written         */
    long row_steps;       /* steps since                                   */
};

enum { FIXED_Z_N = 64 };

long sg_trainer_step(const sg_trainer *t) { return t->gs; }
long sg_trainer_steps_per_epoch(const sg_trainer *t) { return (long)t->steps; }
sg_gan *sg_trainer_gan(sg_trainer *t) { return &t->g; }

void sg_trainer_close(sg_trainer *t)
{
    if (!t) return;
    if (t->metrics) fclose(t->metrics);
    if (t->ev) sg_eval_close(t->ev);
    free(t->ev_z), free(t->ev_x), free(t->fixed_z), free(t->fixed_x);
    free(t->perm), free(t->real);
    if (t->have_gan) sg_gan_free(&t->g);
    if (t->have_engine) sg_engine_free(&t->e);
    sg_dataset_free(&t->ds);
    sg_unlock(t->lock);
    free(t);
}

int sg_trainer_open(const sg_train_opts *opts, sg_trainer **out)
{
    sg_trainer *t = calloc(1, sizeof *t);
    if (!t) return sg_error("out of memory"), SG_EXIT_BAD_INPUT;
    *out = NULL;
    t->o = *opts;
    t->lock = SG_NO_LOCK;
    t->perm_epoch = -1;
    t->stdout_ok = !opts->quiet;
    sg_train_opts *o = &t->o;
    sg_state *st = &t->st;
    sg_st_file *st_file = NULL;

    /* The state lives in OUT: lock an existing OUT before reading it, so the
     * state read is the last one written. */
    if (sg_join(t->state_path, sizeof t->state_path, o->out, SG_STATE_FILE) != 0) goto fail;
    if (is_dir(o->out)) {
        if (lock_out(o->out, &t->lock) != 0) goto fail;
        int r = sg_state_read(t->state_path, st, &st_file);
        if (r < 0) goto fail;
        if (r == 0 && o->resume) {
            t->resumed = 1;
        } else if (r == 0) {
            /* A new run would replace that run's state, and then its G and
             * D: never without being asked. */
            long at = st->epoch * st->steps_per_epoch + st->step;
            if (at < (long)st->epochs * st->steps_per_epoch)
                sg_error("--out %s holds an unfinished run (epoch %ld of %d); continue it with "
                         "--resume, or choose another --out", o->out, st->epoch, st->epochs);
            else
                sg_error("--out %s holds a finished run (%d epoch%s); train it longer with --resume "
                         "--epochs N, or choose another --out (or remove %s)", o->out, st->epochs,
                         st->epochs == 1 ? "" : "s",
                         t->state_path);
            goto fail;
        }
    }
    if (o->resume && !t->resumed && !o->quiet)
        fprintf(stderr, "simdgan: --resume: no training state in %s; starting from the beginning\n",
                o->out);
    if (t->resumed && merge_state(o, st, t->state_path) != 0) goto fail;

    const sg_gan_config *c = &o->cfg;
    sg_dataset *ds = &t->ds;
    if (sg_data_find(t->dir, sizeof t->dir, o->data, o->dataset) != 0 ||
        sg_mnist_load(ds, t->dir, 1) != 0 || sg_dataset_check(ds, o->dataset, t->dir) != 0)
        goto fail;
    if ((size_t)c->batch > ds->n) {
        sg_error("--batch-size %d: larger than the %zu training images", c->batch, ds->n);
        goto fail;
    }
    const size_t B = t->B = (size_t)c->batch, img = t->img = (size_t)c->image;
    const size_t steps = t->steps = ds->n / B;
    if (t->resumed && (st->data_crc != ds->crc || st->data_n != (long)ds->n ||
                       st->steps_per_epoch != (long)steps || st->cfg.image != c->image)) {
        sg_error("%s: %zu training images with CRC-32 %08" PRIx32 "; the training state (%s) was "
                 "trained on %ld with CRC-32 %08" PRIx32 ": expected the same training files",
                 t->dir, ds->n, ds->crc, t->state_path, st->data_n, st->data_crc);
        goto fail;
    }
    /* Everything that can be refused is checked before the output folder is
     * touched: the data, the kernel table, the threads, the environment. */
    const sg_kernels *k = t->k = sg_kernels_select(o->isa, t->why, sizeof t->why);
    int nth = o->threads;
    t->nwhy = "--threads";
    if (!k) {
        if (t->resumed)
            sg_error("the training state (%s) was computed with the %s kernels: %s",
                     t->state_path, st->isa, sg_last_error());
        goto fail;
    }
    if ((nth == 0 && sg_threads_default(&nth, &t->nwhy) != 0) || sg_engine_init(&t->e, k, nth) != 0)
        goto fail;
    t->have_engine = 1;
    sg_gan_init(&t->g, c, &t->e, o->seed);
    t->have_gan = 1;
    if (o->bf16) {
        /* A resumed run keeps its path: each sums in its own order. */
        const sg_bf16_kernels *bk = sg_bf16_select(t->resumed ? st->bf16_path : NULL,
                                                   t->bf16_why, sizeof t->bf16_why);
        if (!bk || sg_gan_use_bf16(&t->g, bk) != 0) {
            if (t->resumed)
                sg_error("the training state (%s) was computed on the %s bf16 path: %s",
                         t->state_path, st->bf16_path, sg_last_error());
            else
                sg_error("--precision bf16: %s", sg_last_error());
            goto fail;
        }
        t->bf16_path = bk->path;
    }
    if (o->eval_every && !(t->ev = sg_eval_open_with(NULL, o->dataset, t->dir, &t->e))) {
        sg_error("--eval-every: %s", sg_last_error());
        goto fail;
    }
    /* A state, a pair of checkpoints and two grids, beside the old ones. */
    size_t need = 4 * (t->g.G.total + t->g.D.total) * sizeof(float) + (size_t)(1 << 20);
    if (prepare_out(o->out, t->samples, sizeof t->samples, &t->lock, need) != 0) goto fail;
    if (t->resumed) {
        int r = sg_state_load_tensors(st_file, t->state_path, &t->g, st);
        st_file = NULL;
        if (r != 0) goto fail;
    }
    t->e.bind = o->bind;
    /* The default thread count adapts: every step's bits are the same at any
     * count, so when another process takes a core and fewer threads run
     * faster, the run switches to fewer (autothreads.h). */
    t->adapt = o->threads == 0 && strcmp(t->nwhy, "OMP_NUM_THREADS") != 0 && t->e.max_nth > 1;
    sg_autothreads_init(&t->at, t->e.max_nth);
    t->step_nth = t->adapt ? sg_autothreads_next(&t->at, -1.0) : t->e.max_nth;

    t->gs = t->start = t->resumed ? st->epoch * (long)steps + st->step : 0;
    sg_state *cur = &t->cur;
    cur->cfg = *c;
    cur->seed = o->seed;
    snprintf(cur->dataset, sizeof cur->dataset, "%s", o->dataset);
    cur->data_crc = ds->crc;
    cur->data_n = (long)ds->n;
    snprintf(cur->isa, sizeof cur->isa, "%s", k->isa);
    snprintf(cur->precision, sizeof cur->precision, "%s", o->bf16 ? "bf16" : "fp32");
    snprintf(cur->bf16_path, sizeof cur->bf16_path, "%s", o->bf16 ? t->bf16_path : "none");
    cur->threads = t->e.max_nth;
    cur->epochs = o->epochs;
    cur->steps_per_epoch = (long)steps;
    cur->pair_step = t->resumed ? st->pair_step : -1;

    t->perm = sg_xmalloc(ds->n * sizeof(uint32_t));
    t->real = sg_xmalloc(B * img * sizeof(float));
    for (int p = 0; p < 256; p++) t->lut[p] = ((float)p / 255.0f - 0.5f) / 0.5f;
    t->f = (fill_ctx){ds, t->perm, t->lut, 0, 0, o->seed};
    /* The evaluation's z and the fixed-z grid's: `simdgan sample --seed S`'s
     * z for the run's seed, drawn once. */
    if (t->ev) {
        t->ev_z = sg_xmalloc((size_t)o->eval_n * (size_t)c->latent * sizeof(float));
        t->ev_x = sg_xmalloc((size_t)o->eval_n * img * sizeof(float));
        sg_sample_z(k, t->ev_z, (size_t)o->eval_n, c->latent, o->seed);
    }
    if (o->fixed_z) {
        t->fixed_z = sg_xmalloc((size_t)FIXED_Z_N * (size_t)c->latent * sizeof(float));
        t->fixed_x = sg_xmalloc((size_t)FIXED_Z_N * img * sizeof(float));
        sg_sample_z(k, t->fixed_z, FIXED_Z_N, c->latent, o->seed);
    }
    t->prog = (progress){o->progress > 0 || (o->progress < 0 && sg_term_ansi(stderr)), 0, now(),
                         0, t->gs, (long)o->epochs * (long)steps, (long)steps};
    if (!(t->metrics = metrics_open(o->out, t->gs, !t->resumed))) goto fail;
    t->t_row = now();
    if (t->resumed && !o->quiet)
        fprintf(stderr, "simdgan: resuming %s at epoch %ld, step %ld of %zu (seed %" PRIu64
                        ", %s)\n", t->state_path, t->gs / (long)steps, t->gs % (long)steps, steps,
                o->seed, k->isa);
    if (!o->quiet)
        fprintf(stderr, "simdgan: %s, %zu images from %s; %s; %d threads (%s); %s kernels\n",
            o->dataset, ds->n, t->dir, t->why, t->e.max_nth,
            t->adapt ? "physical cores; fewer while that is faster" : t->nwhy,
            t->e.fusion ? "fused" : "unfused");
    if (!o->quiet && t->bf16_path)
        fprintf(stderr, "simdgan: precision bf16: products on the %s path (%s), fp32 master "
                        "weights\n", t->bf16_path, t->bf16_why);
    *out = t;
    return SG_EXIT_OK;
fail:
    sg_st_close(st_file);
    sg_trainer_close(t);
    return SG_EXIT_BAD_INPUT;
}

/* Writes the state for position t->gs; 0, or an exit status with error. */
static int save_state(sg_trainer *t)
{
    t->cur.epoch = t->gs / (long)t->steps;
    t->cur.step = t->gs % (long)t->steps;
    t->cur.epochs = t->o.epochs;
    if (!sg_gan_finite(&t->g)) return SG_EXIT_DIVERGED;
    return sg_state_write(t->state_path, &t->g, &t->cur) != 0 ? SG_EXIT_BAD_INPUT : SG_EXIT_OK;
}

/* The end of an epoch: the tutorial saves the last real batch once and the
 * last G step's G(z) (g->fake) every epoch; and the
 * fixed-z grid. */
static int epoch_images(sg_trainer *t, long epoch)
{
    const sg_dataset *ds = &t->ds;
    char name[64], path[4200];
    if (!all_finite(t->g.fake, t->B * t->img))
        return sg_error("training diverged in epoch %ld: G's images are not finite; the last "
                        "good state is left as it was; try a lower --lr", epoch),
               SG_EXIT_DIVERGED;
    if (epoch == 0) {
        gather(&t->f, t->real, (t->steps - 1) * t->B, 0, t->B, t->img);
        if (sg_join(path, sizeof path, t->samples, "real_images.png") != 0 ||
            sg_save_grid(path, t->real, (int)t->B, ds->rows, ds->cols) != 0)
            return SG_EXIT_BAD_INPUT;
    }
    snprintf(name, sizeof name, "fake_images-%ld.png", epoch + 1);
    if (sg_join(path, sizeof path, t->samples, name) != 0 ||
        sg_save_grid(path, t->g.fake, (int)t->B, ds->rows, ds->cols) != 0)
        return SG_EXIT_BAD_INPUT;
    if (t->fixed_z) {
        sg_net_generate(&t->g, &t->g.G, t->fixed_z, FIXED_Z_N, t->fixed_x);
        snprintf(name, sizeof name, "fixed_z-%ld.png", epoch + 1);
        if (sg_join(path, sizeof path, t->samples, name) != 0 ||
            sg_save_grid_nrow(path, t->fixed_x, FIXED_Z_N, ds->rows, ds->cols, 8) != 0)
            return SG_EXIT_BAD_INPUT;
    }
    return SG_EXIT_OK;
}

int sg_trainer_run(sg_trainer *t, long until, sg_log_fn on_log, void *user)
{
    sg_train_opts *o = &t->o;
    const long steps = (long)t->steps;
    if (until > (long)o->epochs * steps) o->epochs = (int)((until + steps - 1) / steps);
    const long total = (long)o->epochs * steps;
    t->prog.total = total;
    if (until > SG_MAX_EPOCHS * steps)
        return sg_error("a run of %ld steps: more than %ld epochs of %ld steps", until,
                        SG_MAX_EPOCHS, steps), SG_EXIT_BAD_INPUT;
    if (o->signals) signals_install(!o->signals_held);
    int rc = SG_EXIT_OK, stop_asked = 0;
    const char *stopped_by = NULL;
    while (t->gs < until) {
        const long epoch = t->gs / steps, s = t->gs % steps;
        if (epoch != t->perm_epoch) {
            sg_rng_permutation(t->perm, t->ds.n, o->seed, SG_STREAM_SHUFFLE, (uint32_t)epoch);
            t->perm_epoch = epoch;
        }
        if (o->max_steps && t->gs >= o->max_steps) {
            stopped_by = "--max-steps";
            break;
        }
        if (o->signals && stop_signal) break;
        sg_gan *g = &t->g;
        t->f.step = (size_t)s;
        t->f.global = (uint32_t)t->gs;
        sg_engine_set_threads(&t->e, t->step_nth);
        const double t_step = now();
        sg_gan_run_step(g, fill_step, &t->f);
        if (t->adapt) t->step_nth = sg_autothreads_next(&t->at, now() - t_step);
        t->gs++, t->row_steps++;
        if (!isfinite(g->d_loss) || !isfinite(g->g_loss) || !isfinite(g->d_x) ||
            !isfinite(g->d_g_z)) {
            rc = SG_EXIT_DIVERGED;
            sg_error("training diverged at epoch %ld, step %ld (d_loss %g, g_loss %g, D(x) %g, "
                     "D(G(z)) %g); the last good state is left as it was; try a lower --lr",
                     epoch, s + 1, g->d_loss, g->g_loss, g->d_x, g->d_g_z);
            break;
        }
        const int log_pt = o->log_every && (s + 1) % o->log_every == 0;
        const int end_epoch = s + 1 == steps;
        const int eval_pt = t->ev && end_epoch && (epoch + 1) % o->eval_every == 0;
        const double ms = 1e3 * (now() - t->t_row) / (double)t->row_steps;
        if (log_pt && t->stdout_ok) {
            progress_clear(&t->prog);
            printf("Epoch [%ld/%d], Step [%ld/%ld], d_loss: %.4f, g_loss: %.4f, D(x): %.2f, "
                   "D(G(z)): %.2f\n", epoch, o->epochs, s + 1, steps, g->d_loss, g->g_loss,
                   g->d_x, g->d_g_z);
            if (fflush(stdout) != 0 && errno == EPIPE) {
                t->stdout_ok = 0;
                fprintf(stderr, "simdgan: stdout is closed; training goes on, and the log "
                                "continues in %s/metrics.csv\n", o->out);
            }
        }
        if (log_pt && on_log) {
            sg_log_line line = {(int)epoch, o->epochs, s + 1, steps, g->d_loss, g->g_loss,
                                g->d_x, g->d_g_z, ms};
            stop_asked = on_log(user, &line) != 0;
        }
        if (end_epoch && (rc = epoch_images(t, epoch)) != SG_EXIT_OK) break;
        sg_eval_result er;
        if (eval_pt) {
            sg_net_generate(g, &g->G, t->ev_z, (size_t)o->eval_n, t->ev_x);
            if (sg_eval_images(t->ev, t->ev_x, (size_t)o->eval_n, &er) != 0) {
                rc = SG_EXIT_BAD_INPUT;
                break;
            }
            progress_clear(&t->prog);
            if (!o->quiet)
                fprintf(stderr, "simdgan: epoch %ld: FCD %.4f (train vs test %.4f), classifier score "
                            "%.3f, %d classes, KL to uniform %.4f, precision %.3f, recall %.3f "
                            "(%zu images; %s)\n", epoch + 1, er.fcd, er.fcd_floor, er.score,
                    er.covered, er.kl_uniform, er.precision, er.recall, er.n, er.extractor);
        }
        if (log_pt || eval_pt) {
            fprintf(t->metrics, "%ld,%ld,%ld,%.6f,%.6f,%.6f,%.6f,%.4f", epoch, s + 1, t->gs,
                    g->d_loss, g->g_loss, g->d_x, g->d_g_z, ms);
            if (eval_pt)
                fprintf(t->metrics, ",%.6f,%.6f,%.6f,%d,%.6f,%.6f,%.6f\n", er.fcd, er.fcd_floor,
                        er.score, er.covered, er.kl_uniform, er.precision, er.recall);
            else
                fputs(",,,,,,,\n", t->metrics);
            fflush(t->metrics);
            t->t_row = now(), t->row_steps = 0;
        }
        progress_draw(&t->prog, t->gs, o->epochs, now());
        if ((o->signals && stop_signal) || stop_asked) break;
        if ((o->checkpoint_every < 0 && end_epoch) ||
            (o->checkpoint_every > 0 && t->gs % o->checkpoint_every == 0)) {
            if (t->gs == total) t->cur.pair_step = total;
            if ((rc = save_state(t)) != SG_EXIT_OK) break;
        }
    }
    progress_clear(&t->prog);
    const int sig = o->signals ? stop_signal : 0;
    if (rc == SG_EXIT_OK && (sig || stop_asked)) {
        if ((rc = save_state(t)) == SG_EXIT_OK) {
            rc = sig == SIGTERM ? SG_EXIT_SIGTERM : SG_EXIT_SIGINT;
            sg_error("stopped by %s at epoch %ld, step %ld of %ld; the training state is in %s: "
                     "continue with simdgan train --resume --out %s",
                     sig == SIGINT ? "SIGINT" : sig ? "SIGTERM" : "the caller",
                     t->gs / steps, t->gs % steps, steps, t->state_path, o->out);
        }
    } else if (rc == SG_EXIT_OK && stopped_by) {
        if ((rc = save_state(t)) == SG_EXIT_OK && !o->quiet)
            fprintf(stderr, "simdgan: stopped after %ld steps (%s) at epoch %ld, step %ld; "
                            "continue with simdgan train --resume --out %s\n",
                    t->gs, stopped_by, t->gs / steps, t->gs % steps, o->out);
    }
    if (rc == SG_EXIT_BAD_INPUT)
        sg_error("%s; the previous state and outputs are intact", sg_last_error());
    else if (rc == SG_EXIT_DIVERGED && !strstr(sg_last_error(), "diverged"))
        sg_error("training diverged by epoch %ld, step %ld: the weights are not finite; the last "
                 "good state is left as it was; try a lower --lr", t->gs / steps, t->gs % steps);
    if (o->signals) signals_restore();
    return rc;
}

int sg_trainer_save(sg_trainer *t, const char *dir)
{
    if (sg_mkdir(dir) != 0 || save_pair(dir, &t->g, &t->o, t->gs) != 0) return SG_EXIT_BAD_INPUT;
    return SG_EXIT_OK;
}

/* The run is complete: the state (when kept) names the pair, then the pair
 * is written, unless a resumed complete run has it already. */
static int finish(sg_trainer *t, int *had)
{
    const long total = t->gs;
    int rc = SG_EXIT_OK;
    *had = t->resumed && t->st.pair_step == total &&
           pair_file_step(t->o.out, "G.safetensors") == total &&
           pair_file_step(t->o.out, "D.safetensors") == total;
    if (t->o.checkpoint_every != 0 && t->cur.pair_step != total) {
        t->cur.pair_step = total;
        rc = save_state(t);
    }
    if (rc == SG_EXIT_OK && !*had) rc = sg_trainer_save(t, t->o.out);
    if (rc == SG_EXIT_BAD_INPUT)
        sg_error("%s; the previous state and outputs are intact", sg_last_error());
    return rc;
}

int sg_train(const sg_train_opts *opts)
{
    /* The handlers stay from before the data is loaded until the pair is
     * written: a stop asked for while loading is honoured before the first
     * step, and a first Ctrl+C while the pair is written lets it finish. */
    sg_train_opts o = *opts;
    if (o.signals) signals_install(1);
    o.signals_held = o.signals;
    sg_trainer *t;
    int rc = sg_trainer_open(&o, &t), had = 0;
    if (rc != SG_EXIT_OK) {
        if (o.signals) signals_restore();
        return rc;
    }
    const long total = (long)t->o.epochs * (long)t->steps, start = t->gs;
    const double t0 = now();
    rc = sg_trainer_run(t, total, NULL, NULL);
    const double secs = now() - t0;
    if (rc == SG_EXIT_OK && t->gs == total) rc = finish(t, &had);
    if (t->o.signals) signals_restore();
    if (rc == SG_EXIT_OK && t->gs == total && !t->o.quiet) {
        if (total > start)
            fprintf(stderr, "simdgan: %ld steps in %.1f s (%.3f ms/step); wrote %s/ and "
                            "%s/{G,D}.safetensors\n", total - start, secs,
                    1e3 * secs / (double)(total - start), t->samples, t->o.out);
        else
            fprintf(stderr, "simdgan: the run in %s is complete (%d epoch%s); %s/{G,D}.safetensors "
                            "%s\n", t->o.out, t->o.epochs, t->o.epochs == 1 ? "" : "s", t->o.out,
                    had ? "are current" : "rewritten");
    }
    sg_trainer_close(t);
    return rc;
}
