/* util.h: errors, checked allocation and atomic file output.
 *
 * Errors are one line. A library function that fails stores its message with
 * sg_error() and returns -1; the command prints it as "simdgan: <message>" and
 * exits with status 2. Allocation failure is not recoverable here: sg_xmalloc
 * prints file:line and exits. */
#ifndef SIMDGAN_UTIL_H
#define SIMDGAN_UTIL_H

#include <stddef.h>
#include <stdio.h>

#if defined(__MINGW32__)
/* MinGW: checked as the C99 printf that __USE_MINGW_ANSI_STDIO selects. */
#define SG_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define SG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SG_PRINTF(a, b)
#endif

/* Store a one-line error message (printf format); returns -1. */
int sg_error(const char *fmt, ...) SG_PRINTF(1, 2);
const char *sg_last_error(void);

void *sg_xmalloc_at(size_t bytes, const char *file, int line);
/* 64-byte aligned, zeroed; free with sg_free. */
void *sg_xcalloc_aligned_at(size_t bytes, const char *file, int line);
void sg_free(void *p);
#define sg_xmalloc(n) sg_xmalloc_at((n), __FILE__, __LINE__)
#define sg_xalloc(n) sg_xcalloc_aligned_at((n), __FILE__, __LINE__)

/* Atomic output: write to "<path>.tmp.<pid>", then rename over path, so a
 * failed or interrupted run never leaves a half-written file behind, and a
 * crash or power loss leaves the old file or the new one.
 * sg_out_open returns -1 (with sg_error set) when the folder is not writable.
 * sg_out_finish flushes, checks every write, fsyncs and closes the temporary
 * (removing it on failure); sg_out_rename then renames it over path and
 * fsyncs the folder. sg_out_commit is the two. sg_out_abort removes the
 * temporary. Writers of several files that must change together (G and D)
 * finish all of them, then rename all of them. */
typedef struct sg_outfile {
    FILE *f;
    char path[4096];
    char tmp[4096 + 32];
} sg_outfile;
int sg_out_open(sg_outfile *o, const char *path);
int sg_out_finish(sg_outfile *o);
int sg_out_rename(sg_outfile *o);
int sg_out_commit(sg_outfile *o);
void sg_out_abort(sg_outfile *o);
/* Removes every temporary opened and not yet renamed or aborted: for a
 * signal handler that exits at once (it only calls unlink). */
void sg_out_unlink_pending(void);
/* The marker in every temporary name, for cleaning stale ones: ".tmp.". */
#define SG_TMP_MARK ".tmp."

/* fsync the folder holding path (the file's name in it), 0 or -1 with error. */
int sg_sync_parent(const char *path);

/* dst = "dir/name"; 0, or -1 with error when it does not fit in cap. */
int sg_join(char *dst, size_t cap, const char *dir, const char *name);

/* mkdir -p for one folder level below an existing one; 0 or -1 with error. */
int sg_mkdir(const char *path);

#endif
