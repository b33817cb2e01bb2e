// bm_step.cc: one full training iteration of the tutorial's model (batch
// 100, hidden 256, latent 64), exactly as `simdgan train` runs it:
// sg_gan_run_step, one parallel region per step, with a fill callback that
// copies a synthetic real batch and z1, z2 from preallocated buffers (eight
// of each, in turn) instead of gathering MNIST and drawing normals.
//
//   step/<isa>/<fused|unfused>/b100_h256/nth:T  T threads, bound to cores
//       where T >= 2 (SG_BIND_AUTO, the engine's default)
//   step/<isa>/fused_unbound/b100_h256/nth:T    the same, never bound
//   step/<isa>/fused/b100_h1024/nth:T, step/<isa>/fused/b500_h256/nth:T
//       larger models (hidden 1024, batch 500): their flops against b100_h256's
//   step/<isa>/fused_auto/b100_h256/nth:T       (T >= 2) the count chosen
//       per step by the autothreads controller from 1..T, as a trainer
//       with adaptive threads runs (probe rounds included)
//   step/<isa>/bf16_<path>/b100_h256/nth:T      the fused step with bf16
//       products (sg_gan_use_bf16, as `simdgan train --precision bf16`) on
//       bf16 path <path>: the one sg_bf16_select(NULL) chooses (the best
//       this CPU runs, or $SIMDGAN_BF16's; a bad value exits 2 as a bad
//       SIMDGAN_ISA does), and ref, the fp32 table <isa>'s micro-kernel on
//       bf16-rounded panels (what a CPU without AMX, AVX512_BF16 or BFMMLA
//       runs, e.g. step/avx2/bf16_ref on an AVX2 laptop); compare with
//       step/<isa>/fused/b100_h256 (the same FLOP count)
//
// Time in microseconds (compare.py prints whole time units: in milliseconds
// a 2.9 ms step would read 3). Counters: ms_per_step (the same time, for
// tools/load-test and tools/compare-pytorch); flops = the step's GEMM work
// (step_flops below: 568.9 MFLOP at batch 100) per second; peak_pct against
// the ISA's FMA peak at T threads (bf16 rows: the path's matrix-unit peak,
// bm_peak.cc's peak/bf16_<path>; the ref path's is the FMA peak); fused_auto
// also threads_mean, the mean count used. tools/load-test runs these beside
// a competing process.
//
// SIMDGAN_TRACE=FILE traces the first step row that runs (pick it with
// --benchmark_filter): after each of its timed loops, SIMDGAN_TRACE_STEPS
// (20) more steps are recorded (src/trace.h) and written to FILE, rewritten
// by each run of the row, for tools/step-breakdown; the timing is not
// traced. That row also gets counters from the trace: barrier_pct (the
// threads' time waiting in barriers, % of step x threads), barriers (per
// step and thread), pack_pct, kernel_pct and adam_pct (the same shares of
// packing, micro-kernel tiles and Adam).
#include "bench.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "autothreads.h"
#include "trace.h"
}

