/* safetensors.c: writing and reading F32 safetensors checkpoints.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the
 * data. The JSON is built and parsed by libjansson, so a header simdgan
 * writes is one it can read back (jansson refuses names that are not UTF-8).
 *
 * Writing: __metadata__ first, then the tensors in the order given with
 * contiguous offsets, the JSON padded with spaces to a multiple of 8 so the
 * data starts aligned. sg_st_write_tmp writes and syncs a temporary that the
 * caller renames into place later (so G, D and a training state change
 * together); sg_st_write does both.
 *
 * Reading is written for hostile input (it is fuzzed). The header length is
 * checked against the file's real size before anything is allocated, and
 * json_loadb parses the header with JSON_REJECT_DUPLICATES and no other flag:
 *   - a key twice in any object (a tensor, a field of an entry, __metadata__
 *     or one of its keys) is an error, where jansson would otherwise keep the
 *     last one silently;
 *   - the end-of-input check stays on (no JSON_DISABLE_EOF_CHECK): after the
 *     object only JSON whitespace may follow, which accepts the space padding
 *     and rejects anything else, a NUL byte included;
 *   - no JSON_ALLOW_NUL: "\u0000" in a string is an error, names are C
 *     strings;
 *   - no JSON_DECODE_INT_AS_REAL: integers stay 64-bit integers (larger ones
 *     are jansson errors), so a real or a negative number can be refused
 *     where a dimension or an offset is expected;
 *   - no JSON_DECODE_ANY: a bare scalar is a syntax error (an array is
 *     refused here).
 * jansson also rejects invalid UTF-8 (overlong forms, surrogates), bad
 * escapes and nesting deeper than it allows. Then the header must have the
 * only shape a safetensors header has: an object whose values are entries
 * {"dtype": "F32", "shape": [uint...], "data_offsets": [uint, uint]} (these
 * fields and no others), plus at most one "__metadata__" object of string
 * values. Shapes must match byte counts, and the offsets, taken in order,
 * must tile the data exactly: no gap, no overlap, nothing left over. Only
 * then is the data read, tensor by tensor in offset order, straight into one
 * aligned buffer each: memory follows the file's real size, never a header's
 * claim, and the file is never held twice. */
#define _POSIX_C_SOURCE 200809L /* fdopen */
#include "safetensors.h"

#include "platform.h"
#include "util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The reference implementation's limit on the header size. */
#define ST_MAX_HEADER 100000000u

typedef struct st_entry {
    const char *name;      /* a key of the file's header, valid until close */
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
    uint64_t begin, end;   /* byte offsets into the data section */
    float *data;           /* aligned host-endian copy           */
} st_entry;

struct sg_st_file {
    char *path;
    json_t *header;        /* the parsed header: owns names and metadata */
    json_t *meta;          /* its "__metadata__" object, or NULL          */
    int n;
    st_entry *t;           /* [n], in header order */
};

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

static void bswap32_inplace(void *p, size_t count)
{
    unsigned char *b = p;
    for (size_t i = 0; i < count; i++, b += 4) {
        unsigned char t0 = b[0], t1 = b[1];
        b[0] = b[3];
        b[1] = b[2];
        b[2] = t1;
        b[3] = t0;
    }
}

/* At most 64 bytes of a name for an error message, control characters shown
 * as '?', so a hostile name cannot break the one-line error. */
static const char *printable_to(char out[68], const char *s)
{
    size_t i = 0;
    for (; s[i] && i < 64; i++) out[i] = (unsigned char)s[i] < 0x20 ? '?' : s[i];
    strcpy(out + i, s[i] ? "..." : "");
    return out;
}

static const char *printable(const char *s)
{
    static _Thread_local char buf[68];
    return printable_to(buf, s);
}

/* Elements of a shape, or -1 when a dimension is negative or the byte count
 * would not fit in int64. */
static int64_t shape_count(const int64_t *shape, int ndim)
{
    int64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return -1;
        if (shape[d] != 0 && count > INT64_MAX / 4 / shape[d]) return -1;
        count *= shape[d];
    }
    return count;
}

/* ---- writer ---------------------------------------------------------------- */

/* fwrite that remembers the first failure's errno in *err (0 while all is
 * well) and writes nothing more after one. */
static void put(FILE *f, const void *p, size_t n, int *err)
{
    if (*err || n == 0) return;
    errno = 0;
    if (fwrite(p, 1, n, f) != n) *err = errno ? errno : EIO;
}

