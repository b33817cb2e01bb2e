// bm_bf16.cc: the bf16 GEMM (src/gemm_bf16.h) on the products one training
// step makes, per bf16 path this CPU runs.
//
//   gemm_bf16/<path>/<layout>_<M>x<N>x<K>/nth:T
//       sg_gemm_bf16, operands fp32 (rounded to bf16 as they are packed);
//       <path> is amx, bfmmla, or ref_<isa> (bf16-rounded panels through
//       the fp32 table <isa>'s micro-kernel)
//   gemm_bf16/<path>/<layout>_<M>x<N>x<K>/packed/nth:T
//       sg_gemm_bf16_packed, B (the weight, for fwd and bwd_data) packed
//       beforehand, as when Adam keeps bf16 copies of the weights
//
// Layouts and shapes: bench.h's model_shapes (bm_gemm.cc's gemm/<isa>/...
// rows are the fp32 products to compare with: run both filters in one
// binary). Raw
// products, no epilogue. Counters: flops = 2 M N K per iteration;
// peak_pct against the path's matrix-unit peak at T threads (bm_peak.cc's
// peak/bf16_<path> rows; ref_<isa> rows: the fp32 table's FMA peak, as
// bm_gemm's).
#include "bench.h"

#include <utility>

extern "C" {
#include "gemm_bf16.h"
}


namespace {

using sgb::Operands;
using sgb::Shape;

void bm_bf16(benchmark::State &state, const sg_bf16_kernels *bk, const sg_kernels *fk, Shape s,
             int nth, bool packed)
{
    sgb::Engine eng(fk, nth);
    if (!eng.ok(state)) return;
    sg_bf16_engine be;
    if (sg_bf16_engine_init(&be, &eng.e, bk) != 0) {
        state.SkipWithError(sg_last_error());
        return;
    }
    sg_bf16_engine_reserve(&be, s.M, s.N, s.K);
    Operands o(s);
    void *Bp = nullptr;
    if (packed) {
        Bp = sg_xalloc(sg_bf16_b_panels(&be, s.N) * sg_bf16_b_panel_bytes(&be, s.K) + 64);
        sg_bf16_pack_b(&be, Bp, o.B, s.K, s.N, 0, sg_bf16_b_panels(&be, s.N));
    }
    double secs = sgb::run_team(state, nth, [&](int ith) {
        if (packed)
            sg_gemm_bf16_packed(&be, s.M, s.N, s.K, o.A, Bp, o.c, s.N, 0, nullptr, nullptr, ith);
        else
            sg_gemm_bf16(&be, s.M, s.N, s.K, o.A, o.B, o.c, s.N, 0, nullptr, nullptr, ith);
    });
    benchmark::DoNotOptimize(o.c.p[0]);
    sgb::set_flops(state, sgb::shape_flops(s), secs,
                   bk->peak ? sgb::bf16_peak_flops(bk, nth) : sgb::peak_flops(fk, nth));
    sg_free(Bp);
    sg_bf16_engine_free(&be);
}

} // namespace

void sgb::register_bf16()
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const sg_kernels *best = isas().front();
    std::vector<std::pair<std::string, std::pair<const sg_bf16_kernels *, const sg_kernels *>>> paths;
    for (const sg_bf16_kernels *const *t = sg_bf16_built(); *t; t++) {
        if (!sg_bf16_runnable(*t, &ci)) continue;
        if ((*t)->mr)
            paths.push_back({(*t)->path, {*t, best}});
        else
            for (const sg_kernels *k : isas())
                paths.push_back({std::string((*t)->path) + "_" + k->isa, {*t, k}});
    }
    for (const Shape &s : sgb::model_shapes)
        for (auto &p : paths)
            for (int packed = 0; packed < (s.layout == BWD_WEIGHTS ? 1 : 2); packed++)
                for (int nth : thread_counts())
                    add("gemm_bf16/" + p.first + "/" + sgb::shape_name(s) + (packed ? "/packed" : ""),
                        nth, [=](benchmark::State &st) {
                            bm_bf16(st, p.second.first, p.second.second, s, nth, packed != 0);
                        });
}
