// bm_epilogue.cc: bias + activation forward and activation backward, fused
// into the GEMM's epilogue against the separate pass the unfused path makes
// (model.c with SIMDGAN_FUSION=0: sg_gemm, then bias_act_fwd or act_bwd on
// this thread's rows, then a barrier).
//
//   epilogue/<isa>/<fused|unfused>/<fwd|bwd>_<act>_<M>x<N>x<K>/nth:T
//
// Shapes are the step's products that carry each activation:
//   fwd  G's first layer (ReLU), G's last (Tanh), D's first on 2B (LeakyReLU)
//   bwd  dX . tanh' into G (D's input gradient, G step), LeakyReLU' in D
//        (D step), ReLU' in G (G step)
// Counters as bm_gemm.cc: flops = 2 M N K (the epilogue's own work is not
// counted, so fused and unfused are compared on the same work).
#include "bench.h"

namespace {

struct Case {
    bool bwd;
    sg_act act;
    const char *act_name;
    size_t M, N, K;
};

const Case cases[] = {
    {false, SG_ACT_RELU, "relu", 100, 256, 64},
    {false, SG_ACT_TANH, "tanh", 100, 784, 256},
    {false, SG_ACT_LRELU, "lrelu", 200, 256, 784},
    {true, SG_ACT_TANH, "tanh", 100, 784, 256},
    {true, SG_ACT_LRELU, "lrelu", 200, 256, 256},
    {true, SG_ACT_RELU, "relu", 100, 256, 784},
};

std::string case_name(const Case &c)
{
    return std::string(c.bwd ? "bwd_" : "fwd_") + c.act_name + "_" + std::to_string(c.M) + "x" +
           std::to_string(c.N) + "x" + std::to_string(c.K);
}

void bm_epilogue(benchmark::State &state, const sg_kernels *k, Case c, bool fused, int nth)
{
    sgb::Engine eng(k, nth);
    if (!eng.ok(state)) return;
    sg_engine *e = &eng.e;
    sg_engine_reserve(e, c.M, c.N, c.K);
    // fwd: X [M,K], W [N,K], bias [N]. bwd: dY [M,K], W [K,N], Y [M,N] the
    // activation's output (in its range, so both branches of act' are taken).
    sgb::Floats a(c.M * c.K, -1, 1, 1), w(c.K * c.N, -1, 1, 2), bias(c.N, -1, 1, 3);
    sgb::Floats y(c.M * c.N, c.act == SG_ACT_RELU ? 0.0f : -1.0f, 1.0f, 4), out(c.M * c.N);
    sg_view A = {a, c.K, 1};
    sg_view B = c.bwd ? sg_view{w, c.N, 1} : sg_view{w, 1, c.K};
    if (c.act == SG_ACT_RELU && c.bwd) // ReLU's output: zero where it was cut
        for (size_t i = 0; i < y.n; i += 2) y.p[i] = 0.0f;
    sg_epi epi = {c.bwd ? nullptr : bias.p, c.bwd ? SG_ACT_NONE : c.act,
                       c.bwd ? c.act : SG_ACT_NONE, y, c.N};

    double secs = sgb::run_team(state, nth, [&](int ith) {
        if (fused) {
            sg_gemm(e, c.M, c.N, c.K, A, B, out, c.N, 0, &epi, ith);
            return;
        }
        size_t i0, i1;
        sg_gemm(e, c.M, c.N, c.K, A, B, out, c.N, 0, nullptr, ith);
        sg_slice(c.M, ith, nth, &i0, &i1);
        if (c.bwd)
            k->act_bwd(out, c.N, out, c.N, y, c.N, i0, i1, c.N, c.act);
        else
            k->bias_act_fwd(out, c.N, bias, i0, i1, c.N, c.act);
        sg_barrier(e);
    });
    benchmark::DoNotOptimize(out.p[0]);
    sgb::set_flops(state, 2.0 * (double)c.M * (double)c.N * (double)c.K, secs,
                   sgb::peak_flops(k, nth));
}

} // namespace

void sgb::register_epilogue()
{
    for (const Case &c : cases)
        for (const sg_kernels *k : isas())
            for (bool fused : {true, false})
                for (int nth : thread_counts())
                    add("epilogue/" + std::string(k->isa) + (fused ? "/fused/" : "/unfused/") +
                            case_name(c),
                        nth, [=](benchmark::State &s) { bm_epilogue(s, k, c, fused, nth); });
}