/* Little-endian floats, whatever the host. */
static void put_floats_le(FILE *f, const float *x, size_t count, int *err)
{
    if (count == 0) return;   /* x may be NULL */
    if (host_is_little_endian()) {
        put(f, x, count * 4, err);
        return;
    }
    float chunk[1024];
    for (size_t i = 0; i < count; i += 1024) {
        size_t m = count - i < 1024 ? count - i : 1024;
        memcpy(chunk, x + i, m * 4);
        bswap32_inplace(chunk, m);
        put(f, chunk, m * 4, err);
    }
}

/* The header object for n tensors of counts[i] elements and n_meta pairs
 * (arguments already checked), or NULL with error: a name that is not UTF-8
 * or given twice. */
static json_t *build_header(const char *path, const sg_st_tensor *t, int n,
                            const int64_t *counts, const char *const *meta, int n_meta)
{
    json_t *h = json_object();
    if (n_meta > 0) {
        json_t *m = json_object();
        json_object_set_new(h, "__metadata__", m);
        for (int i = 0; i < n_meta; i++) {
            const char *key = meta[2 * i];
            if (json_object_get(m, key)) {
                sg_error("%s: metadata key %s given twice; expected unique keys", path,
                         printable(key));
                goto fail;
            }
            json_t *value = json_string(meta[2 * i + 1]);
            if (!value || json_object_set_new(m, key, value) != 0) {
                sg_error("%s: metadata pair %d (%s) is not UTF-8; expected UTF-8 strings", path,
                         i, printable(key));
                goto fail;
            }
        }
    }
    int64_t offset = 0;
    for (int i = 0; i < n; i++) {
        if (json_object_get(h, t[i].name)) {
            sg_error("%s: tensor name %s given twice; expected unique names", path,
                     printable(t[i].name));
            goto fail;
        }
        if (counts[i] > (INT64_MAX - offset) / 4) {
            sg_error("%s: the tensors up to %s exceed 2^63 bytes", path, printable(t[i].name));
            goto fail;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                              "data_offsets", (json_int_t)offset,
                              (json_int_t)(offset + counts[i] * 4));
        if (!e) {
            sg_error("%s: out of memory building the header", path);
            goto fail;
        }
        if (json_object_set_new(h, t[i].name, e) != 0) {
            sg_error("%s: tensor name %s is not UTF-8; expected a UTF-8 name", path,
                     printable(t[i].name));
            goto fail;
        }
        offset += counts[i] * 4;
    }
    return h;
fail:
    json_decref(h);
    return NULL;
}

int sg_st_write_tmp(sg_outfile *o, const char *path, const sg_st_tensor *t, int n,
                    const char *const *meta, int n_meta)
{
    o->f = NULL;
    o->path[0] = o->tmp[0] = '\0';
    if (n < 0 || n_meta < 0 || (n > 0 && !t) || (n_meta > 0 && !meta))
        return sg_error("%s: %d tensors and %d metadata pairs; expected counts >= 0 with their "
                        "arrays", path, n, n_meta);
    for (int i = 0; i < n_meta; i++)
        if (!meta[2 * i] || !meta[2 * i + 1])
            return sg_error("%s: metadata pair %d is NULL; expected two strings", path, i);
    int64_t *counts = sg_xmalloc((size_t)(n ? n : 1) * sizeof *counts);
    char *text = NULL;
    json_t *h = NULL;
    int ret = -1;

    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0) {
            sg_error("%s: tensor %d has name '%s'; expected a non-empty name other than "
                     "__metadata__", path, i, t[i].name ? printable(t[i].name) : "(null)");
            goto out;
        }
        if (t[i].ndim < 0 || t[i].ndim > SG_ST_MAX_DIMS) {
            sg_error("%s: tensor %s has rank %d; expected 0..%d", path, printable(t[i].name),
                     t[i].ndim, SG_ST_MAX_DIMS);
            goto out;
        }
        counts[i] = shape_count(t[i].shape, t[i].ndim);
        if (counts[i] < 0) {
            sg_error("%s: tensor %s has a negative or oversized shape", path,
                     printable(t[i].name));
            goto out;
        }
        if (counts[i] > 0 && !t[i].data) {
            sg_error("%s: tensor %s has no data", path, printable(t[i].name));
            goto out;
        }
    }
    h = build_header(path, t, n, counts, meta, n_meta);
    if (!h) goto out;
    text = json_dumps(h, JSON_COMPACT);
    if (!text) {
        sg_error("%s: out of memory writing the header", path);
        goto out;
    }
    size_t hlen = strlen(text);
    static const char spaces[8] = "       ";
    size_t pad = (8 - hlen % 8) % 8;

    if (sg_out_open(o, path) != 0) goto out;
    unsigned char len_le[8];
    for (int k = 0; k < 8; k++) len_le[k] = (unsigned char)((uint64_t)(hlen + pad) >> (8 * k));
    int err = 0;
    put(o->f, len_le, 8, &err);
    put(o->f, text, hlen, &err);
    put(o->f, spaces, pad, &err);
    for (int i = 0; i < n; i++) put_floats_le(o->f, t[i].data, (size_t)counts[i], &err);
    if (err) {
        sg_out_abort(o);
        sg_error("%s: write failed (%s)", path, strerror(err));
    } else {
        ret = sg_out_finish(o);
    }

