/* test_io.c: the IO layer -- IDX loading, data folder search, safetensors and
 * PNG output.
 *
 * Usage: test_io OUT_DIR. Synthetic inputs go into a fresh folder under /tmp
 * (removed at the end); the files the Python checkers read afterwards go into
 * OUT_DIR (ctest: build/tests/io_out):
 *   grid_100.png, grid_9.png, grid_3.png, grid_1.png  tests/check_png.py
 *   g.safetensors, d.safetensors                      tests/check_safetensors.py
 * Both sides compute the same patterns, defined once here and once in Python:
 *   image pixel (k, r, c) = (((7k + 3r + 5c) mod 41) - 20) / 16, in [-1.25, 1.25]
 *     (multiples of 1/16, exact in float32; values beyond [-1, 1] test the
 *     clamp, 0 maps to 127.5 + 0.5 = 128 and tests the rounding);
 *   tensor t (in key order), element i = (((7i + 13t) mod 97) - 48) / 256.
 * With $SIMDGAN_DATA set it also loads the real MNIST from there.
 *
 * Windows (under Wine): all of it but the write error, which needs POSIX's
 * file size limit (RLIMIT_FSIZE) to stand in for a full disk. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "mnist.h"
#include "platform.h"
#include "png.h"
#include "safetensors.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#ifndef _WIN32
#include <signal.h>
#include <sys/resource.h>
#endif

static char tmp_root[] = "/tmp/simdgan_test_io_XXXXXX";

/* ---- small file helpers ------------------------------------------------------ */

static void path_join(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* A fresh folder tmp_root/name. */
static const char *subdir(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    path_join(p, sizeof path[0], tmp_root, name);
    if (sg_mkdir(p) != 0) {
        fprintf(stderr, "test_io: %s\n", sg_last_error());
        exit(1);
    }
    return p;
}

static void write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "test_io: cannot write %s\n", path);
        exit(1);
    }
}

