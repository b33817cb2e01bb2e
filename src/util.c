/* util.c: one-line errors, checked allocation, atomic file output. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char last_error[1024];

int sg_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return -1;
}

const char *sg_last_error(void) { return last_error[0] ? last_error : "unknown error"; }

static void oom(size_t bytes, const char *file, int line)
{
    fprintf(stderr, "simdgan: out of memory allocating %zu bytes at %s:%d\n", bytes, file, line);
    exit(2);
}

void *sg_xmalloc_at(size_t bytes, const char *file, int line)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) oom(bytes, file, line);
    return p;
}

void *sg_xcalloc_aligned_at(size_t bytes, const char *file, int line)
{
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) oom(bytes, file, line);
    memset(p, 0, rounded);
    return p;
}

void sg_free(void *p) { free(p); }

int sg_out_open(sg_outfile *o, const char *path)
{
    if (strlen(path) >= sizeof o->path) return sg_error("%s: path too long", path);
    strcpy(o->path, path);
    snprintf(o->tmp, sizeof o->tmp, "%s.tmp.%ld", path, (long)getpid());
    o->f = fopen(o->tmp, "wb");
    if (!o->f) return sg_error("%s: cannot write (%s); expected a writable folder", path, strerror(errno));
    return 0;
}

int sg_out_commit(sg_outfile *o)
{
    int bad = ferror(o->f);
    if (fclose(o->f) != 0) bad = 1;
    o->f = NULL;
    if (bad) {
        int e = errno;
        remove(o->tmp);
        return sg_error("%s: write failed (%s)", o->path, strerror(e));
    }
    if (rename(o->tmp, o->path) != 0) {
        int e = errno;
        remove(o->tmp);
        return sg_error("%s: cannot rename into place (%s)", o->path, strerror(e));
    }
    return 0;
}

void sg_out_abort(sg_outfile *o)
{
    if (o->f) fclose(o->f);
    o->f = NULL;
    remove(o->tmp);
}

int sg_mkdir(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return 0;
        return sg_error("%s: exists and is not a folder", path);
    }
    if (mkdir(path, 0777) != 0)
        return sg_error("%s: cannot create folder (%s)", path, strerror(errno));
    return 0;
}