out:
    /* Failed: no temporary is left, so a later sg_out_abort has nothing to remove. */
    if (ret != 0) {
        o->f = NULL;
        o->tmp[0] = '\0';
    }
    free(counts);
    free(text);
    json_decref(h);
    return ret;
}

int sg_st_write(const char *path, const sg_st_tensor *t, int n, const char *const *meta,
                int n_meta)
{
    sg_outfile o;
    if (sg_st_write_tmp(&o, path, t, n, meta, n_meta) != 0) return -1;
    return sg_out_rename(&o);
}

/* ---- reader: the header ------------------------------------------------------- */

/* How a JSON value is named in errors about its type. */
static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* jansson's syntax error as one line: its text (which quotes the input near
 * the error, so control characters become '?') and the file byte it reached,
 * counting the 8-byte length. */
static int json_failed(const char *path, const json_error_t *je)
{
    char text[JSON_ERROR_TEXT_LENGTH];
    size_t i = 0;
    for (; i < sizeof text - 1 && je->text[i]; i++) {
        unsigned char c = (unsigned char)je->text[i];
        text[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    text[i] = '\0';
    const char *expected;
    switch (json_error_code(je)) {
    case json_error_duplicate_key: expected = "unique keys in every object"; break;
    case json_error_end_of_input_expected: expected = "only spaces after the header object"; break;
    case json_error_invalid_utf8: expected = "UTF-8 text"; break;
    case json_error_numeric_overflow: expected = "integers below 2^63"; break;
    case json_error_null_character:
    case json_error_null_byte_in_key: expected = "strings without \\u0000"; break;
    default: expected = "well-formed JSON"; break;
    }
    long long at = 8 + (je->position > 0 ? (long long)je->position - 1 : 0);
    return sg_error("%s: bad safetensors header near byte %lld: %s; expected %s", path, at, text,
                    expected);
}

/* Element i of an entry's field as a non-negative integer. */
static int get_uint(const char *path, const char *name, const char *field, size_t i,
                    const json_t *v, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_integer(v))
        return sg_error("%s: tensor %s: %s[%zu] is %lld; expected a non-negative integer", path,
                        name, field, i, (long long)json_integer_value(v));
    return sg_error("%s: tensor %s: %s[%zu] is %s; expected a non-negative integer", path, name,
                    field, i, json_kind(v));
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [b, e]} into e. */
static int parse_entry(const char *path, st_entry *e, json_t *v)
{
    char name[68], shown[68];
    printable_to(name, e->name);
    if (!json_is_object(v))
        return sg_error("%s: tensor %s is %s; expected an object of dtype, shape and "
                        "data_offsets", path, name, json_kind(v));
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") != 0 && strcmp(key, "shape") != 0 &&
            strcmp(key, "data_offsets") != 0)
            return sg_error("%s: tensor %s has an unknown field '%s'; expected dtype, shape and "
                            "data_offsets only", path, name, printable_to(shown, key));
    }
    json_t *dtype = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offsets = json_object_get(v, "data_offsets");
    if (!dtype || !shape || !offsets)
        return sg_error("%s: tensor %s lacks %s; expected dtype, shape and data_offsets", path,
                        name, !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!json_is_string(dtype))
        return sg_error("%s: tensor %s has a dtype that is %s; expected \"F32\"", path, name,
                        json_kind(dtype));
    if (strcmp(json_string_value(dtype), "F32") != 0)
        return sg_error("%s: tensor %s has dtype %s; simdgan reads F32 only", path, name,
                        printable_to(shown, json_string_value(dtype)));

    if (!json_is_array(shape))
        return sg_error("%s: tensor %s has a shape that is %s; expected an array of integers",
                        path, name, json_kind(shape));
    if (json_array_size(shape) > SG_ST_MAX_DIMS)
        return sg_error("%s: tensor %s has a shape of %zu dimensions; expected at most %d", path,
                        name, json_array_size(shape), SG_ST_MAX_DIMS);
    e->ndim = (int)json_array_size(shape);
    for (int d = 0; d < e->ndim; d++) {
        uint64_t u;
        if (get_uint(path, name, "shape", (size_t)d, json_array_get(shape, (size_t)d), &u) != 0)
            return -1;
        e->shape[d] = (int64_t)u;   /* <= INT64_MAX: it was a json_int_t */
    }

    if (!json_is_array(offsets) || json_array_size(offsets) != 2) {
        if (json_is_array(offsets))
            return sg_error("%s: tensor %s has %zu data_offsets; expected exactly 2 (begin, "
                            "end)", path, name, json_array_size(offsets));
        return sg_error("%s: tensor %s has data_offsets that are %s; expected an array of "
                        "exactly 2 integers", path, name, json_kind(offsets));
    }
    if (get_uint(path, name, "data_offsets", 0, json_array_get(offsets, 0), &e->begin) != 0 ||
        get_uint(path, name, "data_offsets", 1, json_array_get(offsets, 1), &e->end) != 0)
        return -1;
    return 0;
}

