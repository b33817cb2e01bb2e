/* fuzz_readers.c: libFuzzer target for the two readers of untrusted files,
 * the safetensors reader and the IDX loader (gzip or plain). Any input must
 * give either success or a clean -1 with a one-line error naming the file:
 * never a crash, a leak or undefined behaviour (built with ASan and UBSan).
 *
 * The first input byte picks the reader (bit 0) and, for IDX, whether the
 * file is the .gz name (bit 1); the rest is the file. For IDX the bytes
 * become the training images file next to a valid labels file. Built
 * only with clang and -DSIMDGAN_FUZZ=ON; ctest runs it for a fixed number of
 * inputs from a small seed corpus. */
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

static void check_error(void)
{
    const char *e = sg_last_error();
    if (!strstr(e, dir) || strchr(e, '\n')) {
        fprintf(stderr, "error does not name the file or is not one line: %s\n", e);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/simdgan-fuzz-%ld", (long)getpid());
        if (sg_mkdir(dir) != 0) abort();
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
