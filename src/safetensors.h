/* safetensors.h: the checkpoint format PyTorch users can load.
 *
 * u64 little-endian header length N, N bytes of JSON padded with spaces to a
 * multiple of 8, then the raw little-endian data. Each entry is
 * {"dtype":"F32","shape":[...],"data_offsets":[b,e]}, offsets contiguous and
 * covering the buffer in the order given; "__metadata__" maps strings to
 * strings. simdgan writes and reads F32 only; the JSON is libjansson's. */
#ifndef SIMDGAN_SAFETENSORS_H
#define SIMDGAN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define SG_ST_MAX_DIMS 4

typedef struct sg_st_tensor {
    const char *name;              /* e.g. "0.weight"                    */
    const float *data;             /* host-endian floats                 */
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
} sg_st_tensor;

/* Writes n tensors, and n_meta key/value string pairs as __metadata__
 * (meta[2i] key, meta[2i + 1] value; may be NULL with n_meta 0), atomically:
 * sg_st_write_tmp, then sg_out_rename. Names and values must be UTF-8. 0, or
 * -1 with error naming the file. */
int sg_st_write(const char *path, const sg_st_tensor *t, int n, const char *const *meta,
                int n_meta);

/* The first phase of a write, for files that must change together: opens o
 * for path, writes the file to o's temporary and finishes it (flushed,
 * checked, fsynced, closed). The caller then calls sg_out_rename(o) to put it
 * in place, or sg_out_abort(o) to drop it; until then path is untouched.
 * -1 with error naming the file (and strerror for an IO failure) leaves no
 * temporary, and o such that sg_out_abort is harmless. */
int sg_st_write_tmp(sg_outfile *o, const char *path, const sg_st_tensor *t, int n,
                    const char *const *meta, int n_meta);

/* A file read into memory: its header and one aligned copy per tensor. */
typedef struct sg_st_file sg_st_file;

/* Opens and validates a file: header length within the file, JSON well formed
 * (no duplicate keys, nothing but spaces after the object), every entry F32
 * of rank <= SG_ST_MAX_DIMS with offsets in bounds, contiguous,
 * non-overlapping and covering the data. NULL with error on failure. */
sg_st_file *sg_st_open(const char *path);
/* The tensor's data (aligned copy, valid until close), its rank and shape; or
 * NULL with error "<file>: no tensor <name>" when absent. */
const float *sg_st_get(sg_st_file *f, const char *name, int *ndim, int64_t shape[SG_ST_MAX_DIMS]);
/* A __metadata__ value, or NULL when absent. */
const char *sg_st_meta(sg_st_file *f, const char *key);
int sg_st_count(const sg_st_file *f);
const char *sg_st_name(const sg_st_file *f, int i);
void sg_st_close(sg_st_file *f);

#endif
