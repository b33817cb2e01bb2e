/* trace.c: the step timeline of trace.h, recorded per thread and written as
 * Chrome trace-event JSON.
 *
 * Recording: each thread owns one slot (its own cache lines) with a buffer
 * of events allocated and zeroed (so its pages are touched) by
 * sg_trace_open; sg_trace_event appends without locks or allocation, and an
 * event past the buffer only increments the slot's dropped count. The step
 * index and sg_trace_on change only between steps, in sg_trace_step_begin
 * and sg_trace_step_end, which the trainer calls outside parallel regions.
 *
 * The JSON (sg_trace_close), one object:
 *   traceEvents  "M" metadata (process and thread names), then every event
 *                as an "X" complete event: name, cat (the phase's name),
 *                pid 1, tid (the thread index), ts and dur in microseconds
 *                (three decimals: nanoseconds), args {"step": i}, where ts
 *                counts from the start of the first traced step
 *   otherData    {"steps", "threads", "dropped", "events_per_thread"}
 * Each traced step adds one event of cat STEP, name "step", on thread 0,
 * from sg_trace_step_begin to sg_trace_step_end. */
#define _POSIX_C_SOURCE 200809L
#include "trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

const char *const sg_phase_names[SG_PH_COUNT] = {
    "STEP", "FILL", "PACK_A", "PACK_B", "KERNEL", "EPILOGUE", "LOSS", "ADAM", "BARRIER",
};

int sg_trace_on;

/* Buffer room per thread per step: a step's events on one thread (the
 * GEMMs' packs, B panels and tiles, the barriers, epilogues, loss, Adam,
 * fill) are some 250 at the default sizes, more with wider layers (an event
 * per B panel); past this they are counted as dropped. The whole trace is
 * held to TRACE_BYTES_MAX, so a trace of many steps on many threads drops
 * events instead of taking the machine's memory. */
#define EVENTS_PER_STEP 2048
#define TRACE_BYTES_MAX ((size_t)512 << 20)

typedef struct trace_ev {
    const char *name;
    uint64_t t0, t1;  /* sg_trace_now() at the begin and end               */
    uint16_t step;    /* 0.. steps-1, the traced step it fell in            */
    uint8_t ph;       /* sg_phase                                          */
} trace_ev;

/* One per thread, on cache lines of its own: only thread ith writes it. */
typedef struct trace_slot {
    _Alignas(64) trace_ev *ev; /* [cap]                                     */
    size_t n, cap;
    uint64_t dropped;
} trace_slot;

static struct {
    int open;
    int steps, done, nth;
    uint64_t step_t0;  /* sg_trace_now() at the current step's begin        */
    uint64_t origin;   /* the first traced step's begin: ts 0 in the JSON   */
    uint64_t dropped_range; /* events with ith outside 0..nth-1            */
    trace_slot *slot;  /* [nth]                                            */
    trace_ev *step_ev; /* [steps]: the STEP events, kept apart so that a full
                        * buffer never loses a step's extent               */
    char path[4096];
} tr;

static uint64_t last_dropped;

uint64_t sg_trace_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record(int ith, sg_phase ph, const char *name, uint64_t t0, uint64_t t1)
{
    if (ith < 0 || ith >= tr.nth) {
#ifdef _OPENMP
#pragma omp atomic
#endif
        tr.dropped_range++;
        return;
    }
    trace_slot *s = &tr.slot[ith];
    if (s->n == s->cap) {
        s->dropped++;
        return;
    }
    trace_ev *e = &s->ev[s->n++];
    e->name = name;
    e->t0 = t0;
    e->t1 = t1;
    e->step = (uint16_t)tr.done;
    e->ph = (uint8_t)ph;
}

void sg_trace_event(int ith, sg_phase ph, const char *name, uint64_t t0)
{
    uint64_t t1 = sg_trace_now();
    if (sg_trace_on) record(ith, ph, name, t0, t1);
}

