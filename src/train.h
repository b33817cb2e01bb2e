/* train.h: the tutorial's training run, end to end. */
#ifndef SIMDGAN_TRAIN_H
#define SIMDGAN_TRAIN_H

#include <stdint.h>

#include "model.h"

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
} sg_train_opts;

void sg_train_opts_default(sg_train_opts *o);

/* The default thread count: $OMP_NUM_THREADS if set, else the physical cores
 * hwloc reports; 1 in a build without OpenMP. why says which. -1 with error
 * on a malformed OMP_NUM_THREADS. */
int sg_threads_default(int *nth, const char **why);

/* Loads the data, trains, writes samples/real_images.png after the first
 * epoch, samples/fake_images-N.png after every epoch and G.safetensors,
 * D.safetensors at the end, each atomically. Log lines go to stdout in the
 * tutorial's format, a summary to stderr. 0, or -1 with a one-line error. */
int sg_train(const sg_train_opts *o);

#endif