static void write_gz(const char *path, const void *buf, size_t len)
{
    gzFile g = gzopen(path, "wb");
    if (!g || (len && gzwrite(g, buf, (unsigned)len) != (int)len) || gzclose(g) != Z_OK) {
        fprintf(stderr, "test_io: cannot write %s\n", path);
        exit(1);
    }
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = sg_xmalloc(*len + 1);
    if (fread(buf, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return buf;
}

/* err must name the file and contain what. */
static void check_error(int ret, const char *path, const char *what, const char *label)
{
    const char *err = sg_last_error();
    CHECK(ret == -1, "%s: expected failure, got %d", label, ret);
    CHECK(strstr(err, path) != NULL, "%s: error does not name %s: %s", label, path, err);
    CHECK(strstr(err, what) != NULL, "%s: error lacks '%s': %s", label, what, err);
    CHECK(strchr(err, '\n') == NULL, "%s: error is not one line: %s", label, err);
    printf("  ok, %s: %s\n", label, err);
}

/* ---- IDX -------------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint8_t synth_pixel(size_t i, size_t j) { return (uint8_t)(i * 31 + j); }

/* An IDX file: header (magic, n[, rows, cols]) then payload bytes (the
 * synthetic pattern), payload_delta more or fewer than the header says. */
static void write_idx(const char *dir, const char *name, int gz, uint32_t magic, uint32_t n,
                      uint32_t rows, uint32_t cols, long payload_delta)
{
    int images = magic == 0x803;
    size_t head = images ? 16 : 8, item = images ? (size_t)rows * cols : 1;
    size_t payload = (size_t)((long)(n * item) + payload_delta);
    unsigned char *buf = sg_xmalloc(head + payload);
    put_be32(buf, magic);
    put_be32(buf + 4, n);
    if (images) {
        put_be32(buf + 8, rows);
        put_be32(buf + 12, cols);
    }
    for (size_t b = 0; b < payload; b++)
        buf[head + b] = images ? synth_pixel(b / item, b % item) : (uint8_t)(b % 10);
    char path[600];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    if (gz)
        write_gz(path, buf, head + payload);
    else
        write_file(path, buf, head + payload);
    free(buf);
}

/* A good pair of files: prefix "train" or "t10k", n items each. */
static void write_set(const char *dir, const char *prefix, uint32_t n, int gz)
{
    char name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    write_idx(dir, name, gz, 0x803, n, 28, 28, 0);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    write_idx(dir, name, gz, 0x801, n, 0, 0, 0);
}

static void check_synthetic_set(const sg_dataset *ds, size_t n, const char *label)
{
    CHECK(ds->n == n && ds->rows == 28 && ds->cols == 28, "%s: n %zu rows %d cols %d", label,
          ds->n, ds->rows, ds->cols);
    int same = ds->n == n;
    for (size_t i = 0; i < n && same; i++) {
        for (size_t j = 0; j < 784; j++) same &= ds->images[i * 784 + j] == synth_pixel(i, j);
        same &= ds->labels[i] == i % 10;
    }
    CHECK(same, "%s: pixels or labels differ from what was written", label);
}

static void test_idx(void)
{
    sg_dataset ds;
    char ipath[600], lpath[600];
    printf("IDX loading\n");

    const char *d = subdir("good_gz");
    write_set(d, "train", 10, 1);
    CHECK(sg_mnist_load(&ds, d, 1) == 0, "gz: %s", sg_last_error());
    check_synthetic_set(&ds, 10, "gz");
    sg_dataset_free(&ds);

    d = subdir("good_plain");
    write_set(d, "t10k", 7, 0);
    CHECK(sg_mnist_load(&ds, d, 0) == 0, "plain: %s", sg_last_error());
    check_synthetic_set(&ds, 7, "plain");
    sg_dataset_free(&ds);

    /* Both present: the .gz wins. */
    d = subdir("both");
    write_set(d, "train", 5, 1);
    write_set(d, "train", 6, 0);
    CHECK(sg_mnist_load(&ds, d, 1) == 0 && ds.n == 5, "prefers .gz: n %zu", ds.n);
    sg_dataset_free(&ds);

    d = subdir("missing");
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte.gz");
    check_error(sg_mnist_load(&ds, d, 1), ipath, "not found", "missing file");
    CHECK(ds.images == NULL && ds.n == 0, "missing file: dataset not left empty");

    d = subdir("truncated");
    write_set(d, "train", 10, 0);
    write_idx(d, "train-images-idx3-ubyte", 0, 0x803, 10, 28, 28, -100);
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte");
    check_error(sg_mnist_load(&ds, d, 1), ipath,
                "truncated: header says 10 images (7840 bytes), file has 7740", "truncated");

    d = subdir("short_header");
    write_set(d, "train", 10, 0);
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte");
    write_file(ipath, "\0\0\x08\x03\0\0", 6);
    check_error(sg_mnist_load(&ds, d, 1), ipath, "16-byte IDX header", "short header");

    d = subdir("trailing");
    write_set(d, "train", 10, 1);
    write_idx(d, "train-labels-idx1-ubyte", 1, 0x801, 10, 0, 0, 3);
    path_join(lpath, sizeof lpath, d, "train-labels-idx1-ubyte.gz");
    check_error(sg_mnist_load(&ds, d, 1), lpath, "3 trailing bytes", "trailing bytes");

    d = subdir("magic");
    write_set(d, "train", 10, 1);
    write_idx(d, "train-images-idx3-ubyte", 1, 0x801, 10, 28, 28, 0);
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte.gz");
    check_error(sg_mnist_load(&ds, d, 1), ipath, "magic 0x00000801; expected 0x00000803",
                "wrong magic");

    d = subdir("dims");
    write_set(d, "train", 10, 1);
    write_idx(d, "train-images-idx3-ubyte", 1, 0x803, 10, 27, 28, 0);
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte.gz");
    check_error(sg_mnist_load(&ds, d, 1), ipath, "27x28; expected 28x28", "wrong dims");

    d = subdir("zero");
    write_set(d, "train", 0, 1);
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte.gz");
    check_error(sg_mnist_load(&ds, d, 1), ipath, "0 images", "zero images");

    d = subdir("count");
    write_set(d, "train", 10, 1);
    write_idx(d, "train-labels-idx1-ubyte", 1, 0x801, 9, 0, 0, 0);
    path_join(lpath, sizeof lpath, d, "train-labels-idx1-ubyte.gz");
    check_error(sg_mnist_load(&ds, d, 1), lpath, "9 labels for the 10 images", "count mismatch");

    d = subdir("label_range");
    write_set(d, "train", 10, 0);
    path_join(lpath, sizeof lpath, d, "train-labels-idx1-ubyte");
    write_file(lpath, "\0\0\x08\x01\0\0\0\x0a" "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0a", 18);
    check_error(sg_mnist_load(&ds, d, 1), lpath, "label 10 at index 9", "label out of range");

    /* A gzip header followed by a deflate block of the reserved type 3. */
    d = subdir("corrupt_gz");
    write_set(d, "train", 10, 1);
    path_join(ipath, sizeof ipath, d, "train-images-idx3-ubyte.gz");
    static const unsigned char bad_gz[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_file(ipath, bad_gz, sizeof bad_gz);
    check_error(sg_mnist_load(&ds, d, 1), ipath, "corrupt gzip", "corrupt gzip");

    /* A good .gz with its CRC trailer damaged, and one cut in half. */
    d = subdir("crc_gz");
    write_set(d, "train", 10, 1);
    path_join(lpath, sizeof lpath, d, "train-labels-idx1-ubyte.gz");
    size_t len = 0;
    unsigned char *gz = read_file(lpath, &len);
    gz[len - 8] ^= 0x55;
    write_file(lpath, gz, len);
    check_error(sg_mnist_load(&ds, d, 1), lpath, "corrupt gzip", "gzip CRC");
    write_file(lpath, gz, len / 2);
    check_error(sg_mnist_load(&ds, d, 1), lpath, "truncated gzip", "gzip cut short");
    free(gz);
}

/* ---- finding the data folder ---------------------------------------------------- */

static void test_find(void)
{
    char out[4096], cwd[4096];
    printf("data folder search\n");
    const char *good = subdir("find_good");
    write_set(good, "train", 3, 1);
    const char *empty = subdir("find_empty");

    CHECK(sg_data_find(out, sizeof out, good, "mnist") == 0 && strcmp(out, good) == 0,
          "--data good: %s", sg_last_error());
    check_error(sg_data_find(out, sizeof out, empty, "mnist"), empty, "--data", "--data empty");

    setenv("SIMDGAN_DATA", good, 1);
    CHECK(sg_data_find(out, sizeof out, NULL, "mnist") == 0 && strcmp(out, good) == 0,
          "SIMDGAN_DATA good: %s", sg_last_error());
    CHECK(sg_data_find(out, sizeof out, empty, "mnist") == -1,
          "with --data given, SIMDGAN_DATA must not be tried");
    setenv("SIMDGAN_DATA", empty, 1);
    check_error(sg_data_find(out, sizeof out, NULL, "mnist"), empty, "SIMDGAN_DATA",
                "SIMDGAN_DATA empty");
    unsetenv("SIMDGAN_DATA");

    /* The default folders, relative to the working directory. */
    CHECK(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
    const char *root = subdir("find_cwd");
    CHECK(chdir(root) == 0, "chdir %s", root);
    check_error(sg_data_find(out, sizeof out, NULL, "mnist"), "./data/MNIST/raw, ./data/mnist",
                "tools/get-mnist.sh", "no default folder");
    CHECK(sg_mkdir("data") == 0 && sg_mkdir("data/mnist") == 0, "mkdir: %s", sg_last_error());
    write_set("data/mnist", "train", 3, 0);
    CHECK(sg_data_find(out, sizeof out, NULL, "mnist") == 0 && strcmp(out, "./data/mnist") == 0,
          "./data/mnist: %s", sg_last_error());
    CHECK(sg_mkdir("data/MNIST") == 0 && sg_mkdir("data/MNIST/raw") == 0, "mkdir: %s",
          sg_last_error());
    write_set("data/MNIST/raw", "train", 3, 1);
    CHECK(sg_data_find(out, sizeof out, NULL, "mnist") == 0 &&
              strcmp(out, "./data/MNIST/raw") == 0,
          "./data/MNIST/raw first: %s", out);
    if (sg_data_find(out, sizeof out, NULL, "fashion-mnist") == 0)
        CHECK(strcmp(out, "/usr/share/datasets/fashion-mnist") == 0, "fashion-mnist: %s", out);
    else
        check_error(-1, "./data/FashionMNIST/raw", "/usr/share/datasets/fashion-mnist",
                    "no fashion-mnist");
    check_error(sg_data_find(out, sizeof out, NULL, "cifar"), "cifar", "expected mnist",
                "unknown dataset");
    CHECK(chdir(cwd) == 0, "chdir back");
}

/* The real files, when $SIMDGAN_DATA points at them. */
static void test_real_mnist(const char *dir)
{
    sg_dataset ds;
    printf("real MNIST\n");
    if (!dir || !dir[0]) {
        printf("  skipped: SIMDGAN_DATA is not set (point it at the MNIST folder to run this)\n");
        return;
    }
    CHECK(sg_mnist_load(&ds, dir, 1) == 0, "train: %s", sg_last_error());
    CHECK(ds.n == 60000 && ds.labels && ds.labels[0] == 5, "train: n %zu, label[0] %d", ds.n,
          ds.labels ? ds.labels[0] : -1);
    sg_dataset_free(&ds);
    CHECK(sg_mnist_load(&ds, dir, 0) == 0, "t10k: %s", sg_last_error());
    CHECK(ds.n == 10000 && ds.labels && ds.labels[0] == 7, "t10k: n %zu, label[0] %d", ds.n,
          ds.labels ? ds.labels[0] : -1);
    sg_dataset_free(&ds);
    printf("  ok, %s: 60000 + 10000 images, labels 5 and 7 first\n", dir);
}

/* ---- safetensors ------------------------------------------------------------------ */

static float pattern_value(int t, size_t i)
{
    return (float)((long)((i * 7 + (size_t)t * 13) % 97) - 48) / 256.0f;
}

/* The tutorial's G (latent -> hidden -> hidden -> 784) or D (784 -> hidden ->
 * hidden -> 1) as nn.Sequential keys, filled with pattern_value. */
static void write_model(const char *path, int is_g, int latent, int hidden)
{
    int in[3] = {is_g ? latent : 784, hidden, hidden}, out[3] = {hidden, hidden, is_g ? 784 : 1};
    static const char *const names[6] = {"0.weight", "0.bias", "2.weight",
                                         "2.bias", "4.weight", "4.bias"};
    sg_st_tensor t[6];
    float *buf[6];
    for (int k = 0; k < 6; k++) {
        int layer = k / 2;
        t[k].name = names[k];
        t[k].ndim = k % 2 ? 1 : 2;
        t[k].shape[0] = out[layer];
        t[k].shape[1] = in[layer];
        size_t count = (size_t)out[layer] * (k % 2 ? 1 : (size_t)in[layer]);
        buf[k] = sg_xalloc(count * sizeof(float));
        for (size_t i = 0; i < count; i++) buf[k][i] = pattern_value(k, i);
        t[k].data = buf[k];
    }
    const char *meta[4] = {"format", "pt", "model", is_g ? "G" : "D"};
    CHECK(sg_st_write(path, t, 6, meta, 2) == 0, "%s: %s", path, sg_last_error());

    sg_st_file *f = sg_st_open(path);
    CHECK(f != NULL, "reopen %s: %s", path, sg_last_error());
    if (!f) goto out;
    for (int k = 0; k < 6; k++) {
        int ndim;
        int64_t shape[SG_ST_MAX_DIMS];
        const float *x = sg_st_get(f, names[k], &ndim, shape);
        size_t count = (size_t)t[k].shape[0] * (ndim == 2 ? (size_t)t[k].shape[1] : 1);
        CHECK(x && ndim == t[k].ndim && shape[0] == t[k].shape[0] &&
                  (ndim == 1 || shape[1] == t[k].shape[1]) &&
                  memcmp(x, buf[k], count * sizeof(float)) == 0,
              "%s: %s differs after reading back", path, names[k]);
    }
    sg_st_close(f);
out:
    for (int k = 0; k < 6; k++) sg_free(buf[k]);
}

static void test_st_roundtrip(const char *dir)
{
    char path[600];
    printf("safetensors round trip\n");
    path_join(path, sizeof path, dir, "roundtrip.safetensors");
    float a[6] = {1.5f, -2.25f, 3e-38f, -0.0f, 1e30f, 7.0f}, b[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    float c[1] = {42.0f};
    const char *odd = "we\"ird\\name\n\x01 \xc3\xbc";
    sg_st_tensor t[4] = {
        {"a", a, 2, {2, 3}},
        {odd, b, 1, {4}},
        {"scalar", c, 0, {0}},
        {"empty", NULL, 2, {0, 5}},
    };
    const char *meta[4] = {"format", "pt", "note", "tab\there \"quoted\" \xe2\x82\xac"};
    CHECK(sg_st_write(path, t, 4, meta, 2) == 0, "write: %s", sg_last_error());

    /* The bytes: header length a multiple of 8, data exactly after it. */
    size_t len = 0;
    unsigned char *raw = read_file(path, &len);
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)raw[k] << (8 * k);
    CHECK(hlen % 8 == 0 && len == 8 + hlen + sizeof a + sizeof b + sizeof c,
          "header length %llu, file %zu bytes", (unsigned long long)hlen, len);
    CHECK(memcmp(raw + 8 + hlen, a, sizeof a) == 0, "tensor a's bytes right after the header");
    free(raw);

    sg_st_file *f = sg_st_open(path);
    CHECK(f != NULL, "open: %s", sg_last_error());
    if (!f) return;
    CHECK(sg_st_count(f) == 4, "count %d", sg_st_count(f));
    for (int i = 0; i < 4; i++)
        CHECK(sg_st_name(f, i) && strcmp(sg_st_name(f, i), t[i].name) == 0, "name %d: %s", i,
              sg_st_name(f, i));
    CHECK(sg_st_name(f, 4) == NULL && sg_st_name(f, -1) == NULL, "names out of range");
    for (int i = 0; i < 4; i++) {
        int ndim = -1;
        int64_t shape[SG_ST_MAX_DIMS];
        const float *x = sg_st_get(f, t[i].name, &ndim, shape);
        CHECK(x != NULL && ((uintptr_t)x % 64) == 0, "%d: data %p", i, (const void *)x);
        CHECK(ndim == t[i].ndim, "%d: ndim %d", i, ndim);
        size_t count = 1;
        for (int dd = 0; dd < ndim && dd < SG_ST_MAX_DIMS; dd++) {
            CHECK(shape[dd] == t[i].shape[dd], "%d: dim %d", i, dd);
            count *= (size_t)shape[dd];
        }
        if (x && count) CHECK(memcmp(x, t[i].data, count * 4) == 0, "%d: values differ", i);
    }
    CHECK(sg_st_meta(f, "format") && strcmp(sg_st_meta(f, "format"), "pt") == 0, "meta format");
    CHECK(sg_st_meta(f, "note") && strcmp(sg_st_meta(f, "note"), meta[3]) == 0, "meta note");
    CHECK(sg_st_meta(f, "absent") == NULL, "absent meta");
    CHECK(sg_st_get(f, "nope", NULL, NULL) == NULL, "absent tensor found");
    check_error(-1, path, "no tensor nope", "absent tensor");
    sg_st_close(f);

    /* Writer argument checks. */
    sg_st_tensor dup[2] = {{"x", a, 1, {2}}, {"x", b, 1, {2}}};
    check_error(sg_st_write(path, dup, 2, NULL, 0), path, "given twice", "duplicate name");
    sg_st_tensor deep = {"deep", a, 5, {1, 1, 1, 1}};
    check_error(sg_st_write(path, &deep, 1, NULL, 0), path, "rank 5", "rank 5");
    check_error(sg_st_write("/nonexistent-dir/x.safetensors", t, 1, NULL, 0),
                "/nonexistent-dir/x.safetensors", "cannot write", "unwritable");
}

/* A file from a header string and n data bytes; hlen_delta misstates the
 * header length. */
static void write_st_raw(const char *path, const char *header, size_t hbytes, size_t data,
                         long hlen_delta)
{
    size_t total = 8 + hbytes + data;
    unsigned char *buf = sg_xmalloc(total);
    uint64_t hlen = (uint64_t)((long)hbytes + hlen_delta);
    for (int k = 0; k < 8; k++) buf[k] = (unsigned char)(hlen >> (8 * k));
    memcpy(buf + 8, header, hbytes);
    for (size_t i = 0; i < data; i++) buf[8 + hbytes + i] = (unsigned char)i;
    write_file(path, buf, total);
    free(buf);
}

#define ENTRY(name, dtype, shape, b, e)                                                       \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e  \
    "]}"

static void test_st_malformed(const char *dir)
{
    char path[600];
    printf("safetensors, malformed files\n");
    path_join(path, sizeof path, dir, "bad.safetensors");
    static const struct {
        const char *header;
        size_t data;
        const char *what;
    } cases[] = {
        {"{" ENTRY("a", "F32", "[2]", 0, 8) "}", 4, "ends at data byte 8; the file has 4"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8) "}", 12, "data bytes [8, 12) belong to no tensor"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[2]", 4, 12) "}", 12,
         "overlaps a"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("b", "F32", "[2]", 12, 20) "}", 20,
         "data bytes [8, 12) belong to no tensor"},
        {"{" ENTRY("a", "F16", "[2]", 0, 4) "}", 4, "dtype F16; simdgan reads F32 only"},
        {"{" ENTRY("a", "F32", "[3]", 0, 8) "}", 8, "has 8 data bytes; its shape needs 12"},
        {"{" ENTRY("a", "F32", "[2]", 8, 0) "}", 8, "expected begin <= end"},
        /* Duplicate keys, at the top level, in an entry, in or of __metadata__, and
         * spelled differently: jansson's JSON_REJECT_DUPLICATES. */
        {"{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("a", "F32", "[2]", 8, 16) "}", 16,
         "duplicate object key near '\"a\"'; expected unique keys"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8) "," ENTRY("\\u0061", "F32", "[2]", 8, 16) "}", 16,
         "duplicate object key near '\"\\u0061\"'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "duplicate object key near '\"shape\"'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"dtype\":\"F32\"}}", 8,
         "duplicate object key near '\"dtype\"'"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0,
         "duplicate object key near '\"__metadata__\"'"},
        {"{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}}", 0,
         "duplicate object key near '\"a\"'"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8), 8, "'}' expected near end of file"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8) ",}", 8, "string or '}' expected"},
        /* Numbers: non-negative integers below 2^63 only. */
        {"{" ENTRY("a", "F32", "[2.0]", 0, 8) "}", 8, "shape[0] is a real number; expected a "
         "non-negative integer"},
        {"{" ENTRY("a", "F32", "[-2]", 0, 8) "}", 8, "shape[0] is -2; expected a non-negative"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8.0) "}", 8, "data_offsets[1] is a real number"},
        {"{" ENTRY("a", "F32", "[2]", 0, 8e0) "}", 8, "data_offsets[1] is a real number"},
        {"{" ENTRY("a", "F32", "[2]", -0.0, 8) "}", 8, "data_offsets[0] is a real number"},
        {"{" ENTRY("a", "F32", "[2]", -8, 0) "}", 8, "data_offsets[0] is -8"},
        {"{" ENTRY("a", "F32", "[02]", 0, 8) "}", 8, "invalid token near '0'"},
        {"{" ENTRY("a", "F32", "[1,1,1,1,2]", 0, 8) "}", 8, "shape of 5 dimensions; expected "
         "at most 4"},
        {"{" ENTRY("a", "F32", "[99999999999999999999]", 0, 8) "}", 8, "too big integer"},
        {"{" ENTRY("a", "F32", "[2]", 0, 9223372036854775808) "}", 8, "too big integer"},
        {"{" ENTRY("a", "F32", "[9223372036854775807]", 0, 8) "}", 8, "too large to address"},
        {"{" ENTRY("a", "F32", "[4611686018427387904,4]", 0, 8) "}", 8, "too large to address"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
         "has 3 data_offsets; expected exactly 2"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "exactly 2"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "lacks data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8,
         "unknown field 'x'"},
        {"{\"a\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
         "dtype that is an integer; expected \"F32\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8,
         "shape that is a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":{}}}", 8,
         "data_offsets that are an object"},
        /* __metadata__: an object of strings, nothing nested. */
        {"{\"__metadata__\":{\"k\":1}," ENTRY("a", "F32", "[2]", 0, 8) "}", 8,
         "__metadata__ value of k is an integer; expected a string"},
        {"{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "__metadata__ value of k is an object"},
        {"{\"__metadata__\":{\"k\":[\"y\"]}}", 0, "__metadata__ value of k is an array"},
        {"{\"__metadata__\":\"k\"}", 0, "__metadata__ is a string; expected an object"},
        /* Strings: jansson's escapes and UTF-8 checks. */
        {"{\"a\\u0000b\":{}}", 0, "\\u0000"},
        {"{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, "\\u0000"},
        {"{\"a\\q\":{}}", 0, "invalid escape"},
        {"{\"a\\ud800\":{}}", 0, "invalid Unicode '\\uD800'"},
        {"{\"a\\udc00\\ud800\":{}}", 0, "invalid Unicode"},
        {"{\"a\\u12\":{}}", 0, "invalid escape"},
        {"{\"a\x01\":{}}", 0, "control character"},
        {"{\"\xff\":{}}", 0, "unable to decode byte 0xff"},
        {"{\"\xc0\x80\":{}}", 0, "unable to decode byte 0xc0"},
        {"{\"\xed\xa0\x80\":{}}", 0, "expected UTF-8"},
        {"{\"a", 0, "premature end of input"},
        /* The object itself, and what may follow it. */
        {"[]", 0, "the safetensors header is an array; expected a JSON object"},
        {"1 ", 0, "'[' or '{' expected"},
        {"{} x", 0, "end of file expected near 'x'; expected only spaces after"},
        {"{}      x", 0, "end of file expected near 'x'"},
        {"{}{}", 0, "end of file expected"},
        {"{}}", 0, "end of file expected"},
        {"{\"a\" {}}", 0, "':' expected"},
        {"{\"a\":[]}", 0, "tensor a is an array; expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "malformed case %zu", i);
        write_st_raw(path, cases[i].header, strlen(cases[i].header), cases[i].data, 0);
        sg_st_file *f = sg_st_open(path);
        check_error(f ? 0 : -1, path, cases[i].what, label);
        if (f) sg_st_close(f);
    }

    /* Data in another order than the keys (as the safetensors library
     * writes it: sorted by dtype, then name) is valid. */
    const char *reordered =
        "{" ENTRY("z", "F32", "[1]", 0, 4) "," ENTRY("a", "F32", "[2]", 4, 12) "}";
    write_st_raw(path, reordered, strlen(reordered), 12, 0);
    sg_st_file *f = sg_st_open(path);
    CHECK(f != NULL, "data order unlike key order: %s", sg_last_error());
    if (f) {
        const float *z = sg_st_get(f, "z", NULL, NULL), *a = sg_st_get(f, "a", NULL, NULL);
        unsigned char zb[4], ab[8];
        memcpy(zb, z, 4);
        memcpy(ab, a, 8);
        CHECK(zb[0] == 0 && zb[3] == 3 && ab[0] == 4 && ab[7] == 11, "reordered data bytes");
        CHECK(strcmp(sg_st_name(f, 0), "z") == 0, "names keep header order");
        sg_st_close(f);
    }

    const char *ok = "{" ENTRY("a", "F32", "[2]", 0, 8) "}";
    write_st_raw(path, ok, strlen(ok), 8, 0);
    f = sg_st_open(path);
    CHECK(f != NULL, "the base case of the malformed set opens: %s", sg_last_error());
    sg_st_close(f);

    /* JSON whitespace around and inside the object (spaces are the padding
     * safetensors writers use) is accepted; a NUL byte, in the padding or in
     * a string, is not. */
    const char *spaced = "  { \"a\" :\t{\"dtype\" : \"F32\",\n \"shape\":[ 2 ] ,\r\n"
                         "\"data_offsets\":[0, 8]}}                                   ";
    write_st_raw(path, spaced, strlen(spaced), 8, 0);
    f = sg_st_open(path);
    CHECK(f != NULL && sg_st_count(f) == 1, "spaces: %s", sg_last_error());
    sg_st_close(f);
    static const char nul_after[] = "{}  \0   ", nul_in[] = "{\"a\0b\":{}}";
    write_st_raw(path, nul_after, sizeof nul_after - 1, 0, 0);
    check_error(sg_st_open(path) ? 0 : -1, path, "end of file expected", "NUL after the object");
    write_st_raw(path, nul_in, sizeof nul_in - 1, 0, 0);
    check_error(sg_st_open(path) ? 0 : -1, path, "control character 0x0", "NUL in a name");

    /* Escapes decode to UTF-8 names and values; a name needs no particular
     * spelling to be found. */
    const char *escaped = "{\"__metadata__\":{\"k\\u00fc\":\"\\ud83d\\ude00 \\\"q\\\"\"},"
                          ENTRY("\\u00fc\\n", "F32", "[1]", 0, 4) "}";
    write_st_raw(path, escaped, strlen(escaped), 4, 0);
    f = sg_st_open(path);
    CHECK(f != NULL, "escapes: %s", sg_last_error());
    if (f) {
        CHECK(sg_st_get(f, "\xc3\xbc\n", NULL, NULL) != NULL, "name \\u00fc\\n not decoded");
        const char *v = sg_st_meta(f, "k\xc3\xbc");
        CHECK(v && strcmp(v, "\xf0\x9f\x98\x80 \"q\"") == 0, "meta value %s", v ? v : "(null)");
        sg_st_close(f);
    }

    /* Nesting far deeper than any header: jansson's depth limit, no crash. */
    enum { DEPTH = 100000 };
    char *deep = sg_xmalloc(2 * DEPTH + 32);   /* the prefix, the brackets, "}" */
    size_t at = (size_t)sprintf(deep, "{\"__metadata__\":");
    for (int i = 0; i < DEPTH; i++) deep[at++] = '[';
    for (int i = 0; i < DEPTH; i++) deep[at++] = ']';
    deep[at++] = '}';
    write_st_raw(path, deep, at, 0, 0);
    check_error(sg_st_open(path) ? 0 : -1, path, "maximum parsing depth", "deep nesting");
    free(deep);
    char expect[64];
    snprintf(expect, sizeof expect, "header length %zu;", strlen(ok) + 1000);
    write_st_raw(path, ok, strlen(ok), 8, 1000);
    check_error(sg_st_open(path) ? 0 : -1, path, expect, "header length too long");
    write_st_raw(path, ok, strlen(ok), 8, -(long)strlen(ok));
    check_error(sg_st_open(path) ? 0 : -1, path, "header length 0", "header length zero");
    /* Lengths past the end of the file, or past the 100,000,000-byte limit in
     * a (sparse) file long enough to hold them: rejected before allocating. */
    static const uint64_t claims[] = {(uint64_t)1 << 40, UINT64_MAX, 100000001};
    for (size_t i = 0; i < sizeof claims / sizeof claims[0]; i++) {
        unsigned char head[8 + 2] = {0, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
        for (int k = 0; k < 8; k++) head[k] = (unsigned char)(claims[i] >> (8 * k));
        write_file(path, head, sizeof head);
        if (claims[i] == 100000001)
            CHECK(truncate(path, 8 + 100000001 + 8) == 0, "cannot make a sparse file");
        snprintf(expect, sizeof expect, "header length %llu;", (unsigned long long)claims[i]);
        check_error(sg_st_open(path) ? 0 : -1, path, expect, "header length past EOF or limit");
    }
    write_file(path, "\x10\0\0", 3);
    check_error(sg_st_open(path) ? 0 : -1, path, "truncated: 3 bytes", "3-byte file");
    check_error(sg_st_open(dir) ? 0 : -1, dir, "is a folder", "a folder");
    path_join(path, sizeof path, dir, "absent.safetensors");
    check_error(sg_st_open(path) ? 0 : -1, path, "cannot open", "absent file");
}

/* Every prefix of a good file and many one-byte corruptions of its header:
 * errors name the file, nothing crashes (run under ASan/UBSan to make this
 * stronger). */
static void test_st_hostile(const char *dir)
{
    char good[600], bad[600];
    printf("safetensors, truncations and corrupted bytes\n");
    path_join(good, sizeof good, dir, "good.safetensors");
    path_join(bad, sizeof bad, dir, "mutant.safetensors");
    float x[6] = {1, 2, 3, 4, 5, 6};
    sg_st_tensor t[3] = {{"w", x, 2, {2, 2}}, {"b", x + 4, 1, {2}}, {"s", x, 0, {0}}};
    const char *meta[2] = {"k", "v\\\"\xc3\xa9"};
    CHECK(sg_st_write(good, t, 3, meta, 1) == 0, "write: %s", sg_last_error());
    size_t len = 0;
    unsigned char *raw = read_file(good, &len);
    int prefix_failures = 0, opened = 0, errors_named = 0, mutants = 0;
    for (size_t cut = 0; cut < len; cut++) {
        write_file(bad, raw, cut);
        sg_st_file *f = sg_st_open(bad);
        if (f) {
            sg_st_close(f);
            continue;
        }
        prefix_failures++;
        errors_named += strstr(sg_last_error(), bad) != NULL;
    }
    CHECK(prefix_failures == (int)len && errors_named == (int)len,
          "%d of %zu prefixes rejected, %d errors named the file", prefix_failures, len,
          errors_named);

    static const unsigned char values[] = {0, 1, ' ', '"', ',', ':', '[', ']', '{', '}', '\\',
                                           '0', '9', 'u', 0x7f, 0x80, 0xc3, 0xff};
    errors_named = 0;
    unsigned char *mut = sg_xmalloc(len);
    for (size_t pos = 0; pos < len && pos < 8 + 256; pos++) {
        for (size_t v = 0; v < sizeof values; v++) {
            if (raw[pos] == values[v]) continue;
            memcpy(mut, raw, len);
            mut[pos] = values[v];
            write_file(bad, mut, len);
            sg_st_file *f = sg_st_open(bad);
            mutants++;
            if (f) {
                opened++;
                for (int i = 0; i < sg_st_count(f); i++) sg_st_get(f, sg_st_name(f, i), NULL, NULL);
                sg_st_close(f);
            } else {
                errors_named += strstr(sg_last_error(), bad) != NULL &&
                                strchr(sg_last_error(), '\n') == NULL;
            }
        }
    }
    CHECK(errors_named == mutants - opened, "%d of %d rejected mutants had a one-line error "
          "naming the file", errors_named, mutants - opened);
    printf("  ok, %zu prefixes rejected; %d one-byte mutants: %d still valid, %d rejected\n", len,
           mutants, opened, mutants - opened);
    free(mut);
    free(raw);
}

/* Entries under dir, at any depth, whose names hold SG_TMP_MARK. */
static int count_temporaries(const char *dir)
{
    int n = 0;
    sg_dir *d = sg_dir_open(dir);
    const char *name;
    while (d && (name = sg_dir_next(d))) {
        char path[1024];
        sg_file_info st;
        n += strstr(name, SG_TMP_MARK) != NULL;
        path_join(path, sizeof path, dir, name);
        if (sg_stat(path, 0, &st) == 0 && st.kind == SG_KIND_DIR) n += count_temporaries(path);
    }
    sg_dir_close(d);
    return n;
}

/* The one float of tensor "v" in path, or -1 when the file does not open. */
static float version_of(const char *path)
{
    sg_st_file *f = sg_st_open(path);
    const float *x = f ? sg_st_get(f, "v", NULL, NULL) : NULL;
    float v = x ? x[0] : -1.0f;
    sg_st_close(f);
    return v;
}

/* sg_st_write_tmp: the old file stands until sg_out_rename; sg_out_abort, a
 * bad argument or a write error leave no temporary behind. */
static void test_st_two_phase(void)
{
    char path[600];
    printf("safetensors, writing in two phases\n");
    const char *d = subdir("two_phase");
    path_join(path, sizeof path, d, "state.safetensors");
    float one = 1, two = 2, three = 3;
    sg_st_tensor t = {"v", &one, 1, {1}};
    const char *meta[2] = {"step", "1"};
    CHECK(sg_st_write(path, &t, 1, meta, 1) == 0, "write: %s", sg_last_error());

    sg_outfile o;
    t.data = &two;
    CHECK(sg_st_write_tmp(&o, path, &t, 1, meta, 1) == 0, "write_tmp: %s", sg_last_error());
    CHECK(version_of(path) == 1 && count_temporaries(d) == 1 && version_of(o.tmp) == 2,
          "before the rename: old file %g, %d temporaries holding %g", version_of(path),
          count_temporaries(d), version_of(o.tmp));
    CHECK(sg_out_rename(&o) == 0, "rename: %s", sg_last_error());
    CHECK(version_of(path) == 2 && count_temporaries(d) == 0, "after the rename: %g, %d left",
          version_of(path), count_temporaries(d));

    t.data = &three;
    CHECK(sg_st_write_tmp(&o, path, &t, 1, meta, 1) == 0, "write_tmp: %s", sg_last_error());
    sg_out_abort(&o);
    CHECK(version_of(path) == 2 && count_temporaries(d) == 0, "after abort: %g, %d left",
          version_of(path), count_temporaries(d));

    /* A failed first phase leaves nothing for sg_out_abort to do. */
    sg_st_tensor twice[2] = {t, t};
    check_error(sg_st_write_tmp(&o, path, twice, 2, NULL, 0), path, "given twice",
                "write_tmp, bad arguments");
    sg_out_abort(&o);
    const char *bad_utf8[2] = {"k", "\xff"};
    check_error(sg_st_write_tmp(&o, path, &t, 1, bad_utf8, 1), path, "not UTF-8",
                "write_tmp, metadata not UTF-8");
    sg_out_abort(&o);

#ifndef _WIN32
    /* A write error, the file size limit standing in for a full disk: -1,
     * the system's reason, no temporary, the old file as it was. */
    enum { BIG = 1 << 16 };
    float *big = sg_xalloc(BIG * sizeof(float));
    sg_st_tensor bt = {"v", big, 1, {BIG}};
    struct rlimit old_limit, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_limit) == 0, "getrlimit");
    small = old_limit;
    small.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0, "setrlimit");
    int rc_tmp = sg_st_write_tmp(&o, path, &bt, 1, NULL, 0);
    char err_tmp[1024];
    snprintf(err_tmp, sizeof err_tmp, "%s", sg_last_error());
    int rc_one = sg_st_write(path, &bt, 1, NULL, 0);
    setrlimit(RLIMIT_FSIZE, &old_limit);
    signal(SIGXFSZ, SIG_DFL);
    check_error(rc_one, path, strerror(EFBIG), "write error, sg_st_write");
    sg_error("%s", err_tmp);
    check_error(rc_tmp, path, strerror(EFBIG), "write error, sg_st_write_tmp");
    sg_out_abort(&o);
    CHECK(version_of(path) == 2 && count_temporaries(d) == 0,
          "after write errors: %g, %d temporaries left", version_of(path), count_temporaries(d));
    sg_free(big);
