// bm_step.cc: one full training iteration of the tutorial's model (batch
// 100, hidden 256, latent 64), exactly as `simdgan train` runs it:
// sg_gan_run_step, one parallel region per step, with a fill callback that
// copies a synthetic real batch and z1, z2 from preallocated buffers (eight
// of each, in turn) instead of gathering MNIST and drawing normals.
//
//   step/<isa>/<fused|unfused>/b100_h256/nth:T  T threads, bound to cores
//       where T >= 2 (SG_BIND_AUTO, the engine's default)
//   step/<isa>/fused_unbound/b100_h256/nth:T    the same, never bound
//   step/<isa>/fused_auto/b100_h256/nth:T       (T >= 2) the count chosen
//       per step by the autothreads controller from 1..T, as a trainer
//       with adaptive threads runs (probe rounds included)
//
// Time in microseconds (compare.py prints whole time units: in milliseconds
// a 2.9 ms step would read 3). Counters: ms_per_step (the same time, for
// tools/load-test and tools/compare-pytorch); flops = the step's GEMM work
// (step_flops below: 568.9 MFLOP at batch 100) per second; peak_pct against
// the ISA's FMA peak at T threads; fused_auto also threads_mean, the mean
// count used. tools/load-test runs these beside a competing process.
#include "bench.h"

#include <cstring>
#include <random>

extern "C" {
#include "autothreads.h"
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

void bm_step(benchmark::State &state, const sg_kernels *k, Variant v, int nth)
{
    sgb::Engine eng(k, nth);
    if (!eng.ok(state)) return;
    eng.e.fusion = v != Variant::unfused;
    eng.e.bind = v == Variant::fused_unbound ? SG_BIND_NEVER : SG_BIND_AUTO;
    sg_gan_config cfg;
    sg_gan_config_default(&cfg);
    sg_gan g;
    sg_gan_init(&g, &cfg, &eng.e, 1);
    Batches batches(cfg);
    sg_autothreads at;
    sg_autothreads_init(&at, nth);
    const bool automatic = v == Variant::fused_auto;
    double threads_sum = 0.0;

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

    if (state.iterations()) {
        state.counters["ms_per_step"] = 1e3 * secs / (double)state.iterations();
        if (automatic) state.counters["threads_mean"] = threads_sum / (double)state.iterations();
    }
    sgb::set_flops(state, step_flops(cfg), secs, sgb::peak_flops(k, nth));
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
                add("step/" + std::string(k->isa) + "/" + var.name + "/b100_h256", nth,
                    [=](benchmark::State &s) { bm_step(s, k, v, nth); });
            }
}
