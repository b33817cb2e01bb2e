/* util.c: one-line errors, checked allocation, atomic file output (the OS
 * calls are platform.c's). */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"

static _Thread_local char last_error[1024];

int sg_error(const char *fmt, ...)
{
    /* Format into a local buffer: an argument may be sg_last_error() itself. */
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_error, msg, sizeof msg);
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
    void *p = sg_aligned_alloc(64, rounded ? rounded : 64);
    if (!p) oom(bytes, file, line);
    memset(p, 0, rounded);
    return p;
}

void sg_free(void *p) { sg_aligned_free(p); }

/* Temporaries in flight, for sg_out_unlink_pending. A run writes at most a
 * few files at once (the G/D pair, a state, a PNG). */
#define PENDING_MAX 8
static char *volatile pending[PENDING_MAX];

static void pending_set(char *tmp, char *now)
{
    for (int i = 0; i < PENDING_MAX; i++)
        if (pending[i] == tmp) {
            pending[i] = now;
            return;
        }
}

void sg_out_unlink_pending(void)
{
    for (int i = 0; i < PENDING_MAX; i++) {
        char *p = pending[i];
        if (p) sg_remove(p);
    }
}

int sg_out_open(sg_outfile *o, const char *path)
{
    if (strlen(path) >= sizeof o->path) return sg_error("%s: path too long", path);
    strcpy(o->path, path);
    snprintf(o->tmp, sizeof o->tmp, "%s" SG_TMP_MARK "%ld", path, sg_pid());
    o->f = sg_fopen(o->tmp, "wb");
    if (o->f) pending_set(NULL, o->tmp);
    if (!o->f) return sg_error("%s: cannot write (%s); expected a writable folder", path, strerror(errno));
    return 0;
}

int sg_out_finish(sg_outfile *o)
{
    int e = 0;
    if (fflush(o->f) != 0 || ferror(o->f)) e = errno ? errno : EIO;
    if (!e && sg_fsync(o->f) != 0) e = errno;
    if (fclose(o->f) != 0 && !e) e = errno;
    o->f = NULL;
    if (e) {
        sg_remove(o->tmp);
        pending_set(o->tmp, NULL);
        return sg_error("%s: write failed (%s)", o->path, strerror(e));
    }
    return 0;
}

int sg_sync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return sg_error("%s: path too long", path);
    if (slash && n == 0) n = 1; /* "/file" */
    memcpy(dir, slash ? path : ".", slash ? n : 1);
    dir[slash ? n : 1] = 0;
    if (sg_sync_dir(dir) != 0)
        return sg_error("%s: cannot sync its folder (%s)", path, strerror(errno));
    return 0;
}

int sg_out_rename(sg_outfile *o)
{
    int rc = sg_replace(o->tmp, o->path), e = errno;
    if (rc != 0) sg_remove(o->tmp);
    pending_set(o->tmp, NULL);
    if (rc != 0) return sg_error("%s: cannot rename into place (%s)", o->path, strerror(e));
    return sg_sync_parent(o->path);
}

int sg_out_commit(sg_outfile *o)
{
    if (sg_out_finish(o) != 0) return -1;
    return sg_out_rename(o);
}

void sg_out_abort(sg_outfile *o)
{
    if (o->f) fclose(o->f);
    o->f = NULL;
    sg_remove(o->tmp);
    pending_set(o->tmp, NULL);
}

int sg_join(char *dst, size_t cap, const char *dir, const char *name)
{
    if ((size_t)snprintf(dst, cap, "%s/%s", dir, name) >= cap)
        return sg_error("%s/%s: path too long", dir, name);
    return 0;
}

int sg_mkdir(const char *path)
{
    sg_file_info st;
    if (sg_stat(path, 1, &st) == 0) {
        if (st.kind == SG_KIND_DIR) return 0;
        return sg_error("%s: exists and is not a folder", path);
    }
    if (sg_mkdir_one(path) != 0)
        return sg_error("%s: cannot create folder (%s)", path, strerror(errno));
    return 0;
}
