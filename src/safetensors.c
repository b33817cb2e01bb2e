/* safetensors.c: writing and reading F32 safetensors checkpoints.
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON, then the
 * data. The writer emits __metadata__ first, then the tensors in the order
 * given with contiguous offsets, and pads the JSON with spaces to a multiple
 * of 8 so the data starts aligned.
 *
 * The reader is written for hostile input (it is fuzzed): the file is read
 * whole, every length is checked before it is used, and the JSON is parsed by
 * a small recursive-descent parser that knows the only shape a header may
 * have: an object whose values are tensor entries
 * {"dtype": string, "shape": [uint...], "data_offsets": [uint, uint]} (each
 * field exactly once, nothing else), plus at most one "__metadata__" object of
 * string values. Anything else -- a duplicate key, an unknown field, a
 * non-integer number, a bad escape, invalid UTF-8, trailing characters -- is
 * an error naming the file and the header byte where it was found. Then the
 * entries must be F32, their shapes must match their byte counts, and their
 * offsets, taken in order, must tile the data exactly: no gap, no overlap,
 * nothing left over. */
#define _POSIX_C_SOURCE 200809L
#include "safetensors.h"

#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The reference implementation's limit on the header size. */
#define ST_MAX_HEADER 100000000u

typedef struct st_entry {
    char *name;
    int ndim;
    int64_t shape[SG_ST_MAX_DIMS];
    uint64_t begin, end;   /* byte offsets into the data section */
    float *data;           /* aligned host-endian copy           */
} st_entry;

