/* mnist.c: finding and loading the MNIST / Fashion-MNIST IDX files.
 *
 * The files are untrusted input, so nothing is allocated or decompressed
 * before it is known to be wanted. Each name is checked with stat first (a
 * FIFO would block open, a folder or a symlink loop would read as "not
 * found") and opened non-blocking. A file starting with the gzip magic is
 * decompressed with zlib's inflate, one member after another (RFC 1952 allows
 * several), each with its CRC-32 and ISIZE trailer checked, and nothing but
 * another member may follow one; any other file is read as plain IDX. The
 * 16- or 8-byte headers of both files are read and checked (magic, 28x28, a
 * count in 1..SG_MNIST_MAX_ITEMS, equal counts) before either payload, then
 * exactly the declared payload is allocated and filled, and at most a few
 * KiB more are decompressed to tell an overlong file from a complete one: a
 * gzip bomb costs its header's worth of memory and stops early. A CRC-32 of
 * each payload, against a table of the published files, tells MNIST from
 * Fashion-MNIST. Every error names the file and what was expected. */
#define _POSIX_C_SOURCE 200809L /* read, close */
#include "mnist.h"

#include "platform.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define MNIST_SIDE 28
#define GZ_IN_CAP ((size_t)1 << 16)   /* compressed bytes read at a time    */
#define OVERRUN_PROBE 4096            /* bytes decompressed past the payload
                                       * to find the end of the data         */

/* The published files: payload size (from the count) and CRC-32 of the
 * payload after the IDX header, measured on the files torchvision downloads. */
typedef struct known_file {
    const char *dataset;   /* "mnist" or "fashion-mnist"                     */
    int images;            /* images file, else labels                       */
    uint32_t n;            /* items in the header                            */
    uint32_t crc;          /* crc32 of the payload                           */
} known_file;

static const known_file known_files[] = {
    {"mnist", 1, 60000, 0x96a87c63u},         /* train-images-idx3-ubyte */
    {"mnist", 0, 60000, 0xba07e8efu},         /* train-labels-idx1-ubyte */
    {"mnist", 1, 10000, 0xe4ca5f57u},         /* t10k-images-idx3-ubyte  */
    {"mnist", 0, 10000, 0xee8604d9u},         /* t10k-labels-idx1-ubyte  */
    {"fashion-mnist", 1, 60000, 0xae65dccdu},
    {"fashion-mnist", 0, 60000, 0x2ed6e46au},
    {"fashion-mnist", 1, 10000, 0x12728439u},
    {"fashion-mnist", 0, 10000, 0x242bc73fu},
};

static const char *recognise(int images, uint32_t n, uint32_t crc)
{
    for (size_t i = 0; i < sizeof known_files / sizeof known_files[0]; i++) {
        const known_file *k = &known_files[i];
        if (k->images == images && k->n == n && k->crc == crc) return k->dataset;
    }
    return NULL;
}

static const char *pretty(const char *dataset)
{
    return strcmp(dataset, "mnist") == 0 ? "MNIST" : "Fashion-MNIST";
}

static const char *kind_of(sg_kind kind)
{
    switch (kind) {
    case SG_KIND_DIR: return "a directory";
    case SG_KIND_FIFO: return "a FIFO";
    case SG_KIND_SOCKET: return "a socket";
    case SG_KIND_CHAR: return "a character device";
    case SG_KIND_BLOCK: return "a block device";
    default: return "not a regular file";
    }
}

static int is_dir(const char *path)
{
    sg_file_info st;
    return sg_stat(path, 1, &st) == 0 && st.kind == SG_KIND_DIR;
}

/* Whether path names a regular file (*exists = 1) or nothing (0); -1 with an
 * error naming what is there instead (a FIFO, a folder, a symlink loop...). */
static int probe(const char *path, int *exists)
{
    sg_file_info st;
    *exists = 0;
    if (sg_stat(path, 1, &st) == 0) {
        if (st.kind == SG_KIND_FILE) {
            *exists = 1;
            return 0;
        }
        return sg_error("%s: is %s; expected a regular file", path, kind_of(st.kind));
    }
    if (errno == ELOOP) return sg_error("%s: symlink loop; expected a regular file", path);
    if (errno == ENOENT || errno == ENOTDIR) {
        if (sg_stat(path, 0, &st) == 0 && st.kind == SG_KIND_LINK)
            return sg_error("%s: broken symlink (its target does not exist); expected a regular "
                            "file", path);
        return 0;
    }
    return sg_error("%s: cannot access (%s)", path, strerror(errno));
}

/* "<dir>/<name>.gz" if it exists, else "<dir>/<name>"; -1 when neither does
 * or when one is there but is not a regular file. */