/* The header text into f: its tree, metadata and entries. */
static int parse_header(sg_st_file *f, const char *text, size_t len)
{
    json_error_t je;
    f->header = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!f->header) return json_failed(f->path, &je);
    if (!json_is_object(f->header))
        return sg_error("%s: the safetensors header is %s; expected a JSON object", f->path,
                        json_kind(f->header));

    const char *key;
    json_t *v;
    f->meta = json_object_get(f->header, "__metadata__");
    if (f->meta) {
        if (!json_is_object(f->meta))
            return sg_error("%s: __metadata__ is %s; expected an object of strings", f->path,
                            json_kind(f->meta));
        json_object_foreach(f->meta, key, v) {
            if (!json_is_string(v))
                return sg_error("%s: __metadata__ value of %s is %s; expected a string",
                                f->path, printable(key), json_kind(v));
        }
    }

    /* Every key and value takes 6 header bytes or more ("a":0,), so n fits an int. */
    size_t n = json_object_size(f->header) - (f->meta != NULL);
    f->t = sg_xmalloc((n ? n : 1) * sizeof *f->t);
    memset(f->t, 0, (n ? n : 1) * sizeof *f->t);
    json_object_foreach(f->header, key, v) {
        if (v == f->meta) continue;
        st_entry *e = &f->t[f->n++];
        e->name = key;
        if (parse_entry(f->path, e, v) != 0) return -1;
    }
    return 0;
}

/* ---- reader: checks and data -------------------------------------------------- */