#else
    printf("  POSIX-only, not run on Windows: a write error (RLIMIT_FSIZE standing in for a "
           "full disk)\n");
#endif
}

/* ---- PNG ------------------------------------------------------------------------ */

static float pattern_pixel(int k, int r, int c)
{
    return (float)((k * 7 + r * 3 + c * 5) % 41 - 20) / 16.0f;
}

/* What a second SIGINT's handler does: every temporary in flight goes, and
 * a file already renamed into place stays. */
static void test_unlink_pending(void)
{
    char a[600], b[600];
    printf("temporaries in flight removed at once\n");
    const char *d = subdir("pending");
    path_join(a, sizeof a, d, "a.safetensors");
    path_join(b, sizeof b, d, "b.safetensors");
    sg_outfile oa, ob;
    CHECK(sg_out_open(&oa, a) == 0 && sg_out_open(&ob, b) == 0, "open: %s", sg_last_error());
    fputs("a", oa.f), fputs("b", ob.f);
    CHECK(sg_out_finish(&oa) == 0 && sg_out_rename(&oa) == 0, "commit a: %s", sg_last_error());
    CHECK(sg_out_finish(&ob) == 0, "finish b: %s", sg_last_error());
    CHECK(count_temporaries(d) == 1, "%d temporaries before", count_temporaries(d));
    sg_out_unlink_pending();
    CHECK(count_temporaries(d) == 0, "%d temporaries after sg_out_unlink_pending",
          count_temporaries(d));
    FILE *f = fopen(a, "rb");
    CHECK(f != NULL, "%s: the renamed file was removed", a);
    if (f) fclose(f);
    sg_out_abort(&ob);
}

