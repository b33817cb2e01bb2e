/* check.h: the assertions the C tests share. A failed CHECK prints file:line
 * and the condition and counts a failure; main returns check_finish(). */
#ifndef SIMDGAN_CHECK_H
#define SIMDGAN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform.h"

static int check_failures, check_count;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        check_count++;                                                          \
        if (!(cond)) {                                                          \
            check_failures++;                                                   \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* max |a - b| / (atol + rtol |b|) over n elements must be <= 1. Returns the
 * max absolute difference, for printing. */
static inline double check_close(const char *what, const float *a, const double *ref, size_t n,
                                 double atol, double rtol)
{
    double worst = 0.0, maxdiff = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        double r = d / (atol + rtol * fabs(ref[i]));
        if (d > maxdiff) maxdiff = d;
        if (!(r <= worst)) { worst = r; at = i; }
    }
    CHECK(worst <= 1.0, "%s: element %zu is %.9g, expected %.9g (atol %g, rtol %g)", what, at,
          (double)a[at], ref[at], atol, rtol);
    return maxdiff;
}

static inline int check_finish(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

/* Removes path and, when it is a folder, all under it (symlinks and FIFOs
 * themselves, never what they point to), with the platform layer so that it
 * runs on Windows too; -1 when anything could not be removed. */
static inline int check_remove_tree(const char *path)
{
    sg_file_info st;
    if (sg_stat(path, 0, &st) != 0) return -1;
    if (st.kind != SG_KIND_DIR) return sg_remove(path);
    sg_dir *d = sg_dir_open(path);
    if (!d) return -1;
    int rc = 0;
    const char *name;
    while ((name = sg_dir_next(d))) {
        char child[1024]; /* per level: the recursion keeps each parent's */
        int n = snprintf(child, sizeof child, "%s/%s", path, name);
        rc |= n < 0 || (size_t)n >= sizeof child ? -1 : check_remove_tree(child);
    }
    sg_dir_close(d);
    return rc | sg_rmdir(path);
}

#endif
