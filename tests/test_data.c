/* test_data.c: the integrity of the MNIST / Fashion-MNIST loader's input.
 *
 * Usage: test_data. Builds hostile data files in a fresh folder under /tmp
 * (removed at the end) and checks that sg_mnist_load refuses each with one
 * line naming the file and the fault:
 *   - gzip: a trailer cut by 1..8 bytes, a wrong CRC-32, a wrong ISIZE, data
 *     after the last member (refused) and several members (accepted, same
 *     data as one);
 *   - bounds: a gzip bomb behind a 10-image header stops just past the
 *     declared payload, a labels header claiming 2^32 - 1 entries is refused
 *     before its payload is read, and both headers are checked before either
 *     payload; a child process does the bomb loads so that its peak memory
 *     can be measured (it must stay far below the bomb's size);
 *   - names: a FIFO (with an alarm, so a blocking open fails the test instead
 *     of hanging it), a folder, a symlink loop and a broken symlink where a
 *     data file should be;
 *   - recognition: ds.crc is the CRC-32 of the image payload then the label
 *     payload; with $SIMDGAN_DATA (MNIST) and /usr/share/datasets/fashion-mnist
 *     present, each is recognised as itself and refused as the other, a mixed
 *     pair is refused, and one changed pixel makes the files unknown.
 * Test files are written with zlib's deflate in gzip mode.
 *
 * Windows (under Wine): all of it but what needs POSIX files or processes:
 * the FIFOs, the symlinks, and the peak memory of the bomb loads (a forked
 * child's); the bomb loads themselves run in the test's own process, and the
 * known datasets' files are copied where Linux links them. */
#define _XOPEN_SOURCE 700
#include "check.h"
#include "mnist.h"
#include "platform.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#ifndef _WIN32
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#endif

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define IMAGES_GZ "train-images-idx3-ubyte.gz"
#define LABELS_GZ "train-labels-idx1-ubyte.gz"

static char tmp_root[] = "/tmp/simdgan_test_data_XXXXXX";

/* ---- buffers and files ------------------------------------------------------ */

typedef struct buf {
    unsigned char *p;
    size_t len, cap;
} buf;

static void buf_put(buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) {
            fprintf(stderr, "test_data: out of memory\n");
            exit(1);
        }
        b->cap = cap;
    }
    if (len) memcpy(b->p + b->len, data, len);
    b->len += len;
}

static const char *subdir(const char *name)
{
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", tmp_root, name);
    if (sg_mkdir(p) != 0) {
        fprintf(stderr, "test_data: %s\n", sg_last_error());
        exit(1);
    }
    return p;
}

static const char *join(const char *dir, const char *name)
{
    static char path[4][600];
    static int next;
    char tmp[600], *p = path[next++ % 4];
    snprintf(tmp, sizeof tmp, "%s/%s", dir, name);   /* dir may be an older result */
    memcpy(p, tmp, sizeof tmp);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "test_data: cannot write %s\n", path);
        exit(1);
    }
}

static buf read_file(const char *path)
{
    buf b = {0};
    unsigned char chunk[1 << 16];
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "test_data: cannot read %s\n", path);
        exit(1);
    }
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) buf_put(&b, chunk, r);
    fclose(f);
    return b;
}

/* dst names the file src: a symlink on POSIX, a copy on Windows (where
 * making symlinks takes a privilege). */
static int link_or_copy(const char *src, const char *dst)
{
#ifndef _WIN32
    return symlink(src, dst);
#else
    buf b = read_file(src);
    write_file(dst, b.p, b.len);
    free(b.p);
    return 0;
#endif
}

/* One gzip member holding data, then zeros more zero bytes (fed in chunks,
 * so a bomb never sits in memory uncompressed), appended to out. */
static void gzip_member(buf *out, const void *data, size_t len, size_t zeros)
{
    static const unsigned char zero[1 << 16];
    unsigned char chunk[1 << 16];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        exit(1);
    int flush;
    do {
        if (len) {
            size_t n = len < sizeof chunk ? len : sizeof chunk;
            zs.next_in = (unsigned char *)data;
            zs.avail_in = (uInt)n;
            data = (const unsigned char *)data + n;
            len -= n;
        } else {
            size_t n = zeros < sizeof zero ? zeros : sizeof zero;
            zs.next_in = (unsigned char *)zero;
            zs.avail_in = (uInt)n;
            zeros -= n;
        }
        flush = len || zeros ? Z_NO_FLUSH : Z_FINISH;
        do {
            zs.next_out = chunk;
            zs.avail_out = sizeof chunk;
            if (deflate(&zs, flush) == Z_STREAM_ERROR) exit(1);
            buf_put(out, chunk, sizeof chunk - zs.avail_out);
        } while (zs.avail_out == 0);
    } while (flush != Z_FINISH);
    deflateEnd(&zs);
}

