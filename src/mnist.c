/* mnist.c: finding and loading the MNIST / Fashion-MNIST IDX files.
 *
 * zlib's gzopen/gzread read both the gzip-compressed files and the extracted
 * ones (a file without the gzip magic passes through unchanged), so one code
 * path serves both. Every check names the file and what was expected: magic,
 * 28x28 dimensions, a non-zero count, the payload size against the header
 * (truncated and overlong files are both errors), a clean gzip stream, labels
 * in 0..9 and equal image and label counts. The buffers grow as data arrives,
 * so a header that claims billions of images costs nothing until the bytes
 * are really there. */
#define _POSIX_C_SOURCE 200809L
#include "mnist.h"

#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define MNIST_SIDE 28

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "<dir>/<name>.gz" if it exists, else "<dir>/<name>"; -1 when neither does. */
static int pick_file(char *out, size_t cap, const char *dir, const char *name)
{
    int len = snprintf(out, cap, "%s/%s.gz", dir, name);
    if (len < 0 || (size_t)len >= cap) return sg_error("%s/%s.gz: path too long", dir, name);
    if (is_file(out)) return 0;
    snprintf(out, cap, "%s/%s", dir, name);
    if (is_file(out)) return 0;
    return sg_error("%s/%s.gz: not found (nor %s/%s); expected the MNIST file in %s", dir, name,
                    dir, name, dir);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* After a short read or a failed gzread: a zlib error if there was one
 * (-1, error set), else 0 (a plain end of file). */
static int gz_stream_error(gzFile g, const char *path)
{
    int errnum = Z_OK;
    const char *msg = gzerror(g, &errnum);
    if (errnum == Z_OK) return 0;
    size_t plen = strlen(path);   /* zlib's message starts "<path>: " */
    if (strncmp(msg, path, plen) == 0 && msg[plen] == ':' && msg[plen + 1] == ' ')
        msg += plen + 2;
    if (errnum == Z_ERRNO) return sg_error("%s: read failed (%s)", path, strerror(errno));
    if (errnum == Z_BUF_ERROR)
        return sg_error("%s: truncated gzip stream (zlib: %s); expected a complete .gz file", path,
                        msg);
    return sg_error("%s: corrupt gzip data (zlib: %s); expected a valid .gz file", path, msg);
}

/* gzread returned -1: the zlib error, or a generic one if zlib has none. */
static int gz_failed(gzFile g, const char *path)
{
    if (gz_stream_error(g, path) == 0) sg_error("%s: read failed", path);
    return -1;
}

/* Reads up to want bytes into *buf (grown as needed, starting from *cap);
 * *got is how many arrived before the end of the file. 0, or -1 on a zlib or
 * read error. */
static int gz_read_upto(gzFile g, const char *path, uint8_t **buf, size_t *cap, size_t want,
                        size_t *got)
{
    *got = 0;
    while (*got < want) {
        if (*got == *cap) {
            size_t grow = *cap ? *cap * 2 : (size_t)1 << 20;
            if (grow > want) grow = want;
            uint8_t *p = realloc(*buf, grow);
            if (!p) return sg_error("%s: out of memory reading %zu bytes", path, want);
            *buf = p;
            *cap = grow;
        }
        size_t chunk = *cap - *got;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(g, *buf + *got, (unsigned)chunk);
        if (r < 0) return gz_failed(g, path);
        if (r == 0) break;
        *got += (size_t)r;
    }
    return gz_stream_error(g, path);
}

/* Counts the bytes left in the stream (trailing data after the payload). */
static int gz_count_rest(gzFile g, const char *path, size_t *rest)
{
    unsigned char scratch[1 << 16];
    *rest = 0;
    for (;;) {
        int r = gzread(g, scratch, sizeof scratch);
        if (r < 0) return gz_failed(g, path);
        if (r == 0) break;
        *rest += (size_t)r;
    }
    return gz_stream_error(g, path);
}

/* Reads one IDX file: the header (magic, then ndims big-endian u32 sizes)
 * into dims, the payload (the product of dims bytes) into a new buffer.
 * what names the items ("images", "labels") for messages. */
static int read_idx(const char *path, uint32_t magic, int ndims, uint32_t dims[3],
                    const char *what, uint8_t **data)
{
    unsigned char head[16];
    size_t head_len = 4 + 4 * (size_t)ndims, got = 0, cap = 0, rest = 0;
    uint8_t *buf = NULL;
    *data = NULL;

    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) return sg_error("%s: cannot open (%s)", path, errno ? strerror(errno) : "zlib error");

    int r = gzread(g, head, (unsigned)head_len);
    if (r < 0) {
        gz_failed(g, path);
        goto fail;
    }
    if ((size_t)r < head_len) {
        if (gz_stream_error(g, path) == 0)
            sg_error("%s: truncated: %d bytes; expected a %zu-byte IDX header", path, r, head_len);
        goto fail;
    }
    uint32_t m = be32(head);
    if (m != magic) {
        sg_error("%s: magic 0x%08x; expected 0x%08x (IDX %s)", path, m, magic, what);
        goto fail;
    }
    for (int d = 0; d < ndims; d++) dims[d] = be32(head + 4 + 4 * d);
    if (dims[0] == 0) {
        sg_error("%s: header says 0 %s; expected at least one", path, what);
        goto fail;
    }
    if (ndims == 3 && (dims[1] != MNIST_SIDE || dims[2] != MNIST_SIDE)) {
        sg_error("%s: %s are %ux%u; expected %dx%d", path, what, dims[1], dims[2], MNIST_SIDE,
                 MNIST_SIDE);
        goto fail;
    }
    uint64_t payload64 = (uint64_t)dims[0] * (ndims == 3 ? MNIST_SIDE * MNIST_SIDE : 1);
    if (payload64 > SIZE_MAX) {
        sg_error("%s: header says %u %s; too many for this machine", path, dims[0], what);
        goto fail;
    }
    size_t payload = (size_t)payload64;

    if (gz_read_upto(g, path, &buf, &cap, payload, &got) != 0) goto fail;
    if (got < payload) {
        sg_error("%s: truncated: header says %u %s (%zu bytes), file has %zu after the %zu-byte "
                 "header", path, dims[0], what, payload, got, head_len);
        goto fail;
    }
    if (gz_count_rest(g, path, &rest) != 0) goto fail;
    if (rest > 0) {
        sg_error("%s: %zu trailing bytes: header says %u %s (%zu bytes), file has %zu after the "
                 "%zu-byte header", path, rest, dims[0], what, payload, payload + rest, head_len);
        goto fail;
    }
    gzclose(g);
    *data = buf;
    return 0;

fail:
    free(buf);
    gzclose(g);
    return -1;
}