struct sg_st_file {
    char *path;
    int n;
    st_entry *t;           /* [n], in header order */
    int n_meta;
    char **meta;           /* [2 n_meta]: key, value, key, value ... */
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

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first name occurring twice among n (sorted copy), or NULL. */
static const char *find_duplicate(const char **names, size_t n)
{
    if (n < 2) return NULL;
    const char **sorted = sg_xmalloc(n * sizeof *sorted);
    memcpy(sorted, names, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
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

/* A growing string for the JSON header. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = sg_xmalloc(cap);
        if (b->len) memcpy(p, b->p, b->len);
        free(b->p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(strbuf *b, const char *fmt, ...) SG_PRINTF(2, 3);
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string literal: quotes, backslashes and control characters escaped,
 * other bytes (UTF-8 included) as they are. */
static void sb_json_string(strbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            sb_printf(b, "\\u%04x", c);
        } else {
            sb_put(b, s, 1);
        }
    }
    sb_put(b, "\"", 1);
}

/* Little-endian floats, whatever the host. */
static void write_floats_le(FILE *f, const float *x, size_t count)
{
    if (count == 0) return;   /* x may be NULL */
    if (host_is_little_endian()) {
        fwrite(x, 4, count, f);
        return;
    }
    float chunk[1024];
    for (size_t i = 0; i < count; i += 1024) {
        size_t m = count - i < 1024 ? count - i : 1024;
        memcpy(chunk, x + i, m * 4);
        bswap32_inplace(chunk, m);
        fwrite(chunk, 4, m, f);
    }
}

int sg_st_write(const char *path, const sg_st_tensor *t, int n, const char *const *meta,
                int n_meta)
{
    if (n < 0 || n_meta < 0 || (n_meta > 0 && !meta))
        return sg_error("%s: %d tensors and %d metadata pairs; expected counts >= 0", path, n,
                        n_meta);
    int64_t *counts = sg_xmalloc((size_t)(n ? n : 1) * sizeof *counts);
    const char **names = sg_xmalloc((size_t)(n + n_meta + 1) * sizeof *names);
    strbuf h = {0};
    int ret = -1;

    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0] || strcmp(t[i].name, "__metadata__") == 0) {
            sg_error("%s: tensor %d has name '%s'; expected a non-empty name other than "
                     "__metadata__", path, i, t[i].name ? t[i].name : "(null)");
            goto out;
        }
        if (t[i].ndim < 0 || t[i].ndim > SG_ST_MAX_DIMS) {
            sg_error("%s: tensor %s has rank %d; expected 0..%d", path, t[i].name, t[i].ndim,
                     SG_ST_MAX_DIMS);
            goto out;
        }
        counts[i] = shape_count(t[i].shape, t[i].ndim);
        if (counts[i] < 0) {
            sg_error("%s: tensor %s has a negative or oversized shape", path, t[i].name);
            goto out;
        }
        if (counts[i] > 0 && !t[i].data) {
            sg_error("%s: tensor %s has no data", path, t[i].name);
            goto out;
        }
        names[i] = t[i].name;
    }
    const char *dup = find_duplicate(names, (size_t)n);
    if (dup) {
        sg_error("%s: tensor name %s given twice; expected unique names", path, dup);
        goto out;
    }
    for (int i = 0; i < n_meta; i++) {
        if (!meta[2 * i] || !meta[2 * i + 1]) {
            sg_error("%s: metadata pair %d is NULL; expected two strings", path, i);
            goto out;
        }
        names[i] = meta[2 * i];
    }
    dup = find_duplicate(names, (size_t)n_meta);
    if (dup) {
        sg_error("%s: metadata key %s given twice; expected unique keys", path, dup);
        goto out;
    }

    sb_put(&h, "{", 1);
    if (n_meta > 0) {
        sb_put(&h, "\"__metadata__\":{", 16);
        for (int i = 0; i < n_meta; i++) {
            if (i) sb_put(&h, ",", 1);
            sb_json_string(&h, meta[2 * i]);
            sb_put(&h, ":", 1);
            sb_json_string(&h, meta[2 * i + 1]);
        }
        sb_put(&h, "}", 1);
    }
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        if (i || n_meta > 0) sb_put(&h, ",", 1);
        sb_json_string(&h, t[i].name);
        sb_put(&h, ":{\"dtype\":\"F32\",\"shape\":[", 25);
        for (int d = 0; d < t[i].ndim; d++)
            sb_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        uint64_t bytes = (uint64_t)counts[i] * 4;
        sb_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                  (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    sb_put(&h, "}", 1);
    while (h.len % 8) sb_put(&h, " ", 1);

    sg_outfile o;
    if (sg_out_open(&o, path) != 0) goto out;
    unsigned char len_le[8];
    for (int k = 0; k < 8; k++) len_le[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
    fwrite(len_le, 1, 8, o.f);
    fwrite(h.p, 1, h.len, o.f);
    for (int i = 0; i < n; i++) write_floats_le(o.f, t[i].data, (size_t)counts[i]);
    ret = sg_out_commit(&o);

out:
    free(counts);
    free(names);
    free(h.p);
    return ret;
}

/* ---- reader: JSON header ---------------------------------------------------- */

typedef struct parser {
    const char *path;
    const unsigned char *s;   /* the header, not NUL-terminated */
    size_t len, pos;
} parser;

/* An error at the current position; header bytes count from the file's start. */
static int bad(parser *P, const char *what)
{
    return sg_error("%s: bad safetensors header at byte %zu: %s", P->path, P->pos + 8, what);
}

static void skip_ws(parser *P)
{
    while (P->pos < P->len && (P->s[P->pos] == ' ' || P->s[P->pos] == '\t' ||
                               P->s[P->pos] == '\n' || P->s[P->pos] == '\r'))
        P->pos++;
}

/* Skips whitespace and consumes c, or fails naming it. */
static int expect(parser *P, char c, const char *what)
{
    skip_ws(P);
    if (P->pos >= P->len || P->s[P->pos] != (unsigned char)c) return bad(P, what);
    P->pos++;
    return 0;
}

/* Skips whitespace and consumes c if it is next; 1 if it was. */
static int accept(parser *P, char c)
{
    skip_ws(P);
    if (P->pos < P->len && P->s[P->pos] == (unsigned char)c) {
        P->pos++;
        return 1;
    }
    return 0;
}

static int hex4(parser *P, uint32_t *v)
{
    *v = 0;
    if (P->len - P->pos < 4) return bad(P, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        unsigned char c = P->s[P->pos++];
        uint32_t d = c >= '0' && c <= '9'   ? (uint32_t)(c - '0')
                     : c >= 'a' && c <= 'f' ? (uint32_t)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (uint32_t)(c - 'A' + 10)
                                            : 16u;
        if (d == 16) {
            P->pos--;
            return bad(P, "expected 4 hex digits after \\u");
        }
        *v = *v << 4 | d;
    }
    return 0;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string literal, decoded into a new NUL-terminated buffer. The decoded
 * text is never longer than the literal (an escape of 6 or 12 characters
 * yields at most 3 or 4 bytes), so one allocation of the remaining length
 * bounds it. \u0000 is refused: names are C strings. */
static int parse_string(parser *P, char **out)
{
    *out = NULL;
    if (expect(P, '"', "expected a string") != 0) return -1;
    char *o = sg_xmalloc(P->len - P->pos + 1);
    size_t n = 0;
    for (;;) {
        if (P->pos >= P->len) {
            free(o);
            return bad(P, "unterminated string");
        }
        unsigned char c = P->s[P->pos++];
        if (c == '"') break;
        if (c < 0x20) {
            P->pos--;
            free(o);
            return bad(P, "control character in a string");
        }
        if (c != '\\') {
            o[n++] = (char)c;
            continue;
        }
        if (P->pos >= P->len) {
            free(o);
            return bad(P, "unterminated escape");
        }
        c = P->s[P->pos++];
        uint32_t cp;
        switch (c) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u':
            if (hex4(P, &cp) != 0) {
                free(o);
                return -1;
            }
            if (cp >= 0xd800 && cp < 0xdc00) {   /* high surrogate: a low one must follow */
                uint32_t lo;
                if (P->len - P->pos < 2 || P->s[P->pos] != '\\' || P->s[P->pos + 1] != 'u') {
                    free(o);
                    return bad(P, "unpaired surrogate in \\u escape");
                }
                P->pos += 2;
                if (hex4(P, &lo) != 0) {
                    free(o);
                    return -1;
                }
                if (lo < 0xdc00 || lo > 0xdfff) {
                    free(o);
                    return bad(P, "unpaired surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                free(o);
                return bad(P, "unpaired surrogate in \\u escape");
            } else if (cp == 0) {
                free(o);
                return bad(P, "\\u0000 in a string");
            }
            n += put_utf8(o + n, cp);
            break;
        default:
            P->pos--;
            free(o);
            return bad(P, "unknown escape in a string");
        }
    }
    o[n] = '\0';
    *out = o;
    return 0;
}

/* A non-negative integer without sign, fraction, exponent or leading zeros,
 * at most INT64_MAX. */
static int parse_uint(parser *P, uint64_t *v)
{
    skip_ws(P);
    size_t start = P->pos;
    uint64_t x = 0;
    while (P->pos < P->len && P->s[P->pos] >= '0' && P->s[P->pos] <= '9') {
        unsigned d = P->s[P->pos] - '0';
        if (x > ((uint64_t)INT64_MAX - d) / 10) return bad(P, "integer too large");
        x = x * 10 + d;
        P->pos++;
    }
    if (P->pos == start) return bad(P, "expected a non-negative integer");
    if (P->s[start] == '0' && P->pos - start > 1) {
        P->pos = start;
        return bad(P, "integer with a leading zero");
    }
    if (P->pos < P->len && (P->s[P->pos] == '.' || P->s[P->pos] == 'e' || P->s[P->pos] == 'E'))
        return bad(P, "expected an integer, found a fraction or exponent");
    *v = x;
    return 0;
}

/* [u, u, ...] with at most max elements. */
static int parse_uint_array(parser *P, uint64_t *v, int max, int *count, const char *what)
{
    *count = 0;
    if (expect(P, '[', what) != 0) return -1;
    if (accept(P, ']')) return 0;
    do {
        if (*count == max) return bad(P, max == 2 ? "data_offsets has more than 2 elements"
                                                  : "shape has more than 4 dimensions");
        if (parse_uint(P, &v[(*count)++]) != 0) return -1;
    } while (accept(P, ','));
    return expect(P, ']', "expected ',' or ']' in an array");
}

/* {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, fields in any order. */
static int parse_entry(parser *P, st_entry *e)
{
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    if (expect(P, '{', "expected '{' starting a tensor entry") != 0) return -1;
    if (!accept(P, '}')) {
        do {
            char *key, *dtype;
            uint64_t v[SG_ST_MAX_DIMS];
            int count;
            size_t at = P->pos;
            if (parse_string(P, &key) != 0) return -1;
            if (expect(P, ':', "expected ':' after a field name") != 0) {
                free(key);
                return -1;
            }
            if (strcmp(key, "dtype") == 0 && !have_dtype) {
                free(key);
                have_dtype = 1;
                if (parse_string(P, &dtype) != 0) return -1;
                if (strcmp(dtype, "F32") != 0) {
                    char shown[68];
                    sg_error("%s: tensor %s has dtype %s; simdgan reads F32 only", P->path,
                             printable(e->name), printable_to(shown, dtype));
                    free(dtype);
                    return -1;
                }
                free(dtype);
            } else if (strcmp(key, "shape") == 0 && !have_shape) {
                free(key);
                have_shape = 1;
                if (parse_uint_array(P, v, SG_ST_MAX_DIMS, &count, "expected '[' for shape") != 0)
                    return -1;
                e->ndim = count;
                for (int d = 0; d < count; d++) e->shape[d] = (int64_t)v[d];
            } else if (strcmp(key, "data_offsets") == 0 && !have_offsets) {
                free(key);
                have_offsets = 1;
                if (parse_uint_array(P, v, 2, &count, "expected '[' for data_offsets") != 0)
                    return -1;
                if (count != 2) return bad(P, "data_offsets needs exactly 2 elements");
                e->begin = v[0];
                e->end = v[1];
            } else {
                int known = strcmp(key, "dtype") == 0 || strcmp(key, "shape") == 0 ||
                            strcmp(key, "data_offsets") == 0;
                char shown[68];
                P->pos = at;
                skip_ws(P);
                sg_error("%s: bad safetensors header at byte %zu: tensor %s has %s field '%s'",
                         P->path, P->pos + 8, printable(e->name), known ? "a second" : "an unknown",
                         printable_to(shown, key));
                free(key);
                return -1;
            }
        } while (accept(P, ','));
        if (expect(P, '}', "expected ',' or '}' in a tensor entry") != 0) return -1;
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return sg_error("%s: tensor %s lacks %s; expected dtype, shape and data_offsets", P->path,
                        printable(e->name),
                        !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    return 0;
}

static void free_file(sg_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        sg_free(f->t[i].data);
    }
    for (int i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->t);
    free(f->meta);
    free(f->path);
    free(f);
}

/* {"__metadata__": {string: string, ...}} */
static int parse_metadata(parser *P, sg_st_file *f, int *cap)
{
    if (expect(P, '{', "expected '{' for __metadata__") != 0) return -1;
    if (accept(P, '}')) return 0;
    do {
        if (f->n_meta == *cap) {
            *cap = *cap ? 2 * *cap : 8;
            char **m = sg_xmalloc((size_t)*cap * 2 * sizeof *m);
            if (f->n_meta) memcpy(m, f->meta, (size_t)f->n_meta * 2 * sizeof *m);
            free(f->meta);
            f->meta = m;
        }
        char *key, *value;
        if (parse_string(P, &key) != 0) return -1;
        if (expect(P, ':', "expected ':' in __metadata__") != 0) {
            free(key);
            return -1;
        }
        skip_ws(P);
        if (P->pos >= P->len || P->s[P->pos] != '"') {
            free(key);
            return bad(P, "__metadata__ values must be strings");
        }
        if (parse_string(P, &value) != 0) {
            free(key);
            return -1;
        }
        f->meta[2 * f->n_meta] = key;
        f->meta[2 * f->n_meta + 1] = value;
        f->n_meta++;
    } while (accept(P, ','));
    return expect(P, '}', "expected ',' or '}' in __metadata__");
}

/* Is s[0, n) valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF)? */
static size_t utf8_bad_at(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i <= k) return i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += k + 1;
    }
    return n;
}

/* The whole header object into f's entries and metadata. */
static int parse_header(parser *P, sg_st_file *f)
{
    int cap = 0, meta_cap = 0, have_meta = 0;
    size_t bad_byte = utf8_bad_at(P->s, P->len);
    if (bad_byte < P->len) {
        P->pos = bad_byte;
        return bad(P, "invalid UTF-8");
    }
    if (expect(P, '{', "expected '{' starting the header object") != 0) return -1;
    if (!accept(P, '}')) {
        do {
            char *key;
            if (parse_string(P, &key) != 0) return -1;
            if (expect(P, ':', "expected ':' after a tensor name") != 0) {
                free(key);
                return -1;
            }
            if (strcmp(key, "__metadata__") == 0) {
                free(key);
                if (have_meta) return bad(P, "a second __metadata__");
                have_meta = 1;
                if (parse_metadata(P, f, &meta_cap) != 0) return -1;
                continue;
            }
            if (f->n == cap) {
                if (cap > INT32_MAX / 2) {
                    free(key);
                    return bad(P, "too many tensors");
                }
                cap = cap ? 2 * cap : 16;
                st_entry *t = sg_xmalloc((size_t)cap * sizeof *t);
                if (f->n) memcpy(t, f->t, (size_t)f->n * sizeof *t);
                free(f->t);
                f->t = t;
            }
            st_entry *e = &f->t[f->n++];
            memset(e, 0, sizeof *e);
            e->name = key;
            if (parse_entry(P, e) != 0) return -1;
        } while (accept(P, ','));
        if (expect(P, '}', "expected ',' or '}' in the header object") != 0) return -1;
    }
    skip_ws(P);
    if (P->pos != P->len) return bad(P, "unexpected characters after the header object");
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

/* Names unique, shapes matching byte counts, offsets tiling [0, data_len). */
static int check_entries(sg_st_file *f, uint64_t data_len)
{
    size_t n = (size_t)f->n, n_meta = (size_t)f->n_meta;
    const char **names = sg_xmalloc((n + n_meta + 1) * sizeof *names);
    for (size_t i = 0; i < n; i++) names[i] = f->t[i].name;
    const char *dup = find_duplicate(names, n);
    if (!dup) {
        for (size_t i = 0; i < n_meta; i++) names[i] = f->meta[2 * i];
        dup = find_duplicate(names, n_meta);
        if (dup) sg_error("%s: metadata key %s appears twice", f->path, printable(dup));
    } else {
        sg_error("%s: tensor %s appears twice", f->path, printable(dup));
    }
    free(names);
    if (dup) return -1;

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
    st_entry **order = sg_xmalloc((n + 1) * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = &f->t[i];
    qsort(order, n, sizeof *order, cmp_entry_offsets);
    uint64_t at = 0;
    int ret = 0;
    char shown_a[68], shown_b[68];
    for (size_t i = 0; i < n && ret == 0; i++) {
        unsigned long long begin = order[i]->begin, end = order[i]->end;
        if (begin < at)
            ret = sg_error("%s: tensor %s at data bytes [%llu, %llu) overlaps %s", f->path,
                           printable_to(shown_a, order[i]->name), begin, end,
                           printable_to(shown_b, order[i - 1]->name));
        else if (begin > at)
            ret = sg_error("%s: data bytes [%llu, %llu) belong to no tensor; expected contiguous "
                           "offsets", f->path, (unsigned long long)at, begin);
        at = end;
    }
    free(order);
    if (ret == 0 && at != data_len)
        ret = sg_error("%s: data bytes [%llu, %llu) belong to no tensor; expected the tensors to "
                       "cover the data exactly", f->path, (unsigned long long)at,
                       (unsigned long long)data_len);
    return ret;
}

/* The whole file into memory; *size its length. NULL with error. */
static unsigned char *read_whole(const char *path, size_t *size)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        sg_error("%s: cannot open (%s)", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        sg_error("%s: not a regular file; expected a safetensors file", path);
        return NULL;
    }
    if ((uintmax_t)st.st_size > SIZE_MAX - 1) {
        fclose(fp);
        sg_error("%s: too large to read into memory", path);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(fp);
        sg_error("%s: out of memory reading %zu bytes", path, len);
        return NULL;
    }
    size_t got = fread(buf, 1, len, fp);
    int err = ferror(fp);
    fclose(fp);
    if (got != len || err) {
        free(buf);
        sg_error("%s: read failed after %zu of %zu bytes", path, got, len);
        return NULL;
    }
    *size = len;
    return buf;
}

sg_st_file *sg_st_open(const char *path)
{
    size_t size = 0;
    unsigned char *buf = read_whole(path, &size);
    if (!buf) return NULL;

    sg_st_file *f = sg_xmalloc(sizeof *f);
    memset(f, 0, sizeof *f);
    f->path = sg_xmalloc(strlen(path) + 1);
    strcpy(f->path, path);

    uint64_t hlen = 0;
    if (size < 8) {
        sg_error("%s: truncated: %zu bytes; expected an 8-byte header length and a header", path,
                 size);
        goto fail;
    }
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)buf[k] << (8 * k);
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8) {
        sg_error("%s: header length %llu; expected 2..%u and within the file's %zu bytes after "
                 "the length", path, (unsigned long long)hlen, ST_MAX_HEADER, size - 8);
        goto fail;
    }
    parser P = {path, buf + 8, (size_t)hlen, 0};
    if (parse_header(&P, f) != 0) goto fail;
    uint64_t data_len = size - 8 - hlen;
    if (check_entries(f, data_len) != 0) goto fail;

    const unsigned char *data = buf + 8 + hlen;
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->t[i];
        size_t bytes = (size_t)(e->end - e->begin);
        e->data = sg_xalloc(bytes);
        memcpy(e->data, data + e->begin, bytes);
        if (!host_is_little_endian()) bswap32_inplace(e->data, bytes / 4);
    }
    free(buf);
    return f;

fail:
    free(buf);
    free_file(f);
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
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

int sg_st_count(const sg_st_file *f) { return f->n; }

const char *sg_st_name(const sg_st_file *f, int i)
{
    return i >= 0 && i < f->n ? f->t[i].name : NULL;
}

void sg_st_close(sg_st_file *f) { free_file(f); }
