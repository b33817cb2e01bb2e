/* simdgan.h: the public C API of libsimdgan.
 *
 * simdgan trains the PyTorch MNIST GAN tutorial's model on the CPU with the
 * tutorial's semantics. This header is all a program needs: opaque handles,
 * plain structs versioned by their size field, and errors as a status code
 * plus a one-line message (simdgan_last_error, per thread). Only the symbols
 * declared here are exported from the shared library.
 *
 *     simdgan_config c;
 *     simdgan_config_init(&c);               // the tutorial's defaults
 *     c.epochs = 1;
 *     c.out = "run1";
 *     simdgan_trainer *t;
 *     if (simdgan_trainer_open(&c, &t) != SIMDGAN_OK) { puts(simdgan_last_error()); ... }
 *     simdgan_trainer_fit(t, 1, on_log, NULL);     // one epoch, a callback per log line
 *     simdgan_trainer_save(t, "run1");             // G.safetensors, D.safetensors
 *     simdgan_trainer_sample(t, 64, 0, images);    // 64 x 784 floats in [-1, 1]
 *     simdgan_trainer_close(t);
 *
 * Link with pkg-config (`pkg-config --cflags --libs simdgan`) or CMake
 * (`find_package(simdgan)`, target `simdgan::simdgan`). */
#ifndef SIMDGAN_H
#define SIMDGAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#if defined(SIMDGAN_BUILDING)
#define SIMDGAN_API __declspec(dllexport)
#else
#define SIMDGAN_API
#endif
#elif defined(__GNUC__)
#define SIMDGAN_API __attribute__((visibility("default")))
#else
#define SIMDGAN_API
#endif

/* The API version: bumped when a declaration here changes incompatibly. */
#define SIMDGAN_API_VERSION 2

/* Status codes; they are also the command's exit statuses. */
typedef enum simdgan_status {
    SIMDGAN_OK = 0,
    SIMDGAN_BAD_INPUT = 2, /* a bad value, data file, output folder or state; disk full */
    SIMDGAN_DIVERGED = 3,  /* a loss went NaN or infinite; the last good state is kept   */
    SIMDGAN_STOPPED = 130, /* stopped by SIGINT or the log callback, state written */
    SIMDGAN_TERMINATED = 143 /* stopped by SIGTERM, state written                     */
} simdgan_status;

/* A run's settings. Initialise with simdgan_config_init, then change fields.
 * Strings are borrowed, not copied: keep them alive while the trainer is open. */
typedef struct simdgan_config {
    size_t size;           /* sizeof(simdgan_config): set by simdgan_config_init */
    int epochs;            /* 200                                                */
    int batch_size;        /* 100                                                */
    double lr;             /* 0.0002 (Adam, G and D)                             */
    int latent;            /* 64                                                 */
    int hidden;            /* 256                                                */
    uint64_t seed;         /* 0: fixes init, every shuffle and every z           */
    int threads;           /* 0: the physical cores, fewer while that is faster  */
    const char *data;      /* folder of the IDX files; NULL: search              */
    const char *dataset;   /* "mnist" (default) or "fashion-mnist"               */
    const char *out;       /* output folder; "." by default                      */
    int log_every;         /* steps between log lines (200); 0: none             */
    const char *isa;       /* NULL: the best kernel table for this CPU           */
    const char *precision; /* "fp32" (default, NULL too) or "bf16": the products'
                              operands rounded to bf16, fp32 master weights      */
    long checkpoint_every; /* -1: each epoch's end (default); 0: off; N: steps   */
    int resume;            /* continue from out/checkpoint.safetensors           */
    long max_steps;        /* stop cleanly after this many steps in all; 0: none */
    int eval_every;        /* epochs between evaluations (FCD...); 0: none       */
    long eval_n;           /* images an evaluation generates (10000)             */
    int fixed_z;           /* also write samples/fixed_z-N.png every epoch       */
    const char *bind;      /* "auto" (default), "always" or "never"              */
    int quiet;             /* 1: no log lines on stdout and no notes on stderr
                              (the callback still runs; errors are returned) */
    int handle_signals;    /* 1: SIGINT/SIGTERM stop cleanly while training,
                              SIGPIPE ignored (what the command does); 0 default */
    unsigned fields_set;   /* SIMDGAN_SET_* bits: see below                      */
} simdgan_config;