int sg_mnist_load(sg_dataset *ds, const char *dir, int train)
{
    const char *prefix = train ? "train" : "t10k";
    char name[64], ipath[4096], lpath[4096];
    uint32_t idims[3] = {0}, ldims[3] = {0};
    uint8_t *images = NULL, *labels = NULL;
    memset(ds, 0, sizeof *ds);

    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if (pick_file(ipath, sizeof ipath, dir, name) != 0) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if (pick_file(lpath, sizeof lpath, dir, name) != 0) return -1;

    if (read_idx(ipath, IDX_IMAGES_MAGIC, 3, idims, "images", &images) != 0) return -1;
    if (read_idx(lpath, IDX_LABELS_MAGIC, 1, ldims, "labels", &labels) != 0) {
        free(images);
        return -1;
    }
    if (ldims[0] != idims[0]) {
        sg_error("%s: %u labels for the %u images in %s; expected equal counts", lpath, ldims[0],
                 idims[0], ipath);
        goto fail;
    }
    for (uint32_t i = 0; i < ldims[0]; i++) {
        if (labels[i] > 9) {
            sg_error("%s: label %u at index %u; expected 0..9", lpath, labels[i], i);
            goto fail;
        }
    }
    ds->n = idims[0];
    ds->rows = MNIST_SIDE;
    ds->cols = MNIST_SIDE;
    ds->images = images;
    ds->labels = labels;
    return 0;

fail:
    free(images);
    free(labels);
    return -1;
}

void sg_dataset_free(sg_dataset *ds)
{
    free(ds->images);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

/* A folder holds the dataset when it has the training images, .gz or not. */
static int holds_dataset(const char *dir)
{
    char path[4096];
    int len = snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    if (len < 0 || (size_t)len >= sizeof path) return 0;
    if (is_file(path)) return 1;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    return is_file(path);
}

static int found(char *out, size_t cap, const char *dir)
{
    if (strlen(dir) >= cap) return sg_error("%s: path too long", dir);
    strcpy(out, dir);
    return 0;
}

int sg_data_find(char *out, size_t cap, const char *flag_dir, const char *dataset)
{
    int fashion;
    if (strcmp(dataset, "mnist") == 0)
        fashion = 0;
    else if (strcmp(dataset, "fashion-mnist") == 0)
        fashion = 1;
    else
        return sg_error("unknown dataset '%s'; expected mnist or fashion-mnist", dataset);
    const char *hint = fashion ? "use --data DIR or set SIMDGAN_DATA"
                               : "use --data DIR, set SIMDGAN_DATA, or run tools/get-mnist.sh";

    const char *env = getenv("SIMDGAN_DATA");
    if (flag_dir || (env && env[0])) {
        const char *dir = flag_dir ? flag_dir : env;
        const char *from = flag_dir ? "--data" : "SIMDGAN_DATA";
        if (holds_dataset(dir)) return found(out, cap, dir);
        return sg_error("%s %s: %s; expected train-images-idx3-ubyte[.gz] and the other %s "
                        "files there", from, dir,
                        is_dir(dir) ? "no training images" : "no such folder",
                        fashion ? "Fashion-MNIST" : "MNIST");
    }

    const char *const mnist_dirs[] = {"./data/MNIST/raw", "./data/mnist"};
    const char *const fashion_dirs[] = {"./data/FashionMNIST/raw", "./data/fashion-mnist",
                                        "/usr/share/datasets/fashion-mnist"};
    const char *const *dirs = fashion ? fashion_dirs : mnist_dirs;
    int ndirs = fashion ? 3 : 2;
    char looked[1024] = "";
    for (int i = 0; i < ndirs; i++) {
        if (holds_dataset(dirs[i])) return found(out, cap, dirs[i]);
        size_t used = strlen(looked);
        snprintf(looked + used, sizeof looked - used, "%s%s", i ? ", " : "", dirs[i]);
    }
    return sg_error("no %s data (train-images-idx3-ubyte[.gz]) in %s; %s",
                    fashion ? "Fashion-MNIST" : "MNIST", looked, hint);
}