namespace {

// Floats of the GEMMs one step makes (model.c), 2 in out per row each:
//   D step: G forward (B rows), D forward, weight gradients and input-side
//           gradients of D's layers 1.. (2B rows)
//   G step: G forward, D forward and all of D's input gradients (B rows),
//           G's weight gradients and input-side gradients of layers 1..
double step_flops(const sg_gan_config &c)
{
    const double B = c.batch, lat = c.latent, h = c.hidden, img = c.image;
    const double pg = lat * h + h * h + h * img, qg = h * h + h * img; // G: all layers, 1..
    const double pd = img * h + h * h + h * 1, qd = h * h + h * 1;     // D
    const double d_step = B * pg + 2 * B * (pd + pd + qd);
    const double g_step = B * (pg + pd + pd) + B * (pg + qg);
    return 2.0 * (d_step + g_step);
}

struct Batches {
    static constexpr int count = 8;
    size_t B, img, lat;
    sgb::Floats real, z1, z2; // [count][B, img], [count][B, lat] twice
    int next = 0;
    Batches(const sg_gan_config &c)
        : B((size_t)c.batch), img((size_t)c.image), lat((size_t)c.latent),
          real(count * B * img, -1.0f, 1.0f, 11), z1(count * B * lat), z2(count * B * lat)
    {
        std::mt19937 rng(5);
        std::normal_distribution<float> normal;
        for (size_t i = 0; i < z1.n; i++) z1.p[i] = normal(rng), z2.p[i] = normal(rng);
    }
};

// sg_fill_fn: this thread's rows of the real batch and of z1, z2.
void fill(void *ctx, sg_gan *g, int ith, int nth)
{
    const Batches *b = static_cast<const Batches *>(ctx);
    size_t r0, r1;
    sg_slice(b->B, ith, nth, &r0, &r1);
    const size_t img = b->img, lat = b->lat, at = (size_t)b->next * b->B;
    std::memcpy(g->xd + r0 * img, b->real.p + (at + r0) * img, (r1 - r0) * img * sizeof(float));
    std::memcpy(g->z1 + r0 * lat, b->z1.p + (at + r0) * lat, (r1 - r0) * lat * sizeof(float));
    std::memcpy(g->z2 + r0 * lat, b->z2.p + (at + r0) * lat, (r1 - r0) * lat * sizeof(float));
}

enum class Variant { fused, unfused, fused_unbound, fused_auto };

// The row SIMDGAN_TRACE traces: the first step row that runs.
std::string traced_row;

// Traces steps more steps of g into $SIMDGAN_TRACE when row is the traced
// row, and sets its counters from them. False (with the row skipped and the
// reason given) when the trace cannot be written.
bool trace_steps(benchmark::State &state, const std::string &row, sg_gan *g, Batches *batches)
{
    const char *path = std::getenv("SIMDGAN_TRACE");
    if (!path || !*path) return true;
    if (traced_row.empty()) traced_row = row;
    if (row != traced_row) return true;
    int steps = 20;
    if (const char *s = std::getenv("SIMDGAN_TRACE_STEPS")) {
        char *end;
        long v = std::strtol(s, &end, 10);
        if (!*s || *end || v < 1 || v > 1000) {
            state.SkipWithError("SIMDGAN_TRACE_STEPS: expected an integer from 1 to 1000");
            return false;
        }
        steps = (int)v;
    }
    if (sg_trace_open(path, steps, g->e->max_nth) != 0) {
        state.SkipWithError(sg_last_error());
        return false;
    }
    for (int i = 0; i < steps; i++) {
        sg_gan_run_step(g, fill, batches);
        batches->next = (batches->next + 1) % Batches::count;
    }
    uint64_t ns[SG_PH_COUNT], n[SG_PH_COUNT];
    sg_trace_sum(ns, n);
    const int done = sg_trace_steps_done();
    if (sg_trace_close() != 0) {
        state.SkipWithError(sg_last_error());
        return false;
    }
    // Steps recorded only once model.c calls sg_trace_step_begin/end.
    if (done == 0 || ns[SG_PH_STEP] == 0) return true;
    const double all = (double)ns[SG_PH_STEP] * g->e->nth / 100.0;
    state.counters["barrier_pct"] = (double)ns[SG_PH_BARRIER] / all;
    state.counters["barriers"] = (double)n[SG_PH_BARRIER] / g->e->nth / done;
    state.counters["pack_pct"] = (double)(ns[SG_PH_PACK_A] + ns[SG_PH_PACK_B]) / all;
    state.counters["kernel_pct"] = (double)ns[SG_PH_KERNEL] / all;
    state.counters["adam_pct"] = (double)ns[SG_PH_ADAM] / all;
    return true;
}

// bk: the bf16 path of bf16 products (sg_gan_use_bf16), or nullptr: fp32.
void bm_step(benchmark::State &state, const sg_kernels *k, Variant v, int nth, int batch,
             int hidden, const std::string &row, const sg_bf16_kernels *bk = nullptr)
{
    sgb::Engine eng(k, nth);
    if (!eng.ok(state)) return;
    eng.e.fusion = v != Variant::unfused;
    eng.e.bind = v == Variant::fused_unbound ? SG_BIND_NEVER : SG_BIND_AUTO;
    sg_gan_config cfg;
    sg_gan_config_default(&cfg);
    cfg.batch = batch;
    cfg.hidden = hidden;
    sg_gan g;
    sg_gan_init(&g, &cfg, &eng.e, 1);
    if (bk && sg_gan_use_bf16(&g, bk) != 0) {
        state.SkipWithError(sg_last_error());
        sg_gan_free(&g);
        return;
    }
    Batches batches(cfg);
    sg_autothreads at;
    sg_autothreads_init(&at, nth);
    const bool automatic = v == Variant::fused_auto;
    double threads_sum = 0.0;

    unsigned long barriers0 = sg_barrier_count(&eng.e);
    double t0 = sgb::now_seconds();
    if (automatic) {
        int n = sg_autothreads_next(&at, -1.0);
        for (auto _ : state) {
            sg_engine_set_threads(&eng.e, n);
            threads_sum += n;
            double s0 = sgb::now_seconds();
            sg_gan_run_step(&g, fill, &batches);
            n = sg_autothreads_next(&at, sgb::now_seconds() - s0);
            batches.next = (batches.next + 1) % Batches::count;
        }
    } else {
        for (auto _ : state) {
            sg_gan_run_step(&g, fill, &batches);
            batches.next = (batches.next + 1) % Batches::count;
        }
    }
    double secs = sgb::now_seconds() - t0;
    unsigned long barriers = sg_barrier_count(&eng.e) - barriers0;
    if (!trace_steps(state, row, &g, &batches)) {
        sg_gan_free(&g);
        return;
    }

    if (state.iterations()) {
        state.counters["ms_per_step"] = 1e3 * secs / (double)state.iterations();
        state.counters["barriers_per_step"] = (double)barriers / (double)state.iterations();
        if (automatic) state.counters["threads_mean"] = threads_sum / (double)state.iterations();
    }
    sgb::set_flops(state, step_flops(cfg), secs,
                   bk && bk->peak ? sgb::bf16_peak_flops(bk, nth) : sgb::peak_flops(k, nth));
    sg_gan_free(&g);
}

} // namespace