static int cmp_entry_offsets(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Shapes matching byte counts, offsets tiling [0, data_len); order[n] gets
 * the entries sorted by offset. */
static int check_entries(sg_st_file *f, uint64_t data_len, st_entry **order)
{
    size_t n = (size_t)f->n;
    for (size_t i = 0; i < n; i++) {
        const st_entry *e = &f->t[i];
        const char *name = printable(e->name);
        unsigned long long begin = e->begin, end = e->end;
        int64_t count = shape_count(e->shape, e->ndim);
        if (count < 0)
            return sg_error("%s: tensor %s has a shape too large to address", f->path, name);
        if (end < begin)
            return sg_error("%s: tensor %s has data_offsets [%llu, %llu]; expected begin <= end",
                            f->path, name, begin, end);
        if (end - begin != (uint64_t)count * 4)
            return sg_error("%s: tensor %s has %llu data bytes; its shape needs %llu (F32)",
                            f->path, name, end - begin, (unsigned long long)count * 4);
        if (end > data_len)
            return sg_error("%s: tensor %s ends at data byte %llu; the file has %llu data "
                            "bytes (truncated?)", f->path, name, end,
                            (unsigned long long)data_len);
    }

    /* Sorted by offset, each tensor must start where the previous one ended. */
    for (size_t i = 0; i < n; i++) order[i] = &f->t[i];
    qsort(order, n, sizeof *order, cmp_entry_offsets);
    uint64_t at = 0;
    char shown_a[68], shown_b[68];
    for (size_t i = 0; i < n; i++) {
        unsigned long long begin = order[i]->begin, end = order[i]->end;
        if (begin < at)
            return sg_error("%s: tensor %s at data bytes [%llu, %llu) overlaps %s", f->path,
                            printable_to(shown_a, order[i]->name), begin, end,
                            printable_to(shown_b, order[i - 1]->name));
        if (begin > at)
            return sg_error("%s: data bytes [%llu, %llu) belong to no tensor; expected "
                            "contiguous offsets", f->path, (unsigned long long)at, begin);
        at = end;
    }
    if (at != data_len)
        return sg_error("%s: data bytes [%llu, %llu) belong to no tensor; expected the tensors "
                        "to cover the data exactly", f->path, (unsigned long long)at,
                        (unsigned long long)data_len);
    return 0;
}

/* Exactly n bytes from fp, which is at file byte at; -1 with error. */
static int read_exact(FILE *fp, const char *path, void *buf, size_t n, uint64_t at)
{
    if (n == 0 || fread(buf, 1, n, fp) == n) return 0;
    return sg_error("%s: read failed in bytes [%llu, %llu) (%s)", path, (unsigned long long)at,
                    (unsigned long long)(at + n),
                    ferror(fp) ? strerror(errno) : "the file ended early; was it truncated?");
}

static void free_file(sg_st_file *f)
{
    for (int i = 0; i < f->n; i++) sg_free(f->t[i].data);
    free(f->t);
    json_decref(f->header);
    free(f->path);
    free(f);
}

sg_st_file *sg_st_open(const char *path)
{
    /* Opened without blocking, so a FIFO is refused below instead of
     * waiting for a writer. */
    int fd = sg_open_read(path);
    FILE *fp = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!fp) {
        sg_error("%s: cannot open (%s)", path, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    sg_st_file *f = sg_xmalloc(sizeof *f);
    memset(f, 0, sizeof *f);
    f->path = sg_xmalloc(strlen(path) + 1);
    strcpy(f->path, path);
    char *text = NULL;
    st_entry **order = NULL;

    sg_file_info st;
    if (sg_fstat(fileno(fp), &st) != 0 || st.kind != SG_KIND_FILE) {
        sg_error("%s: is %s; expected a safetensors file", path,
                 st.kind == SG_KIND_DIR ? "a folder" : st.kind == SG_KIND_FIFO ? "a FIFO"
                                                   : "not a regular file");
        goto fail;
    }
    if ((uintmax_t)st.size > SIZE_MAX - 1) {
        sg_error("%s: too large to read into memory", path);
        goto fail;
    }
    uint64_t size = st.size;
    if (size < 8) {
        sg_error("%s: truncated: %llu bytes; expected an 8-byte header length and a header",
                 path, (unsigned long long)size);
        goto fail;
    }
    unsigned char len_le[8];
    if (read_exact(fp, path, len_le, 8, 0) != 0) goto fail;
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)len_le[k] << (8 * k);
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8) {
        sg_error("%s: header length %llu; expected 2..%u and within the file's %llu bytes after "
                 "the length", path, (unsigned long long)hlen, ST_MAX_HEADER,
                 (unsigned long long)(size - 8));
        goto fail;
    }
    text = sg_xmalloc((size_t)hlen);
    if (read_exact(fp, path, text, (size_t)hlen, 8) != 0) goto fail;
    if (parse_header(f, text, (size_t)hlen) != 0) goto fail;
    free(text);
    text = NULL;

    order = sg_xmalloc((size_t)(f->n + 1) * sizeof *order);
    if (check_entries(f, size - 8 - hlen, order) != 0) goto fail;
    /* The offsets tile the data, so in offset order the reads are sequential. */
    for (int i = 0; i < f->n; i++) {
        st_entry *e = order[i];
        size_t bytes = (size_t)(e->end - e->begin);
        e->data = sg_xalloc(bytes);
        if (read_exact(fp, path, e->data, bytes, 8 + hlen + e->begin) != 0) goto fail;
        if (!host_is_little_endian()) bswap32_inplace(e->data, bytes / 4);
    }
    free(order);
    fclose(fp);
    return f;

fail:
    free(order);
    free(text);
    free_file(f);
    fclose(fp);
    return NULL;
}

const float *sg_st_get(sg_st_file *f, const char *name, int *ndim, int64_t shape[SG_ST_MAX_DIMS])
{
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->t[i];
        if (strcmp(e->name, name) != 0) continue;
        if (ndim) *ndim = e->ndim;
        if (shape)
            for (int d = 0; d < SG_ST_MAX_DIMS; d++) shape[d] = d < e->ndim ? e->shape[d] : 0;
        return e->data;
    }
    sg_error("%s: no tensor %s", f->path, name);
    return NULL;
}

const char *sg_st_meta(sg_st_file *f, const char *key)
{
    return f->meta ? json_string_value(json_object_get(f->meta, key)) : NULL;
}

int sg_st_count(const sg_st_file *f) { return f->n; }

const char *sg_st_name(const sg_st_file *f, int i)
{
    return i >= 0 && i < f->n ? f->t[i].name : NULL;
}

void sg_st_close(sg_st_file *f)
{
    if (f) free_file(f);
}
