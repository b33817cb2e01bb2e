/* autothreads.h: the thread count per training step, chosen by measuring.
 *
 * Results are bit-identical at any thread count (gemm.h), so the trainer may
 * change the count between steps. This controller does so when that makes
 * steps faster: on a machine where another CPU-bound process runs, fewer
 * threads than cores can beat all of them, because every barrier of the
 * step waits for the thread the scheduler has taken off its core.
 *
 * It probes in rounds: each candidate count, from the most threads down, for
 * a few steps (the first step after a switch is not counted; the median of
 * the others is the candidate's figure), stopping as soon as a count is
 * slower than the best so far; then it holds the fastest (the most threads
 * unless fewer are faster by SG_AT_MARGIN) until the next round. Rounds come
 * every SG_AT_HOLD steps, twice as far apart each time the choice stays at
 * the most threads (up to SG_AT_HOLD_MAX), so an idle machine pays a few
 * slower steps per thousands; and at once when the held count's recent
 * median moves away from its figure by more than SG_AT_DRIFT (the load
 * changed). Where the choice is fewer threads, rounds stay SG_AT_HOLD apart:
 * the load leaving barely changes a step with fewer threads.
 *
 * Use (step_seconds: the wall time of sg_gan_run_step alone):
 *
 *     sg_autothreads a;
 *     sg_autothreads_init(&a, e.max_nth);
 *     int n = sg_autothreads_next(&a, -1.0);
 *     for (each step) {
 *         sg_engine_set_threads(&e, n);
 *         t0 = now(); sg_gan_run_step(&g, fill, &ctx); t = now() - t0;
 *         n = sg_autothreads_next(&a, t);
 *     }
 *
 * The controller only reads the times it is given: it does not read clocks
 * or the machine, and the same times give the same counts. */
#ifndef SIMDGAN_AUTOTHREADS_H
#define SIMDGAN_AUTOTHREADS_H

#include <stddef.h>

#define SG_AT_MAX_CAND 16 /* candidates: max, max - 1, max / 2, max / 4, ... 1 */
#define SG_AT_PROBE 3     /* counted steps per candidate in a round          */
#define SG_AT_WINDOW 8    /* held steps per drift check                      */
#define SG_AT_HOLD 200    /* steps between rounds, at first                  */
#define SG_AT_HOLD_MAX 3200
#define SG_AT_MARGIN 0.05 /* fewer threads must be this much faster          */
#define SG_AT_DRIFT 0.25  /* the held count's median moved by this fraction  */

typedef struct sg_autothreads {
    int cand[SG_AT_MAX_CAND]; /* candidate counts, most threads first       */
    int ncand;
    double median[SG_AT_MAX_CAND]; /* the last round's figure per candidate, -1 where not probed */
    int current; /* the count the last call returned                          */
    int best;    /* the count the last round chose                            */
    int probing; /* the candidate being probed, or -1 while holding best      */
    int skip;    /* the next step's time is not counted (just switched)       */
    double samples[SG_AT_WINDOW > SG_AT_PROBE ? SG_AT_WINDOW : SG_AT_PROBE];
    int nsamples;
    double ref;  /* best's median in the last round                           */
    long held, hold; /* steps held since the round, and until the next one   */
    long rounds;     /* rounds started                                       */
} sg_autothreads;

/* Candidates for 1..max_threads threads (max_threads < 1 counts as 1). */
void sg_autothreads_init(sg_autothreads *a, int max_threads);

/* The thread count for the next step. last_step_seconds: the wall time of
 * the step just run with the count the previous call returned, or a
 * negative value on the first call (no step run yet). */
int sg_autothreads_next(sg_autothreads *a, double last_step_seconds);

/* One line for a log: the count held and the last round's figures, e.g.
 * "2 threads (probed 2: 3.41 ms, 1: 6.10 ms; 4 rounds)". Returns buf. */
const char *sg_autothreads_describe(const sg_autothreads *a, char *buf, size_t cap);

#endif
