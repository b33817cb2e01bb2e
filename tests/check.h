/* check.h: the assertions the C tests share. A failed CHECK prints file:line
 * and the condition and counts a failure; main returns check_finish(). */
#ifndef SIMDGAN_CHECK_H
#define SIMDGAN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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

#endif
