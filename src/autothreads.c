/* autothreads.c: the step's thread count from measured step times (see
 * autothreads.h for the policy and its constants). */
#include "autothreads.h"

#include <stdio.h>
#include <string.h>

static double median(const double *x, int n)
{
    double s[SG_AT_WINDOW > SG_AT_PROBE ? SG_AT_WINDOW : SG_AT_PROBE];
    for (int i = 0; i < n; i++) {
        int j = i;
        for (; j > 0 && s[j - 1] > x[i]; j--) s[j] = s[j - 1];
        s[j] = x[i];
    }
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

void sg_autothreads_init(sg_autothreads *a, int max_threads)
{
    memset(a, 0, sizeof *a);
    int max = max_threads < 1 ? 1 : max_threads;
    /* max, max - 1 (one competing process on a larger machine), then
     * halving down to 1. */
    a->cand[a->ncand++] = max;
    if (max > 2) a->cand[a->ncand++] = max - 1;
    for (int c = max / 2; c >= 1 && a->ncand < SG_AT_MAX_CAND; c /= 2)
        if (c < a->cand[a->ncand - 1]) a->cand[a->ncand++] = c;
    if (a->cand[a->ncand - 1] != 1) a->cand[a->ncand - 1] = 1;
    for (int i = 0; i < SG_AT_MAX_CAND; i++) a->median[i] = -1.0;
    a->current = a->best = max;
    a->probing = -1;
    a->hold = SG_AT_HOLD;
}

/* Switches to count n; the first step after a switch is not counted (the
 * pool's threads wake, caches refill). */
static void use(sg_autothreads *a, int n)
{
    if (n != a->current) a->skip = 1;
    a->current = n;
    a->nsamples = 0;
}

static void start_round(sg_autothreads *a)
{
    a->rounds++;
    a->probing = 0;
    for (int i = 0; i < a->ncand; i++) a->median[i] = -1.0;
    use(a, a->cand[0]);
}

/* The round's choice: the most threads whose median is within the margin
 * of the fastest probed. */
static void end_round(sg_autothreads *a)
{
    double fastest = a->median[0]; /* always probed */
    for (int i = 1; i < a->ncand; i++)
        if (a->median[i] >= 0.0 && a->median[i] < fastest) fastest = a->median[i];
    int pick = 0;
    while (!(a->median[pick] >= 0.0 && a->median[pick] <= fastest * (1.0 + SG_AT_MARGIN))) pick++;
    int prev = a->best;
    a->best = a->cand[pick];
    a->ref = a->median[pick];
    a->probing = -1;
    a->held = 0;
    if (a->best == a->cand[0] && prev == a->cand[0] && a->rounds > 1)
        a->hold = a->hold * 2 < SG_AT_HOLD_MAX ? a->hold * 2 : SG_AT_HOLD_MAX;
    else
        a->hold = SG_AT_HOLD;
    use(a, a->best);
}

int sg_autothreads_next(sg_autothreads *a, double t)
{
    if (a->ncand == 1) return a->current; /* nothing to choose */
    if (t < 0.0) {
        if (a->rounds == 0) {
            start_round(a);
            a->skip = 1; /* the run's first step is cold */
        }
        return a->current;
    }
    if (a->skip)
        a->skip = 0;
    else
        a->samples[a->nsamples++] = t;

    if (a->probing >= 0) {
        if (a->nsamples < SG_AT_PROBE) return a->current;
        double m = median(a->samples, a->nsamples);
        int i = a->probing;
        /* Go on down while each count beats every count above it. */
        int better = 1;
        for (int j = 0; j < i; j++)
            if (a->median[j] <= m) better = 0;
        a->median[i] = m;
        if (better && i + 1 < a->ncand) {
            a->probing = i + 1;
            use(a, a->cand[i + 1]);
        } else {
            end_round(a);
        }
        return a->current;
    }

    a->held++;
    if (a->nsamples == SG_AT_WINDOW) {
        double m = median(a->samples, a->nsamples);
        a->nsamples = 0;
        if (m > a->ref * (1.0 + SG_AT_DRIFT) || m < a->ref * (1.0 - SG_AT_DRIFT)) {
            a->hold = SG_AT_HOLD;
            start_round(a);
            return a->current;
        }
    }
    if (a->held >= a->hold) start_round(a);
    return a->current;
}

const char *sg_autothreads_describe(const sg_autothreads *a, char *buf, size_t cap)
{
    size_t n = (size_t)snprintf(buf, cap, "%d thread%s (", a->best, a->best == 1 ? "" : "s");
    const char *sep = "probed ";
    for (int i = 0; i < a->ncand && n < cap; i++) {
        if (a->median[i] < 0.0) continue;
        n += (size_t)snprintf(buf + n, cap - n, "%s%d: %.2f ms", sep, a->cand[i], 1e3 * a->median[i]);
        sep = ", ";
    }
    if (n < cap)
        snprintf(buf + n, cap - n, "%s%ld round%s)", *sep == 'p' ? "" : "; ", a->rounds,
                 a->rounds == 1 ? "" : "s");
    return buf;
}
