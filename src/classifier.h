/* classifier.h: the evaluation classifier, an MLP trained by simdgan itself.
 *
 *   C: Linear(784, H) ReLU  Linear(H, H) ReLU  Linear(H, 10)   (softmax in the loss)
 *
 * It is trained with simdgan's own GEMM and Adam (`simdgan classifier`),
 * reproducibly from its seed, and shipped with the project as a safetensors
 * file per dataset (models/classifier-<dataset>.safetensors, keys "0.weight"
 * [H,784], "0.bias" [H], "2.weight" [H,H], "2.bias" [H], "4.weight" [10,H],
 * "4.bias" [10]; __metadata__ "dataset", "seed", "epochs", "test_accuracy",
 * "name"), so every machine computes the same metrics. The evaluation's
 * features are the second ReLU's outputs [n, H] (the penultimate layer). */
#ifndef SIMDGAN_CLASSIFIER_H
#define SIMDGAN_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gemm.h"
#include "mnist.h"

#define SG_CLASSES 10

typedef struct sg_classifier sg_classifier;

/* Loads a classifier file; NULL with a one-line error naming the file when it
 * is missing or is not a classifier (keys, shapes, non-finite values). */
sg_classifier *sg_classifier_load(const char *path);
/* The shipped classifier of a dataset ("mnist" or "fashion-mnist"),
 * models/classifier-<dataset>.safetensors looked up in $SIMDGAN_MODELS, then
 * <folder of the running binary>/models, then <folder of the running
 * binary>/../share/simdgan/models; the first file that exists is loaded (an
 * error there is reported, not skipped). NULL with an error naming every
 * place looked in when none exists. */
sg_classifier *sg_classifier_shipped(const char *dataset);
void sg_classifier_free(sg_classifier *c);

int sg_classifier_features_dim(const sg_classifier *c);   /* H */
/* A short identity for reports: "<name> (crc32 <8 hex digits>)", the CRC-32
 * of the file's bytes ("<name> (not saved)" for a classifier just trained). */
const char *sg_classifier_id(const sg_classifier *c);

/* Features and class probabilities of n images x [n, 784] in [-1, 1]
 * (pixel p as ((p / 255) - 0.5) / 0.5): feat [n, H] (may be NULL), prob
 * [n, 10] softmax outputs (may be NULL). Runs on engine e (all its threads,
 * its own parallel regions; call it from outside a parallel region). c holds
 * the scratch rows: one call at a time per classifier. */
void sg_classifier_run(sg_classifier *c, sg_engine *e, const float *x, size_t n, float *feat,
                       float *prob);

/* Fraction of ds's images classified as their label. */
double sg_classifier_accuracy(sg_classifier *c, sg_engine *e, const sg_dataset *ds);

/* Training: minibatch Adam on softmax cross-entropy, a fresh shuffle every
 * epoch, every training image translated by its own random (dx, dy) in
 * [-shift, shift]^2 each epoch (background filled in), and the learning rate
 * multiplied by decay after each third of the epochs. Init, shuffles and shifts
 * all come from the seed. */
typedef struct sg_classifier_opts {
    const char *dataset; /* "mnist" or "fashion-mnist": the name and metadata */
    uint64_t seed;       /* 0                                                */
    int epochs;          /* 30                                               */
    int hidden;          /* H, 256                                           */
    int batch;           /* 100                                              */
    int shift;           /* 2 pixels                                         */
    double lr;           /* 1e-3, Adam (betas 0.9, 0.999, eps 1e-8)          */
    double decay;        /* 0.3                                              */
} sg_classifier_opts;

void sg_classifier_opts_default(sg_classifier_opts *o);

/* Trains on train with engine e. With test not NULL, each epoch's test
 * accuracy is measured and the last one is kept for the metadata; with log
 * not NULL, one line per epoch goes there. NULL with error on bad options. */
sg_classifier *sg_classifier_train(const sg_classifier_opts *o, sg_engine *e,
                                   const sg_dataset *train, const sg_dataset *test, FILE *log);
/* Writes c atomically (sg_st_write) with its metadata. 0, or -1 with error. */
int sg_classifier_save(const sg_classifier *c, const char *path);

/* The `simdgan classifier` command (argv after the command name). */
int sg_cmd_classifier(int argc, char **argv);

#endif
