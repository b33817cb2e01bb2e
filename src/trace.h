/* trace.h: a timeline of training steps, per thread and per phase, written
 * as Chrome trace-event JSON (opens in Perfetto or chrome://tracing) and
 * summed by tools/step-breakdown.
 *
 * Compiled in and free when off: every probe is one predictable branch on
 * sg_trace_on, a plain global that only changes between steps. While on,
 * each thread appends to its own preallocated event buffer (no locks, no
 * allocation inside a step); events past the buffer are counted, not kept.
 *
 *   SG_TRACE_BEGIN(t);                        // t = now, or 0 when off
 *   ... work ...
 *   SG_TRACE_END(ith, SG_PH_ADAM, "D.adam", t);
 *
 * Names are string literals (or strings that outlive the trace): the event
 * keeps the pointer. */
#ifndef SIMDGAN_TRACE_H
#define SIMDGAN_TRACE_H

#include <stdint.h>

typedef enum sg_phase {
    SG_PH_STEP,     /* a whole step, thread 0                             */
    SG_PH_FILL,     /* the batch copy and z draws before the step        */
    SG_PH_PACK_A,   /* sg_gemm: packing A                                 */
    SG_PH_PACK_B,   /* sg_gemm: packing B                                 */
    SG_PH_KERNEL,   /* sg_gemm: micro-kernel tiles (epilogues fused in)  */
    SG_PH_EPILOGUE, /* separate bias/activation/gradient passes          */
    SG_PH_LOSS,     /* sigmoid + BCE and the log's means                  */
    SG_PH_ADAM,     /* Adam (fused or not)                                */
    SG_PH_BARRIER,  /* waiting in sg_barrier                              */
    SG_PH_COUNT
} sg_phase;

/* The phases' names in the JSON ("cat") and in tools/step-breakdown. */
extern const char *const sg_phase_names[SG_PH_COUNT];

/* Nonzero while steps are being recorded. */
extern int sg_trace_on;

/* Monotonic nanoseconds. */
uint64_t sg_trace_now(void);

#define SG_TRACE_BEGIN(t) uint64_t t = sg_trace_on ? sg_trace_now() : 0
#define SG_TRACE_END(ith, ph, name, t)                                        \
    do {                                                                      \
        if (t) sg_trace_event((ith), (ph), (name), (t));                      \
    } while (0)

/* Records [t0, now) for thread ith (0..max_threads-1 of sg_trace_open). */
void sg_trace_event(int ith, sg_phase ph, const char *name, uint64_t t0);

/* Starts a trace of the next `steps` steps (1..1000) of up to max_threads
 * threads, to be written to path: the buffers are allocated here, and path
 * is probed (created and removed) so that a bad path fails now, not after
 * training. -1 with error. */
int sg_trace_open(const char *path, int steps, int max_threads);
/* Called by the trainer between steps (never inside a parallel region):
 * turns recording on for the next step while steps remain. */
void sg_trace_step_begin(void);
/* After the step: counts it; recording stops when `steps` are done. */
void sg_trace_step_end(void);
/* Writes the JSON (atomically, like every output) if a trace was open,
 * frees the buffers, and closes. 0, or -1 with error. */
int sg_trace_close(void);

/* Additions for the bench and the command (read between steps only):
 * sg_trace_sum: the open trace's recorded time (ns) and event count per
 * phase, summed over threads (zeros when none is open).
 * sg_trace_steps_done: steps recorded so far in the open trace.
 * sg_trace_dropped: events the last closed trace could not keep. */
void sg_trace_sum(uint64_t ns[SG_PH_COUNT], uint64_t count[SG_PH_COUNT]);
int sg_trace_steps_done(void);
uint64_t sg_trace_dropped(void);

#endif
