// bm_bce.cc: D's output layer: sigmoid + BCE loss + the logits' gradient,
// the fused sigmoid_bce kernel against the unfused sequence model.c runs
// with SIMDGAN_FUSION=0 (copy, sigmoid, bce_fwd, bce_bwd, sigmoid's act_bwd).
//
//   bce/<isa>/<fused|unfused>/n<N>/nth:1
//
// N = 200 (the D step: real and fake) and 100 (the G step), on one thread
// as in the step. Logits span the sigmoid's saturation, targets are half
// ones, half zeros. Counter: items (logits) per second.
#include "bench.h"

#include <cstring>

namespace {

void bm_bce(benchmark::State &state, const sg_kernels *k, size_t n, bool fused)
{
    sgb::Floats z(n, -20.0f, 20.0f, 1), t(n), y(n), loss(n), dz(n);
    // As in the step: targets 1 for the first B = 100 outputs (real, or
    // the G step's), 0 after; the loss is a mean over B in both steps.
    const size_t B = 100;
    for (size_t i = 0; i < n && i < B; i++) t.p[i] = 1.0f;
    const float count = (float)B;
    for (auto _ : state) {
        if (fused) {
            k->sigmoid_bce(y, loss, dz, z, t, count, 0, n);
        } else {
            std::memcpy(y.p, z.p, n * sizeof(float));
            k->bias_act_fwd(y, 1, nullptr, 0, n, 1, SG_ACT_SIGMOID);
            k->bce_fwd(loss, y, t, 0, n);
            k->bce_bwd(dz, y, t, count, 0, n);
            k->act_bwd(dz, 1, dz, 1, y, 1, 0, n, 1, SG_ACT_SIGMOID);
        }
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed((int64_t)state.iterations() * (int64_t)n);
}

} // namespace

void sgb::register_bce()
{
    for (size_t n : {200, 100})
        for (const sg_kernels *k : isas())
            for (bool fused : {true, false})
                add("bce/" + std::string(k->isa) + (fused ? "/fused" : "/unfused") + "/n" +
                        std::to_string(n),
                    1, [=](benchmark::State &s) { bm_bce(s, k, n, fused); },
                    benchmark::kNanosecond);
}
