/* state.h: the training state, the file a stopped run continues from.
 *
 * OUT/checkpoint.safetensors holds, for G and D, every parameter and both
 * Adam moments under PyTorch's names ("G.0.weight", "G.0.weight.exp_avg",
 * "G.0.weight.exp_avg_sq", ... "D.4.bias.exp_avg_sq"), and in __metadata__
 * everything that continuing bit for bit needs: both Adam step counts, the
 * epoch and step within it of the next step, the seed (the random streams
 * are counter-based: init from the seed, epoch e's shuffle from (seed, e),
 * the z of global step s from (seed, s); so the seed and the step are their
 * positions), the flags that change the computation, a CRC-32 of the
 * training files, the kernel table and threads, the version, which G/D pair
 * is current, and a CRC-32 (zlib's crc32) of the tensor bytes.
 *
 * Reading it validates everything before anything is used: the safetensors
 * structure (src/safetensors.c, jansson), the metadata's presence and
 * ranges, the CRC, and every tensor's name and shape against the config the
 * metadata gives. A damaged state is one line naming the file. */
#ifndef SIMDGAN_STATE_H
#define SIMDGAN_STATE_H

#include <stdint.h>

#include "model.h"

#define SG_STATE_FILE "checkpoint.safetensors"

typedef struct sg_state {
    sg_gan_config cfg;   /* latent, hidden, batch, lr (image from the data)   */
    uint64_t seed;
    char dataset[32];    /* "mnist" or "fashion-mnist"                        */
    uint32_t data_crc;   /* CRC-32 of the training images and labels          */
    long data_n;         /* training images                                   */
    char isa[16];        /* kernel table the state was computed with          */
    char precision[8];   /* "fp32" or "bf16" (the products'; states are fp32) */
    char bf16_path[16];  /* bf16: its path ("amx", "avx512bf16", ...); fp32: "none" */
    int threads;         /* informational: results do not depend on it        */
    int epochs;          /* the run's target                                  */
    long epoch, step;    /* position of the next step: epoch, step within it  */
    long steps_per_epoch;
    long g_step, d_step; /* Adam's t for G and D                              */
    long pair_step;      /* global step of the current G/D pair, -1 for none  */
    char version[32];    /* simdgan version that wrote it                     */
} sg_state;

/* Writes g's parameters and moments with s's metadata to path atomically
 * (temporary, fsync, rename, folder fsync). Refuses (-1, error) when any
 * value is not finite, so a diverged run never replaces a good state. */
int sg_state_write(const char *path, const sg_gan *g, const sg_state *s);

/* Reads and validates path's metadata and CRC into s. 0; 1 when path does
 * not exist; -1 with a one-line error when it is damaged. On 0, call
 * sg_state_load_tensors with a gan initialised from s->cfg. */
typedef struct sg_st_file sg_st_file;
int sg_state_read(const char *path, sg_state *s, sg_st_file **file);
/* Copies the tensors into g (shapes checked against g's config), closes
 * file. 0 or -1 with error. */
int sg_state_load_tensors(sg_st_file *file, const char *path, sg_gan *g, const sg_state *s);

/* 1 when every parameter and moment of g is finite. */
int sg_gan_finite(const sg_gan *g);

#endif
