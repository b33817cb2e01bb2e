/* fuzz_readers.c: libFuzzer target for the two readers of untrusted files,
 * the safetensors reader (its header parsed by libjansson) and the IDX loader
 * (gzip or plain). Any input must give either success or a clean -1 with a
 * one-line error naming the file: never a crash, a leak or undefined
 * behaviour (built with ASan and UBSan; jansson itself is not instrumented,
 * but its allocations are ASan's and LeakSanitizer's). A safetensors file
 * that opens must also survive the writer: written back and read again, it
 * has the same names, shapes and bytes.
 *
 * The first input byte picks the reader (bit 0) and, for IDX, whether the
 * file is the .gz name (bit 1); the rest is the file. For IDX the bytes
 * become the training images file next to a valid labels file. Files go to
 * a folder in /dev/shm where there is one (the writer fsyncs, which costs
 * milliseconds on a disk), else /tmp. Built only with clang and
 * -DSIMDGAN_FUZZ=ON; ctest runs it for a fixed number of inputs from a small
 * seed corpus (safetensors seeds: tests/fuzz_corpus/st_*). */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mnist.h"
#include "safetensors.h"
#include "util.h"

static char dir[64];

static void write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

/* Writes f back with the writer and reads it again: same tensors, in the
 * same order, with the same shapes and bytes. (The reader takes an empty
 * name, which the writer refuses; such files are skipped.) */
static void round_trip(sg_st_file *f)
{
    int n = sg_st_count(f);
    sg_st_tensor *t = calloc((size_t)n + 1, sizeof *t);
    if (!t) abort();
    for (int i = 0; i < n; i++) {
        t[i].name = sg_st_name(f, i);
        t[i].data = sg_st_get(f, t[i].name, &t[i].ndim, t[i].shape);
        if (!t[i].name[0]) {
            free(t);
            return;
        }
    }
    char path[128];
    snprintf(path, sizeof path, "%s/again.safetensors", dir);
    if (sg_st_write(path, t, n, NULL, 0) != 0) {
        fprintf(stderr, "a file that opened cannot be written back: %s\n", sg_last_error());
        abort();
    }
    sg_st_file *g = sg_st_open(path);
    if (!g || sg_st_count(g) != n) abort();
    for (int i = 0; i < n; i++) {
        int nd;
        int64_t shape[SG_ST_MAX_DIMS];
        if (strcmp(sg_st_name(g, i), t[i].name) != 0) abort();
        const float *x = sg_st_get(g, t[i].name, &nd, shape);
        size_t count = 1;
        if (!x || nd != t[i].ndim) abort();
        for (int d = 0; d < nd; d++) {
            if (shape[d] != t[i].shape[d]) abort();
            count *= (size_t)shape[d];
        }
        if (count && memcmp(x, t[i].data, count * sizeof(float)) != 0) abort();
    }
    sg_st_close(g);
    free(t);
}

static void check_error(void)
{
    const char *e = sg_last_error();
    if (!strstr(e, dir) || strchr(e, '\n')) {
        fprintf(stderr, "error does not name the file or is not one line: %s\n", e);
        abort();
    }
}

/* At exit: the files written below, then the folder. */
static void remove_dir(void)
{
    static const char *const names[] = {"x.safetensors", "again.safetensors",
                                        "train-labels-idx1-ubyte", "train-images-idx3-ubyte",
                                        "train-images-idx3-ubyte.gz"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "%s/simdgan-fuzz-%ld",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
        if (sg_mkdir(dir) != 0) abort();
        atexit(remove_dir);
    }
    if (size < 1) return 0;
    char path[128];
    if (data[0] & 1) {
        snprintf(path, sizeof path, "%s/x.safetensors", dir);
        write_file(path, data + 1, size - 1);
        sg_st_file *f = sg_st_open(path);
        if (!f) {
            check_error();
            return 0;
        }
        for (int i = 0; i < sg_st_count(f); i++) {
            int nd;
            int64_t shape[SG_ST_MAX_DIMS];
            if (!sg_st_get(f, sg_st_name(f, i), &nd, shape)) abort();
        }
        sg_st_meta(f, "format");
        round_trip(f);
        sg_st_close(f);
    } else {
        /* Labels for 1 image; the images file is the input, under its .gz
         * name (read through zlib's gzip path) or the extracted one. */
        static const uint8_t labels[9] = {0, 0, 8, 1, 0, 0, 0, 1, 3};
        char other[128];
        snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
        write_file(path, labels, sizeof labels);
        int gz = (data[0] & 2) != 0;
        snprintf(path, sizeof path, "%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
        snprintf(other, sizeof other, "%s/train-images-idx3-ubyte%s", dir, gz ? "" : ".gz");
        remove(other);
        write_file(path, data + 1, size - 1);
        sg_dataset ds = {0};
        if (sg_mnist_load(&ds, dir, 1) == 0)
            sg_dataset_free(&ds);
        else
            check_error();
    }
    return 0;
}
