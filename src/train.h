/* train.h: the tutorial's training run, end to end. */
#ifndef SIMDGAN_TRAIN_H
#define SIMDGAN_TRAIN_H

#include <stdint.h>

#include "model.h"
#include "simdgan.h"

typedef struct sg_train_opts {
    sg_gan_config cfg;
    int epochs;          /* 200                                          */
    uint64_t seed;       /* fixes init, every shuffle and every z        */
    int threads;         /* 0: the default (sg_threads_default)          */
    const char *data;    /* --data, or NULL to search                    */
    const char *dataset; /* "mnist" or "fashion-mnist"                   */
    const char *out;     /* folder for samples/ and the checkpoints      */
    int log_every;       /* steps between log lines; 0: none             */
    const char *isa;     /* NULL: $SIMDGAN_ISA or the best for this CPU  */
    int bf16;            /* precision bf16 (sg_gan_use_bf16); 0: fp32    */
    int resume;          /* continue from OUT/checkpoint.safetensors     */
    long checkpoint_every; /* steps between states; -1: each epoch's end; 0: off */
    long max_steps;      /* stop cleanly after this many steps in all; 0: no limit */
    int eval_every;      /* epochs between evaluations (FCD etc.); 0: none */
    long eval_n;         /* images each evaluation generates (10000)      */
    int fixed_z;         /* also write samples/fixed_z-N.png every epoch  */
    int progress;        /* -1: a progress line when stderr is a terminal; 0 off; 1 on */
    int bind;            /* an sg_bind_policy (gemm.h)                    */
    int signals;         /* SIGINT/SIGTERM stop cleanly, SIGPIPE ignored (the command) */
    int signals_held;    /* the caller installed the handlers already (sg_train) */
    int quiet;           /* no log lines on stdout                        */
    unsigned given;      /* SIMDGAN_SET_* bits (simdgan.h): flags the caller set; with
                          * --resume they must agree with the state, the others
                          * are taken from it */
} sg_train_opts;

/* The most epochs a run may have (a state's limit too). */
#define SG_MAX_EPOCHS 1000000L

/* sg_train's outcomes, which are the command's exit statuses. */
enum {
    SG_EXIT_OK = 0,
    SG_EXIT_BAD_INPUT = 2,  /* bad flag, data, output folder, state; disk full */
    SG_EXIT_DIVERGED = 3,   /* a loss or D output went NaN or infinite         */
    SG_EXIT_SIGINT = 130,   /* stopped by SIGINT, state written                */
    SG_EXIT_SIGTERM = 143,  /* stopped by SIGTERM, state written               */
};

void sg_train_opts_default(sg_train_opts *o);

/* The default thread count: $OMP_NUM_THREADS if set, else the physical cores
 * hwloc reports; 1 in a build without OpenMP. why says which. -1 with error
 * on a malformed OMP_NUM_THREADS. */
int sg_threads_default(int *nth, const char **why);

/* Loads the data, trains, writes samples/real_images.png after the first
 * epoch, samples/fake_images-N.png after every epoch, the training state
 * every checkpoint_every steps, and G.safetensors, D.safetensors at the end,
 * each atomically. Log lines go to stdout in the tutorial's format, a
 * summary to stderr. Holds a lock on OUT for the whole run. SIGINT and
 * SIGTERM finish the step and write the state; SIGPIPE is ignored. Returns
 * an SG_EXIT_* status; for any but SG_EXIT_OK, sg_last_error() is the one
 * line to print. */
int sg_train(const sg_train_opts *o);

/* The same run in pieces, for the library API (include/simdgan.h):
 * sg_train is open, run to the last step, write the pair, close. */
typedef struct sg_trainer sg_trainer;
typedef struct sg_log_line {
    int epoch, epochs;
    long step, steps;
    double d_loss, g_loss, d_x, d_g_z, ms_per_step;
} sg_log_line;
/* Called at each log line; non-zero stops the run cleanly (state written,
 * SG_EXIT_SIGINT returned). */
typedef int (*sg_log_fn)(void *user, const sg_log_line *line);

/* Everything before the first step: data, kernels, threads, the lock, the
 * output checks, G and D (or the state). An SG_EXIT_* status. */
int sg_trainer_open(const sg_train_opts *o, sg_trainer **t);
/* Trains up to global step `until` (the run's epochs grow to hold it),
 * with the log, grids, evaluations, metrics and states of sg_train. */
int sg_trainer_run(sg_trainer *t, long until, sg_log_fn on_log, void *user);
/* Writes dir/G.safetensors and dir/D.safetensors as a pair. */
int sg_trainer_save(sg_trainer *t, const char *dir);
long sg_trainer_step(const sg_trainer *t);
long sg_trainer_steps_per_epoch(const sg_trainer *t);
sg_gan *sg_trainer_gan(sg_trainer *t);
void sg_trainer_close(sg_trainer *t);

#endif