static void test_png(const char *out_dir)
{
    static const struct {
        int B, width, height;
    } grids[] = {{100, 242, 392}, {9, 242, 62}, {3, 92, 32}, {1, 28, 28}};
    char path[600];
    printf("PNG grids\n");
    for (size_t g = 0; g < sizeof grids / sizeof grids[0]; g++) {
        int B = grids[g].B, width, height;
        sg_grid_size(B, 28, 28, &width, &height);
        CHECK(width == grids[g].width && height == grids[g].height, "B=%d: %dx%d, expected %dx%d",
              B, width, height, grids[g].width, grids[g].height);
        float *x = sg_xalloc((size_t)B * 784 * sizeof(float));   /* [B, 28 * 28] */
        for (int k = 0; k < B; k++)
            for (int r = 0; r < 28; r++)
                for (int c = 0; c < 28; c++)
                    x[(size_t)k * 784 + r * 28 + c] = pattern_pixel(k, r, c);
        char name[32];
        snprintf(name, sizeof name, "grid_%d.png", B);
        path_join(path, sizeof path, out_dir, name);
        CHECK(sg_save_grid(path, x, B, 28, 28) == 0, "%s: %s", path, sg_last_error());
        size_t len = 0;
        unsigned char *png = read_file(path, &len);
        CHECK(png && len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0, "%s: no PNG signature",
              path);
        free(png);
        sg_free(x);
    }
    static const uint8_t px[3] = {1, 2, 3};
    check_error(sg_png_write_rgb(path, px, 0, 1), path, "expected positive width",
                "zero-width PNG");
    check_error(sg_png_write_rgb("/nonexistent-dir/x.png", px, 1, 1), "/nonexistent-dir/x.png",
                "cannot write", "unwritable PNG");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_io OUT_DIR\n");
        return 2;
    }
    const char *out_dir = argv[1];
    if (sg_mkdir(out_dir) != 0 || !mkdtemp(tmp_root)) {
        fprintf(stderr, "test_io: cannot create %s or a folder in /tmp\n", out_dir);
        return 2;
    }
    const char *env = getenv("SIMDGAN_DATA");
    char real_dir[4096];
    snprintf(real_dir, sizeof real_dir, "%s", env ? env : "");

    test_idx();
    test_find();
    test_real_mnist(real_dir);
    test_st_roundtrip(tmp_root);
    test_st_malformed(tmp_root);
    test_st_hostile(tmp_root);
    test_st_two_phase();
    test_unlink_pending();
    test_png(out_dir);

    char path[600];
    path_join(path, sizeof path, out_dir, "g.safetensors");
    write_model(path, 1, 64, 256);
    path_join(path, sizeof path, out_dir, "d.safetensors");
    write_model(path, 0, 64, 256);

    CHECK(check_remove_tree(tmp_root) == 0, "cannot remove %s: %s", tmp_root, strerror(errno));
    return check_finish("test_io");
}
