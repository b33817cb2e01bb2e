/* sample.h: running a generator: z for sampling and evaluation, G loaded
 * from a file, and G's forward pass over many rows.
 *
 * A G file is the tutorial's nn.Sequential state_dict as safetensors, from
 * `simdgan train` or from PyTorch: "0.weight" [H, L], "0.bias" [H],
 * "2.weight" [H, H], "2.bias" [H], "4.weight" [784, H], "4.bias" [784], in
 * any order; L (latent) and H (hidden) are read from the shapes. */
#ifndef SIMDGAN_SAMPLE_H
#define SIMDGAN_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "gemm.h"
#include "model.h"

/* Counter word 1 of the z that `simdgan sample` and `simdgan eval` draw
 * (stream SG_STREAM_Z, word 2 = 0); training's z use words 1 = 0 and 1, so
 * these never repeat a training z. */
#define SG_Z_SAMPLE 2u

/* z [n, latent] of standard normals for seed: element i of the flat array
 * from the kernel table's normal slot, counter (i / 4, SG_Z_SAMPLE, 0,
 * SG_STREAM_Z). Row r depends on (seed, latent, r) only, so the first rows
 * of a larger draw are a smaller draw: `sample --seed S -n 1` is the first
 * image of `sample --seed S -n 64`, and the z of a seed in --interpolate. */
void sg_sample_z(const sg_kernels *k, float *z, size_t n, int latent, uint64_t seed);

/* G's images for n rows of z [n, G->dims[0]] into x [n, G->dims[3]]
 * (tanh outputs in [-1, 1]), in chunks of G->rows rows, in one parallel
 * region of g->e. Call from outside a parallel region; the GEMM workspace
 * must already hold G's forward products for G->rows rows (sg_gan_init
 * reserves them). */
void sg_net_generate(sg_gan *g, sg_net *G, const float *z, size_t n, float *x);

/* G's rows per forward chunk when a generator runs from a file. */
#define SG_GEN_ROWS 256

/* A G read from a file, ready to run. */
typedef struct sg_generator sg_generator;

/* Loads path: exactly the six tensors above, shapes consistent, every value
 * finite, L <= 4096, H <= 8192, 784 outputs. NULL with a one-line error
 * naming the file and what a G is when it is anything else (a D, a
 * classifier, a truncated file). Runs on e, `rows` rows per chunk. */
sg_generator *sg_generator_load(const char *path, sg_engine *e, size_t rows);
int sg_generator_latent(const sg_generator *g);
int sg_generator_hidden(const sg_generator *g);
/* The file's __metadata__ "dataset", or NULL when absent. */
const char *sg_generator_dataset(const sg_generator *g);
/* x [n, 784] = G(z), z [n, latent]. */
void sg_generator_run(sg_generator *g, const float *z, size_t n, float *x);
void sg_generator_free(sg_generator *g);

#endif