void sgb::register_step()
{
    const struct {
        Variant v;
        const char *name;
    } variants[] = {{Variant::fused, "fused"},
                    {Variant::unfused, "unfused"},
                    {Variant::fused_unbound, "fused_unbound"},
                    {Variant::fused_auto, "fused_auto"}};
    for (const sg_kernels *k : isas())
        for (const auto &var : variants)
            for (int nth : thread_counts()) {
                if (var.v == Variant::fused_auto && nth < 2) continue; // nothing to choose
                Variant v = var.v;
                std::string base = "step/" + std::string(k->isa) + "/" + var.name + "/b100_h256";
                std::string row = base + "/nth:" + std::to_string(nth);
                add(base, nth, [=](benchmark::State &s) { bm_step(s, k, v, nth, 100, 256, row); });
            }
    // A larger model must cost no more per FLOP: compare these rows' flops
    // with b100_h256's.
    const struct {
        int batch, hidden;
    } larger[] = {{100, 1024}, {500, 256}};
    for (const sg_kernels *k : isas())
        for (const auto &m : larger)
            for (int nth : thread_counts()) {
                std::string base = "step/" + std::string(k->isa) + "/fused/b" +
                                   std::to_string(m.batch) + "_h" + std::to_string(m.hidden);
                std::string row = base + "/nth:" + std::to_string(nth);
                add(base, nth, [=](benchmark::State &s) {
                    bm_step(s, k, Variant::fused, nth, m.batch, m.hidden, row);
                });
            }
    // bf16 products: the selected path, and ref unless that is it.
    char why[256];
    const sg_bf16_kernels *sel = sg_bf16_select(nullptr, why, sizeof why);
    if (!sel) {
        std::fprintf(stderr, "simdgan_bench: %s\n", sg_last_error());
        std::exit(2);
    }
    std::vector<const sg_bf16_kernels *> paths{sel};
    if (sel != &sg_bf16_kernels_ref) paths.push_back(&sg_bf16_kernels_ref);
    for (const sg_kernels *k : isas())
        for (const sg_bf16_kernels *bk : paths)
            for (int nth : thread_counts()) {
                std::string base =
                    "step/" + std::string(k->isa) + "/bf16_" + bk->path + "/b100_h256";
                std::string row = base + "/nth:" + std::to_string(nth);
                add(base, nth, [=](benchmark::State &s) {
                    bm_step(s, k, Variant::fused, nth, 100, 256, row, bk);
                });
            }
}