/* ---- IDX files -------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Uncompressed IDX bytes: images (n x 28 x 28, pixel (k, j) = 31k + j + 7)
 * or labels (k mod 10), header included. */
static buf idx_bytes(int images, uint32_t n)
{
    buf b = {0};
    unsigned char head[16];
    put_be32(head, images ? 0x803 : 0x801);
    put_be32(head + 4, n);
    put_be32(head + 8, 28);
    put_be32(head + 12, 28);
    buf_put(&b, head, images ? 16 : 8);
    for (uint32_t k = 0; k < n; k++) {
        if (images) {
            unsigned char px[784];
            for (int j = 0; j < 784; j++) px[j] = (unsigned char)(31 * k + (uint32_t)j + 7);
            buf_put(&b, px, sizeof px);
        } else {
            unsigned char l = (unsigned char)(k % 10);
            buf_put(&b, &l, 1);
        }
    }
    return b;
}

/* A good gzip pair of n items each in dir. */
static void write_set(const char *dir, uint32_t n)
{
    for (int images = 0; images < 2; images++) {
        buf raw = idx_bytes(images, n), gz = {0};
        gzip_member(&gz, raw.p, raw.len, 0);
        write_file(join(dir, images ? IMAGES_GZ : LABELS_GZ), gz.p, gz.len);
        free(raw.p);
        free(gz.p);
    }
}

/* The load must fail with one line naming path and containing what. */
static void check_refused(const char *dir, const char *path, const char *what, const char *label)
{
    sg_dataset ds;
    int ret = sg_mnist_load(&ds, dir, 1);
    const char *err = sg_last_error();
    CHECK(ret == -1, "%s: expected failure, got %d", label, ret);
    CHECK(ds.images == NULL && ds.labels == NULL && ds.n == 0, "%s: dataset not left empty", label);
    CHECK(strstr(err, path) != NULL, "%s: error does not name %s: %s", label, path, err);
    CHECK(strstr(err, what) != NULL, "%s: error lacks '%s': %s", label, what, err);
    CHECK(strchr(err, '\n') == NULL, "%s: error is not one line: %s", label, err);
    if (ret == 0) sg_dataset_free(&ds);
    printf("  ok, %s: %s\n", label, err);
}

/* The load must succeed with the synthetic pattern of n items. */
static void check_loads(const char *dir, uint32_t n, const char *label)
{
    sg_dataset ds;
    int ret = sg_mnist_load(&ds, dir, 1);
    CHECK(ret == 0, "%s: %s", label, sg_last_error());
    if (ret != 0) return;
    buf im = idx_bytes(1, n), lb = idx_bytes(0, n);
    CHECK(ds.n == n && memcmp(ds.images, im.p + 16, (size_t)n * 784) == 0 &&
              memcmp(ds.labels, lb.p + 8, n) == 0,
          "%s: n %zu or the bytes differ from what was written", label, ds.n);
    uint32_t crc = (uint32_t)crc32(crc32(0L, im.p + 16, (uInt)n * 784), lb.p + 8, n);
    CHECK(ds.crc == crc, "%s: crc 0x%08x, expected 0x%08x", label, ds.crc, crc);
    CHECK(ds.known == NULL, "%s: synthetic files recognised as %s", label, ds.known);
    free(im.p);
    free(lb.p);
    sg_dataset_free(&ds);
    printf("  ok, %s\n", label);
}

/* ---- gzip framing ------------------------------------------------------------ */