int sg_trace_open(const char *path, int steps, int max_threads)
{
    if (tr.open) return sg_error("%s: a trace is already open (%s)", path, tr.path);
    if (steps < 1 || steps > 1000)
        return sg_error("--trace-steps %d: expected an integer from 1 to 1000", steps);
    if (max_threads < 1) return sg_error("trace: %d threads; expected 1 or more", max_threads);
    if (!*path) return sg_error("--trace: empty path; expected a file to write");
    if (strlen(path) >= sizeof tr.path) return sg_error("%s: path too long", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sg_error("%s: is a folder; expected a file to write", path);
    sg_outfile probe;
    if (sg_out_open(&probe, path) != 0) return -1;
    sg_out_abort(&probe);

    size_t per = (size_t)steps * EVENTS_PER_STEP;
    size_t most = TRACE_BYTES_MAX / sizeof(trace_ev) / (size_t)max_threads;
    tr.slot = sg_xalloc((size_t)max_threads * sizeof *tr.slot);
    tr.step_ev = sg_xalloc((size_t)steps * sizeof *tr.step_ev);
    for (int i = 0; i < max_threads; i++) {
        tr.slot[i].cap = per < most ? per : most;
        tr.slot[i].ev = sg_xalloc(tr.slot[i].cap * sizeof(trace_ev));
    }
    strcpy(tr.path, path);
    tr.open = 1;
    tr.steps = steps;
    tr.done = 0;
    tr.nth = max_threads;
    tr.origin = 0;
    tr.dropped_range = 0;
    sg_trace_on = 0;
    return 0;
}

void sg_trace_step_begin(void)
{
    if (!tr.open || tr.done >= tr.steps) return;
    tr.step_t0 = sg_trace_now();
    if (tr.done == 0) tr.origin = tr.step_t0;
    sg_trace_on = 1;
}

void sg_trace_step_end(void)
{
    if (!sg_trace_on) return;
    trace_ev *e = &tr.step_ev[tr.done];
    e->name = "step";
    e->t0 = tr.step_t0;
    e->t1 = sg_trace_now();
    e->step = (uint16_t)tr.done;
    e->ph = SG_PH_STEP;
    sg_trace_on = 0;
    tr.done++;
}

void sg_trace_sum(uint64_t ns[SG_PH_COUNT], uint64_t count[SG_PH_COUNT])
{
    memset(ns, 0, SG_PH_COUNT * sizeof *ns);
    memset(count, 0, SG_PH_COUNT * sizeof *count);
    for (int i = 0; tr.open && i < tr.done; i++) {
        ns[SG_PH_STEP] += tr.step_ev[i].t1 - tr.step_ev[i].t0;
        count[SG_PH_STEP]++;
    }
    for (int i = 0; tr.open && i < tr.nth; i++)
        for (size_t j = 0; j < tr.slot[i].n; j++) {
            const trace_ev *e = &tr.slot[i].ev[j];
            ns[e->ph] += e->t1 - e->t0;
            count[e->ph]++;
        }
}

int sg_trace_steps_done(void) { return tr.open ? tr.done : 0; }

uint64_t sg_trace_dropped(void) { return last_dropped; }

/* A JSON string: names are literals, but a quote or control byte in one
 * must not break the file. */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Nanoseconds as microseconds with three decimals, exactly. */
static void put_us(FILE *f, uint64_t ns)
{
    fprintf(f, "%llu.%03u", (unsigned long long)(ns / 1000), (unsigned)(ns % 1000));
}

static void put_event(FILE *f, const trace_ev *e, int tid)
{
    fputs(",\n{\"name\":", f);
    put_str(f, e->name);
    fprintf(f, ",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"ts\":",
            sg_phase_names[e->ph], tid);
    /* An event cannot begin before the first step (ts 0). */
    put_us(f, e->t0 > tr.origin ? e->t0 - tr.origin : 0);
    fputs(",\"dur\":", f);
    put_us(f, e->t1 - e->t0);
    fprintf(f, ",\"args\":{\"step\":%u}}", (unsigned)e->step);
}

static void write_json(FILE *f, uint64_t dropped)
{
    fputs("{\"traceEvents\":[\n", f);
    fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,"
          "\"args\":{\"name\":\"simdgan\"}}", f);
    for (int i = 0; i < tr.nth; i++) {
        if (!tr.slot[i].n && !(i == 0 && tr.done)) continue;
        fprintf(f, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,"
                   "\"args\":{\"name\":\"thread %d\"}}", i, i);
        fprintf(f, ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":%d,"
                   "\"args\":{\"sort_index\":%d}}", i, i);
    }
    for (int j = 0; j < tr.done; j++) put_event(f, &tr.step_ev[j], 0);
    for (int i = 0; i < tr.nth; i++)
        for (size_t j = 0; j < tr.slot[i].n; j++) put_event(f, &tr.slot[i].ev[j], i);
    fprintf(f, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"steps\":%d,\"threads\":%d,"
               "\"dropped\":%llu,\"events_per_thread\":%zu}}\n",
            tr.done, tr.nth, (unsigned long long)dropped, tr.nth ? tr.slot[0].cap : (size_t)0);
}

int sg_trace_close(void)
{
    if (!tr.open) return 0;
    sg_trace_on = 0;
    uint64_t dropped = tr.dropped_range;
    for (int i = 0; i < tr.nth; i++) dropped += tr.slot[i].dropped;
    last_dropped = dropped;
    sg_outfile o;
    int rc = sg_out_open(&o, tr.path);
    if (rc == 0) {
        write_json(o.f, dropped);
        rc = sg_out_commit(&o);
    }
    for (int i = 0; i < tr.nth; i++) sg_free(tr.slot[i].ev);
    sg_free(tr.slot);
    sg_free(tr.step_ev);
    tr.slot = NULL;
    tr.step_ev = NULL;
    tr.open = 0;
    return rc;
}