/* With resume, the fields that change the computation come from the state,
 * except those the caller set: a field that differs from its default, or
 * whose bit is in fields_set, must agree with the state (else
 * SIMDGAN_BAD_INPUT, naming both values). */
enum {
    SIMDGAN_SET_EPOCHS = 1u << 0, /* may grow past the state's, never shrink */
    SIMDGAN_SET_BATCH_SIZE = 1u << 1,
    SIMDGAN_SET_LR = 1u << 2,
    SIMDGAN_SET_LATENT = 1u << 3,
    SIMDGAN_SET_HIDDEN = 1u << 4,
    SIMDGAN_SET_SEED = 1u << 5,
    SIMDGAN_SET_DATASET = 1u << 6,
    SIMDGAN_SET_ISA = 1u << 7,
    SIMDGAN_SET_PRECISION = 1u << 8,
};

/* One log line's figures (the tutorial's line, and ms/step). */
typedef struct simdgan_log {
    int epoch, epochs;     /* epoch counted from 0                               */
    long step, steps;      /* step within the epoch, 1..steps                    */
    double d_loss, g_loss, d_x, d_g_z, ms_per_step;
} simdgan_log;

/* Called after each log interval; return non-zero to stop the run cleanly
 * (its state is written, as for SIGTERM, and fit returns SIMDGAN_STOPPED). */
typedef int (*simdgan_log_fn)(void *user, const simdgan_log *line);

typedef struct simdgan_trainer simdgan_trainer;

SIMDGAN_API const char *simdgan_version(void);      /* e.g. "0.1.0"          */
SIMDGAN_API int simdgan_api_version(void);          /* SIMDGAN_API_VERSION   */
SIMDGAN_API const char *simdgan_last_error(void);   /* this thread's last    */
/* The kernel table this CPU gets ("avx512", "avx2", "neon", "ref"). */
SIMDGAN_API const char *simdgan_isa(void);

SIMDGAN_API void simdgan_config_init(simdgan_config *c);

/* The whole run `simdgan train` makes: train to c->epochs, write the
 * grids, metrics, states and the G/D pair. A status with the error. */
SIMDGAN_API int simdgan_train(const simdgan_config *c);

/* Loads the data, checks the output folder, locks it, builds G and D (or
 * reads the state with c->resume). SIMDGAN_OK, or a status with the error. */
SIMDGAN_API int simdgan_trainer_open(const simdgan_config *c, simdgan_trainer **t);
/* Trains `epochs` more epochs, calling on_log (may be NULL) at each log
 * line; past c->epochs, the run's target grows to match. Writes the sample
 * grids, metrics.csv and the state as `simdgan train` does. */
SIMDGAN_API int simdgan_trainer_fit(simdgan_trainer *t, int epochs, simdgan_log_fn on_log,
                                    void *user);
/* Trains `steps` more steps. */
SIMDGAN_API int simdgan_trainer_steps(simdgan_trainer *t, long steps, simdgan_log_fn on_log,
                                      void *user);
/* Writes dir/G.safetensors and dir/D.safetensors (the tutorial's
 * state_dicts), as a pair. */
SIMDGAN_API int simdgan_trainer_save(simdgan_trainer *t, const char *dir);
/* n images of G for seed's z into images [n, 784], values in [-1, 1]: the
 * images `simdgan sample --seed seed` draws. */
SIMDGAN_API int simdgan_trainer_sample(simdgan_trainer *t, size_t n, uint64_t seed, float *images);
/* Steps trained so far, and steps in an epoch. */
SIMDGAN_API long simdgan_trainer_step(const simdgan_trainer *t);
SIMDGAN_API long simdgan_trainer_steps_per_epoch(const simdgan_trainer *t);
SIMDGAN_API void simdgan_trainer_close(simdgan_trainer *t);

/* A generator read from a G.safetensors (simdgan's or PyTorch's). */
typedef struct simdgan_generator simdgan_generator;
SIMDGAN_API int simdgan_generator_load(const char *path, simdgan_generator **g);
SIMDGAN_API int simdgan_generator_latent(const simdgan_generator *g);
SIMDGAN_API int simdgan_generator_sample(simdgan_generator *g, size_t n, uint64_t seed,
                                         float *images);
SIMDGAN_API void simdgan_generator_close(simdgan_generator *g);

#ifdef __cplusplus
}
#endif

#endif