static void test_gzip(void)
{
    printf("gzip framing\n");
    const char *d = subdir("good");
    write_set(d, 10);
    check_loads(d, 10, "one member each");

    sg_dataset ds;
    CHECK(sg_mnist_load(&ds, d, 1) == 0, "good: %s", sg_last_error());
    CHECK(sg_dataset_check(&ds, "mnist", d) == 0 && sg_dataset_check(&ds, "fashion-mnist", d) == 0,
          "unknown files must pass either check: %s", sg_last_error());
    CHECK(sg_dataset_check(&ds, "cifar", d) == -1 && strstr(sg_last_error(), "cifar"),
          "unknown dataset name: %s", sg_last_error());
    sg_dataset_free(&ds);

    /* The labels' trailer (CRC-32, ISIZE) cut by 1..8 bytes, then the images'. */
    d = subdir("cut");
    write_set(d, 10);
    const char *lpath = join(d, LABELS_GZ), *ipath = join(d, IMAGES_GZ);
    buf labels = read_file(lpath), images = read_file(ipath);
    for (size_t cut = 1; cut <= 8; cut++) {
        char label[64];
        snprintf(label, sizeof label, "labels trailer cut by %zu", cut);
        write_file(lpath, labels.p, labels.len - cut);
        check_refused(d, lpath, "truncated gzip stream", label);
    }
    write_file(lpath, labels.p, labels.len);
    write_file(ipath, images.p, images.len - 8);
    check_refused(d, ipath, "truncated gzip stream", "images trailer cut by 8");
    write_file(ipath, images.p, images.len);

    /* One bit wrong in the CRC-32, then in ISIZE. */
    labels.p[labels.len - 8] ^= 0x01;
    write_file(lpath, labels.p, labels.len);
    check_refused(d, lpath, "incorrect data check", "bad CRC-32");
    labels.p[labels.len - 8] ^= 0x01;
    labels.p[labels.len - 4] ^= 0x01;
    write_file(lpath, labels.p, labels.len);
    check_refused(d, lpath, "incorrect length check", "bad ISIZE");
    labels.p[labels.len - 4] ^= 0x01;

    /* After the last member: text, zero padding, half a gzip magic. */
    static const struct {
        const char *bytes;
        size_t len;
        const char *label;
    } tails[] = {{"garbage", 7, "trailing text"},
                 {"\0\0\0\0\0\0\0\0", 8, "trailing zeros"},
                 {"\x1f", 1, "trailing half magic"}};
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        buf b = {0};
        buf_put(&b, labels.p, labels.len);
        buf_put(&b, tails[t].bytes, tails[t].len);
        write_file(lpath, b.p, b.len);
        check_refused(d, lpath, "trailing data after the gzip stream", tails[t].label);
        free(b.p);
    }
    write_file(lpath, labels.p, labels.len);
    check_loads(d, 10, "restored");
    free(labels.p);
    free(images.p);

    /* Several members (RFC 1952): the images split in three, one empty, the
     * header alone in the first; the labels in two. Same data as one member. */
    d = subdir("members");
    buf im = idx_bytes(1, 10), lb = idx_bytes(0, 10), gz = {0};
    gzip_member(&gz, im.p, 16, 0);
    gzip_member(&gz, NULL, 0, 0);
    gzip_member(&gz, im.p + 16, 1000, 0);
    gzip_member(&gz, im.p + 1016, im.len - 1016, 0);
    write_file(join(d, IMAGES_GZ), gz.p, gz.len);
    gz.len = 0;
    gzip_member(&gz, lb.p, 11, 0);
    gzip_member(&gz, lb.p + 11, lb.len - 11, 0);
    write_file(join(d, LABELS_GZ), gz.p, gz.len);
    check_loads(d, 10, "concatenated members");

    /* A member cut inside a multi-member file, and garbage after the last. */
    write_file(join(d, LABELS_GZ), gz.p, gz.len - 3);
    check_refused(d, join(d, LABELS_GZ), "truncated gzip stream", "second member cut");
    buf_put(&gz, "x", 1);
    write_file(join(d, LABELS_GZ), gz.p, gz.len);
    check_refused(d, join(d, LABELS_GZ), "trailing data after the gzip stream",
                  "garbage after the second member");

    /* A plain IDX file under the .gz name (a browser that decompressed the
     * download but kept the name) reads as plain IDX. */
    write_file(join(d, LABELS_GZ), lb.p, lb.len);
    check_loads(d, 10, "plain IDX under the .gz name");
    free(im.p);
    free(lb.p);
    free(gz.p);
}

/* ---- bounds ------------------------------------------------------------------ */

