// bm_adam.cc: the Adam update of each network, through the step's own entry
// point (sg_net_adam on a tutorial-sized sg_gan), fused (the table's one-pass
// adam kernel) against unfused (PyTorch's separate tensor ops, one pass
// each, as model.c runs them with SIMDGAN_FUSION=0).
//
//   adam/<isa>/<fused|unfused>/<G|D>/nth:T
//
// G holds 283k parameters and D 267k (hidden 256), padding included.
// Counters: items = parameters per second; bytes = the fused pass's traffic,
// 28 bytes a parameter (p, m, v read and written, g read), so both variants
// report the same work and their GB/s compare directly.
#include "bench.h"

namespace {

void bm_adam(benchmark::State &state, const sg_kernels *k, bool fused, bool net_g, int nth)
{
    sgb::Engine eng(k, nth);
    if (!eng.ok(state)) return;
    eng.e.fusion = fused;
    sg_gan_config cfg;
    sg_gan_config_default(&cfg);
    sg_gan g;
    sg_gan_init(&g, &cfg, &eng.e, 1);
    sg_net *net = net_g ? &g.G : &g.D;
    sgb::Floats grad(net->total, -1e-2f, 1e-2f, 7);
    for (size_t i = 0; i < net->total; i++) net->grad[i] = grad.p[i];

    sgb::run_team(state, nth, [&](int ith) { sg_net_adam(&g, net, ith); });

    state.SetItemsProcessed((int64_t)state.iterations() * (int64_t)net->total);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)net->total * 28);
    sg_gan_free(&g);
}

} // namespace

void sgb::register_adam()
{
    for (bool net_g : {true, false})
        for (const sg_kernels *k : isas())
            for (bool fused : {true, false})
                for (int nth : thread_counts())
                    add("adam/" + std::string(k->isa) + (fused ? "/fused/" : "/unfused/") +
                            (net_g ? "G" : "D"),
                        nth, [=](benchmark::State &s) { bm_adam(s, k, fused, net_g, nth); });
}