static int pick_file(char *out, size_t cap, const char *dir, const char *name)
{
    int exists, len = snprintf(out, cap, "%s/%s.gz", dir, name);
    if (len < 0 || (size_t)len >= cap) return sg_error("%s/%s.gz: path too long", dir, name);
    if (probe(out, &exists) != 0) return -1;
    if (exists) return 0;
    snprintf(out, cap, "%s/%s", dir, name);
    if (probe(out, &exists) != 0) return -1;
    if (exists) return 0;
    return sg_error("%s/%s.gz: not found (nor %s/%s); expected the MNIST file in %s", dir, name,
                    dir, name, dir);
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* One IDX file open for reading, plain or gzip (decompressed as read). */
typedef struct idx_file {
    const char *path;
    int fd;
    uint64_t size;          /* from fstat, for a plain file's size check      */
    int gz;                 /* starts with the gzip magic                     */
    int zlive;              /* zs initialised                                 */
    int at_eof;             /* read() returned 0                              */
    int member_end;         /* inflate finished a member (trailer checked)    */
    int done;               /* the data ended cleanly                         */
    long long consumed;     /* compressed bytes read from the file            */
    z_stream zs;
    unsigned char *in;      /* [GZ_IN_CAP] compressed bytes read ahead        */
} idx_file;

static void idx_close(idx_file *f)
{
    if (f->zlive) inflateEnd(&f->zs);
    if (f->fd >= 0) close(f->fd);
    free(f->in);
    f->zlive = 0;
    f->fd = -1;
    f->in = NULL;
}

/* read() until n bytes or the end of the file; *got is how many came. */
static int read_full(idx_file *f, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t chunk = n - *got;
        if (chunk > (size_t)1 << 30) chunk = (size_t)1 << 30;
        ssize_t r = read(f->fd, buf + *got, chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return sg_error("%s: read failed (%s)", f->path, strerror(errno));
        if (r == 0) break;
        *got += (size_t)r;
    }
    return 0;
}

static int idx_open(idx_file *f, const char *path)
{
    sg_file_info st;
    memset(f, 0, sizeof *f);
    f->path = path;
    /* Non-blocking: should the name have become a FIFO since pick_file
     * looked, open returns at once and fstat below refuses it. */
    f->fd = sg_open_read(path);
    if (f->fd < 0) {
        if (errno == ELOOP) return sg_error("%s: symlink loop; expected a regular file", path);
        return sg_error("%s: cannot open (%s)", path, strerror(errno));
    }
    if (sg_fstat(f->fd, &st) != 0) {
        sg_error("%s: cannot stat (%s)", path, strerror(errno));
        goto fail;
    }
    if (st.kind != SG_KIND_FILE) {
        sg_error("%s: is %s; expected a regular file", path, kind_of(st.kind));
        goto fail;
    }
    f->size = st.size;
    unsigned char magic[2];
    long long r = sg_pread(f->fd, magic, 2, 0);
    if (r < 0) {
        sg_error("%s: read failed (%s)", path, strerror(errno));
        goto fail;
    }
    f->gz = r == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (!f->gz) return 0;
    f->in = malloc(GZ_IN_CAP);
    if (!f->in) {
        sg_error("%s: out of memory", path);
        goto fail;
    }
    /* 16 + MAX_WBITS: a gzip wrapper, whose trailer inflate checks. */
    if (inflateInit2(&f->zs, 16 + MAX_WBITS) != Z_OK) {
        sg_error("%s: cannot start zlib's inflate", path);
        goto fail;
    }
    f->zlive = 1;
    return 0;

fail:
    idx_close(f);
    return -1;
}

/* Makes at least need compressed bytes available unless the file ends. */
static int gz_fill(idx_file *f, size_t need)
{
    while (f->zs.avail_in < need && !f->at_eof) {
        if (f->zs.avail_in) memmove(f->in, f->zs.next_in, f->zs.avail_in);
        f->zs.next_in = f->in;
        size_t got;
        if (read_full(f, f->in + f->zs.avail_in, GZ_IN_CAP - f->zs.avail_in, &got) != 0) return -1;
        if (got == 0) f->at_eof = 1;
        f->zs.avail_in += (uInt)got;
        f->consumed += (long long)got;
    }
    return 0;
}

/* Decompresses up to want bytes into out. *got < want only where the data
 * ended cleanly: every member complete with a correct trailer, nothing after
 * the last. */
static int gz_read(idx_file *f, unsigned char *out, size_t want, size_t *got)
{
    *got = 0;
    while (*got < want && !f->done) {
        if (f->member_end) {
            /* After a member: the end of the file, or another member. */
            if (gz_fill(f, 2) != 0) return -1;
            if (f->zs.avail_in == 0) {
                f->done = 1;
                break;
            }
            if (f->zs.avail_in < 2 || f->zs.next_in[0] != 0x1f || f->zs.next_in[1] != 0x8b) {
                long long at = f->consumed - (long long)f->zs.avail_in;
                return sg_error("%s: trailing data after the gzip stream (at byte %lld of %lld); "
                                "expected the file to end there or another gzip member",
                                f->path, at, (long long)f->size);
            }
            inflateReset(&f->zs);
            f->member_end = 0;
        }
        if (f->zs.avail_in == 0 && gz_fill(f, 1) != 0) return -1;
        size_t room = want - *got;
        if (room > (size_t)1 << 30) room = (size_t)1 << 30;
        f->zs.next_out = out + *got;
        f->zs.avail_out = (uInt)room;
        int r = inflate(&f->zs, Z_NO_FLUSH);
        *got += room - f->zs.avail_out;
        if (r == Z_STREAM_END) {
            f->member_end = 1;
        } else if (r == Z_BUF_ERROR && f->zs.avail_in == 0 && f->at_eof) {
            return sg_error("%s: truncated gzip stream (it ends before its CRC-32 trailer); "
                            "expected a complete .gz file", f->path);
        } else if (r == Z_MEM_ERROR) {
            return sg_error("%s: out of memory decompressing", f->path);
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            return sg_error("%s: corrupt gzip data (zlib: %s); expected a valid .gz file",
                            f->path, f->zs.msg ? f->zs.msg : "error");
        }
    }
    return 0;
}

/* Up to want bytes of IDX data (decompressed when gzip); *got < want only at
 * a clean end of the data. */
static int idx_read(idx_file *f, unsigned char *out, size_t want, size_t *got)
{
    return f->gz ? gz_read(f, out, want, got) : read_full(f, out, want, got);
}

/* One IDX file's header, checked. */
typedef struct idx_head {
    const char *what;       /* "images" or "labels", for messages             */
    size_t head_len;        /* 16 or 8                                        */
    uint32_t n;             /* items                                          */
    size_t payload;         /* n * 784 or n bytes                             */
} idx_head;

static int read_head(idx_file *f, uint32_t magic, idx_head *h)
{
    int images = magic == IDX_IMAGES_MAGIC;
    unsigned char head[16];
    size_t got;
    h->what = images ? "images" : "labels";
    h->head_len = images ? 16 : 8;
    if (idx_read(f, head, h->head_len, &got) != 0) return -1;
    if (got < h->head_len)
        return sg_error("%s: truncated: %zu bytes; expected a %zu-byte IDX header", f->path, got,
                        h->head_len);
    uint32_t m = be32(head);
    if (m != magic)
        return sg_error("%s: magic 0x%08x; expected 0x%08x (IDX %s)", f->path, m, magic, h->what);
    h->n = be32(head + 4);
    if (h->n == 0) return sg_error("%s: header says 0 %s; expected at least one", f->path, h->what);
    if (images) {
        uint32_t rows = be32(head + 8), cols = be32(head + 12);
        if (rows != MNIST_SIDE || cols != MNIST_SIDE)
            return sg_error("%s: %s are %ux%u; expected %dx%d", f->path, h->what, rows, cols,
                            MNIST_SIDE, MNIST_SIDE);
    }
    if (h->n > SG_MNIST_MAX_ITEMS)
        return sg_error("%s: header says %u %s; expected at most %u", f->path, h->n, h->what,
                        SG_MNIST_MAX_ITEMS);
    h->payload = (size_t)h->n * (images ? MNIST_SIDE * MNIST_SIDE : 1);
    /* A plain file's size is known now: refuse a wrong one before reading. */
    if (!f->gz) {
        long long have = (long long)f->size - (long long)h->head_len;
        if (have < (long long)h->payload)
            return sg_error("%s: truncated: header says %u %s (%zu bytes), file has %lld after "
                            "the %zu-byte header", f->path, h->n, h->what, h->payload, have,
                            h->head_len);
        if (have > (long long)h->payload)
            return sg_error("%s: %lld trailing bytes: header says %u %s (%zu bytes), file has "
                            "%lld after the %zu-byte header", f->path,
                            have - (long long)h->payload, h->n, h->what, h->payload, have,
                            h->head_len);
    }
    return 0;
}

/* Reads exactly the payload h declares into a new buffer, then checks that
 * the data ends there, decompressing at most OVERRUN_PROBE bytes more. */
static int read_payload(idx_file *f, const idx_head *h, uint8_t **data)
{
    unsigned char probe_buf[OVERRUN_PROBE];
    size_t got, extra;
    uint8_t *buf = malloc(h->payload);
    *data = NULL;
    if (!buf)
        return sg_error("%s: out of memory for %zu bytes of %s", f->path, h->payload, h->what);
    if (idx_read(f, buf, h->payload, &got) != 0) goto fail;
    if (got < h->payload) {
        sg_error("%s: truncated: header says %u %s (%zu bytes), file has %zu after the %zu-byte "
                 "header", f->path, h->n, h->what, h->payload, got, h->head_len);
        goto fail;
    }
    if (idx_read(f, probe_buf, sizeof probe_buf, &extra) != 0) goto fail;
    if (extra == sizeof probe_buf) {
        sg_error("%s: more than the %zu bytes declared: header says %u %s, and the data goes on "
                 "past %zu bytes after the %zu-byte header; expected exactly the declared payload",
                 f->path, h->payload, h->n, h->what, h->payload + extra, h->head_len);
        goto fail;
    }
    if (extra > 0) {
        sg_error("%s: %zu trailing bytes: header says %u %s (%zu bytes), file has %zu after the "
                 "%zu-byte header", f->path, extra, h->n, h->what, h->payload, h->payload + extra,
                 h->head_len);
        goto fail;
    }
    *data = buf;
    return 0;

fail:
    free(buf);
    return -1;
}

int sg_mnist_load(sg_dataset *ds, const char *dir, int train)
{
    const char *prefix = train ? "train" : "t10k";
    char name[64], ipath[4096], lpath[4096];
    idx_file fi = {.fd = -1}, fl = {.fd = -1};
    idx_head hi, hl;
    uint8_t *images = NULL, *labels = NULL;
    memset(ds, 0, sizeof *ds);

    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    if (pick_file(ipath, sizeof ipath, dir, name) != 0) return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    if (pick_file(lpath, sizeof lpath, dir, name) != 0) return -1;

    /* Both headers before either payload: nothing is allocated for a file
     * pair that disagrees. */
    if (idx_open(&fi, ipath) != 0) return -1;
    if (read_head(&fi, IDX_IMAGES_MAGIC, &hi) != 0 || idx_open(&fl, lpath) != 0) goto fail;
    if (read_head(&fl, IDX_LABELS_MAGIC, &hl) != 0) goto fail;
    if (hl.n != hi.n) {
        sg_error("%s: %u labels for the %u images in %s; expected equal counts", lpath, hl.n, hi.n,
                 ipath);
        goto fail;
    }
    if (read_payload(&fi, &hi, &images) != 0 || read_payload(&fl, &hl, &labels) != 0) goto fail;
    for (uint32_t i = 0; i < hl.n; i++) {
        if (labels[i] > 9) {
            sg_error("%s: label %u at index %u; expected 0..9", lpath, labels[i], i);
            goto fail;
        }
    }

    uint32_t icrc = (uint32_t)crc32(0L, images, (uInt)hi.payload);
    uint32_t lcrc = (uint32_t)crc32(0L, labels, (uInt)hl.payload);
    const char *iknown = recognise(1, hi.n, icrc), *lknown = recognise(0, hl.n, lcrc);
    if (iknown && lknown && strcmp(iknown, lknown) != 0) {
        sg_error("%s: these are %s's labels but %s holds %s's images; expected the two files of "
                 "one dataset", lpath, pretty(lknown), ipath, pretty(iknown));
        goto fail;
    }
    idx_close(&fi);
    idx_close(&fl);
    ds->n = hi.n;
    ds->rows = MNIST_SIDE;
    ds->cols = MNIST_SIDE;
    ds->images = images;
    ds->labels = labels;
    ds->crc = (uint32_t)crc32_combine(icrc, lcrc, (z_off_t)hl.payload);
    ds->known = iknown;
    return 0;

fail:
    idx_close(&fi);
    idx_close(&fl);
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

int sg_dataset_check(const sg_dataset *ds, const char *dataset, const char *dir)
{
    if (strcmp(dataset, "mnist") != 0 && strcmp(dataset, "fashion-mnist") != 0)
        return sg_error("unknown dataset '%s'; expected mnist or fashion-mnist", dataset);
    if (!ds->known || strcmp(ds->known, dataset) == 0) return 0;
    return sg_error("%s: these are %s's files, not %s's; expected --dataset %s or a folder of %s "
                    "files", dir, pretty(ds->known), pretty(dataset), ds->known, dataset);
}

/* A folder holds the dataset when something is there under the training
 * images' name, .gz or not: when it is not a regular file (a FIFO, a broken
 * symlink...), loading says so, which "no training images" would not. */
static int holds_dataset(const char *dir)
{
    char path[4096];
    sg_file_info st;
    int len = snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    if (len < 0 || (size_t)len >= sizeof path) return 0;
    if (sg_stat(path, 0, &st) == 0) return 1;
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    return sg_stat(path, 0, &st) == 0;
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

    const char *env = sg_getenv("SIMDGAN_DATA");
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