/* The bomb loads: a header declaring 10 images followed by 50 MB of zeros,
 * and a labels header claiming 2^32 - 1 entries followed by 50 MB of zeros.
 * On POSIX a child runs them, so that their peak memory can be measured. */
static void bomb_loads(void)
{
    const size_t bomb = (size_t)50 << 20;
    const char *d = subdir("bomb");
    write_set(d, 10);
    buf im = idx_bytes(1, 10), gz = {0};
    gzip_member(&gz, im.p, im.len, bomb);
    write_file(join(d, IMAGES_GZ), gz.p, gz.len);
    check_refused(d, join(d, IMAGES_GZ), "more than the 7840 bytes declared", "gzip bomb");

    d = subdir("huge_labels");
    write_set(d, 10);
    unsigned char head[8];
    put_be32(head, 0x801);
    put_be32(head + 4, 0xffffffffu);
    gz.len = 0;
    gzip_member(&gz, head, sizeof head, bomb);
    write_file(join(d, LABELS_GZ), gz.p, gz.len);
    check_refused(d, join(d, LABELS_GZ), "header says 4294967295 labels; expected at most 1000000",
                  "labels claiming 2^32 - 1 (gzip bomb)");
    write_file(join(d, LABELS_GZ), head, sizeof head);
    check_refused(d, join(d, LABELS_GZ), "header says 4294967295 labels; expected at most 1000000",
                  "labels claiming 2^32 - 1 (plain header)");
    free(im.p);
    free(gz.p);
}

static void test_bounds(void)
{
    printf("bounds\n");
#ifndef _WIN32
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed");
    if (pid == 0) {   /* the child: exits with its number of failures */
        bomb_loads();
        fflush(stdout);
        _exit(check_failures > 255 ? 255 : check_failures);
    }
    int status = 0;
    struct rusage ru;
    CHECK(waitpid(pid, &status, 0) == pid && getrusage(RUSAGE_CHILDREN, &ru) == 0,
          "waitpid or getrusage failed");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the bomb loads failed (status 0x%x)",
          status);
    /* ru_maxrss (of the only child so far) is in KiB. The child holds the
     * compressed bombs (about 50 KB each) and the declared payloads; 50 MB of
     * decompressed zeros would show. */
    long peak_mb = ru.ru_maxrss / 1024;
    CHECK(peak_mb < 24, "the bomb loads peaked at %ld MB; expected far below the 50 MB bomb",
          peak_mb);
    printf("  ok, peak memory of the bomb loads: %ld MB\n", peak_mb);
#else
    bomb_loads();
#endif

    /* Both headers before either payload: the images' gzip data is cut after
     * the header, but the label count disagrees, and that is what is said. */
    const char *d = subdir("headers_first");
    write_set(d, 10);
    buf im = idx_bytes(1, 10), lb = idx_bytes(0, 9), gz = {0};
    gzip_member(&gz, im.p, im.len, 0);
    write_file(join(d, IMAGES_GZ), gz.p, gz.len / 2);
    gz.len = 0;
    gzip_member(&gz, lb.p, lb.len, 0);
    write_file(join(d, LABELS_GZ), gz.p, gz.len);
    check_refused(d, join(d, LABELS_GZ), "9 labels for the 10 images", "headers checked first");
    write_set(d, 10);
    write_file(join(d, IMAGES_GZ), gz.p, 0);
    check_refused(d, join(d, IMAGES_GZ), "expected a 16-byte IDX header", "empty .gz file");
    free(im.p);
    free(lb.p);
    free(gz.p);
}

/* ---- what is under the name -------------------------------------------------- */

static void test_names(void)
{
    printf("names that are not regular files\n");
    const char *d, *p;
#ifndef _WIN32
    d = subdir("fifo");
    write_set(d, 10);
    p = join(d, IMAGES_GZ);
    remove(p);
    CHECK(mkfifo(p, 0600) == 0, "mkfifo %s", p);
    check_refused(d, p, "is a FIFO; expected a regular file", "FIFO");
    /* The folder search counts the name, so that the load can say what it is. */
    char out[4096];
    CHECK(sg_data_find(out, sizeof out, d, "mnist") == 0, "find with a FIFO: %s", sg_last_error());
#endif

    d = subdir("dir");
    write_set(d, 10);
    p = join(d, LABELS_GZ);
    remove(p);
    CHECK(sg_mkdir(p) == 0, "mkdir %s", p);
    check_refused(d, p, "is a directory; expected a regular file", "directory");

#ifndef _WIN32
    d = subdir("loop");
    write_set(d, 10);
    p = join(d, IMAGES_GZ);
    remove(p);
    CHECK(symlink(IMAGES_GZ, p) == 0, "symlink %s", p);
    check_refused(d, p, "symlink loop", "symlink loop");

    d = subdir("broken");
    write_set(d, 10);
    p = join(d, LABELS_GZ);
    remove(p);
    CHECK(symlink("nowhere", p) == 0, "symlink %s", p);
    check_refused(d, p, "broken symlink", "broken symlink");

    /* The extracted name as a FIFO, with no .gz beside it. */
    d = subdir("fifo_plain");
    write_set(d, 10);
    remove(join(d, IMAGES_GZ));
    p = join(d, "train-images-idx3-ubyte");
    CHECK(mkfifo(p, 0600) == 0, "mkfifo %s", p);
    check_refused(d, p, "is a FIFO", "FIFO, extracted name");

    /* A symlink to a good file is fine. */
    d = subdir("link");
    char good[600];
    snprintf(good, sizeof good, "%s", join(tmp_root, "good"));
    CHECK(symlink(join(good, IMAGES_GZ), join(d, IMAGES_GZ)) == 0, "symlink");
    CHECK(symlink(join(good, LABELS_GZ), join(d, LABELS_GZ)) == 0, "symlink");
    check_loads(d, 10, "symlinks to good files");
#endif
}

/* ---- the known datasets ------------------------------------------------------ */

/* dir holds `name` (MNIST or Fashion-MNIST, `dataset` being its flag value,
 * `other` the other's): both sets load as known, the train set's CRC is
 * crc_train, and the check for the other dataset fails naming both. */
static void check_known(const char *dir, const char *dataset, const char *other, const char *name,
                        const char *other_name, uint32_t crc_train, uint32_t crc_test)
{
    sg_dataset ds;
    for (int train = 1; train >= 0; train--) {
        const char *set = train ? "train" : "t10k";
        int ret = sg_mnist_load(&ds, dir, train);
        CHECK(ret == 0, "%s %s: %s", dir, set, sg_last_error());
        if (ret != 0) continue;
        uint32_t want = train ? crc_train : crc_test;
        CHECK(ds.known && strcmp(ds.known, dataset) == 0, "%s %s: known %s, expected %s", dir,
              set, ds.known ? ds.known : "NULL", dataset);
        CHECK(ds.crc == want, "%s %s: crc 0x%08x, expected 0x%08x", dir, set, ds.crc, want);
        CHECK(sg_dataset_check(&ds, dataset, dir) == 0, "%s: %s", dataset, sg_last_error());
        CHECK(sg_dataset_check(&ds, other, dir) == -1, "%s %s accepted as %s", dir, set, other);
        const char *err = sg_last_error();
        char is[64], isnt[64];
        snprintf(is, sizeof is, "these are %s's files", name);
        snprintf(isnt, sizeof isnt, "not %s's", other_name);
        CHECK(strstr(err, dir) && strstr(err, is) && strstr(err, isnt) && !strchr(err, '\n'),
              "check message: %s", err);
        printf("  ok, %s %s: %s, crc 0x%08x; as %s: %s\n", dir, set, ds.known, ds.crc, other, err);
        sg_dataset_free(&ds);
    }
}

static void test_known(const char *mnist_dir)
{
    printf("known datasets\n");
    int have_fashion = access(FASHION_DIR "/" IMAGES_GZ, R_OK) == 0;
    if (mnist_dir)
        check_known(mnist_dir, "mnist", "fashion-mnist", "MNIST", "Fashion-MNIST", 0xfe16542cu,
                    0x190e897bu);
    else
        printf("  skipped MNIST: SIMDGAN_DATA is not set\n");
    if (have_fashion)
        check_known(FASHION_DIR, "fashion-mnist", "mnist", "Fashion-MNIST", "MNIST", 0xa8c91d78u,
                    0xd12e98e2u);
    else
        printf("  skipped Fashion-MNIST: %s is absent\n", FASHION_DIR);
    if (!mnist_dir) return;

    /* MNIST's test images with labels of our own (10000 of them, unknown):
     * still MNIST. One pixel changed: unknown, so either flag is accepted. */
    const char *d = subdir("mnist_images");
    char src[4096];
    snprintf(src, sizeof src, "%s/t10k-images-idx3-ubyte.gz", mnist_dir);
    CHECK(link_or_copy(src, join(d, "t10k-images-idx3-ubyte.gz")) == 0, "link %s", src);
    buf lb = idx_bytes(0, 10000), gz = {0};
    gzip_member(&gz, lb.p, lb.len, 0);
    write_file(join(d, "t10k-labels-idx1-ubyte.gz"), gz.p, gz.len);
    sg_dataset ds;
    CHECK(sg_mnist_load(&ds, d, 0) == 0 && ds.known && strcmp(ds.known, "mnist") == 0,
          "MNIST images, own labels: %s", ds.known ? ds.known : sg_last_error());
    if (ds.images) {
        buf im = {0}, out = {0};
        unsigned char head[16];
        put_be32(head, 0x803);
        put_be32(head + 4, 10000);
        put_be32(head + 8, 28);
        put_be32(head + 12, 28);
        buf_put(&im, head, sizeof head);
        buf_put(&im, ds.images, ds.n * 784);
        im.p[16 + 5000 * 784 + 400] ^= 1;
        gzip_member(&out, im.p, im.len, 0);
        remove(join(d, "t10k-images-idx3-ubyte.gz"));
        write_file(join(d, "t10k-images-idx3-ubyte.gz"), out.p, out.len);
        sg_dataset_free(&ds);
        CHECK(sg_mnist_load(&ds, d, 0) == 0 && ds.known == NULL, "one pixel changed: known %s",
              ds.known ? ds.known : "NULL");
        CHECK(sg_dataset_check(&ds, "fashion-mnist", d) == 0, "changed: %s", sg_last_error());
        sg_dataset_free(&ds);
        free(im.p);
        free(out.p);
    }
    printf("  ok, MNIST images with other labels: mnist; one pixel changed: unknown\n");
    free(lb.p);
    free(gz.p);

    if (!have_fashion) return;
    /* MNIST's test images beside Fashion-MNIST's test labels. */
    d = subdir("mixed");
    CHECK(link_or_copy(src, join(d, "t10k-images-idx3-ubyte.gz")) == 0, "link %s", src);
    CHECK(link_or_copy(FASHION_DIR "/t10k-labels-idx1-ubyte.gz",
                       join(d, "t10k-labels-idx1-ubyte.gz")) == 0, "link Fashion-MNIST's labels");
    int ret = sg_mnist_load(&ds, d, 0);
    const char *err = sg_last_error();
    CHECK(ret == -1 && strstr(err, "Fashion-MNIST's labels") && strstr(err, "MNIST's images"),
          "mixed pair: %d %s", ret, err);
    if (ret == 0) sg_dataset_free(&ds);
    printf("  ok, mixed pair: %s\n", err);
}

int main(void)
{
#ifndef _WIN32
    /* A FIFO opened for reading blocks until a writer comes: a loader that
     * does so must fail the test, not hang it. */
    alarm(120);
#else
    printf("POSIX-only, not run on Windows: FIFOs, symlinks (a loop, a broken one, links to good "
           "files), the bomb loads' peak memory (a forked child's)\n");
#endif
    if (!mkdtemp(tmp_root)) {
        fprintf(stderr, "test_data: cannot create a folder in /tmp\n");
        return 2;
    }
    const char *env = getenv("SIMDGAN_DATA");
    /* Under an emulator (the aarch64 build's tests, SIMDGAN_TEST_EMULATED)
     * the bombs and the real data sets take many minutes, and peak memory
     * is the emulator's: the native run covers them. */
    const int emulated = getenv("SIMDGAN_TEST_EMULATED") != NULL;
    /* Bounds first: the child's peak memory includes what the parent had
     * touched before the fork. */
    if (!emulated)
        test_bounds();
    else
        printf("bounds, known datasets: not run under an emulator\n");
    test_gzip();
    test_names();
    if (!emulated) test_known(env && env[0] ? env : NULL);
    CHECK(check_remove_tree(tmp_root) == 0, "cannot remove %s: %s", tmp_root, strerror(errno));
    return check_finish("test_data");
}
