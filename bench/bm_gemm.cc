// bm_gemm.cc: sg_gemm on the products one training step makes, per ISA and
// thread count, against OpenBLAS's cblas_sgemm in the same binary.
//
//   gemm/<isa>/<layout>_<M>x<N>x<K>/nth:T
//   gemm/openblas/<layout>_<M>x<N>x<K>/nth:T
//
// Layouts and shapes: bench.h's model_shapes, and nn 1024^3, the square
// reference point.
// Raw products: no epilogue here (bm_epilogue.cc has the fused ones).
// Counters: flops = 2 M N K per iteration; peak_pct against the ISA's FMA
// peak at T threads (OpenBLAS rows: against the best ISA's).
#include "bench.h"

#ifdef SIMDGAN_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

using sgb::Operands;
using sgb::Shape;

void bm_ours(benchmark::State &state, const sg_kernels *k, Shape s, int nth)
{
    sgb::Engine eng(k, nth);
    if (!eng.ok(state)) return;
    sg_engine_reserve(&eng.e, s.M, s.N, s.K);
    Operands o(s);
    double secs = sgb::run_team(state, nth, [&](int ith) {
        sg_gemm(&eng.e, s.M, s.N, s.K, o.A, o.B, o.c, s.N, 0, nullptr, ith);
    });
    benchmark::DoNotOptimize(o.c.p[0]);
    sgb::set_flops(state, sgb::shape_flops(s), secs, sgb::peak_flops(k, nth));
}

#ifdef SIMDGAN_BENCH_OPENBLAS
// Row-major cblas_sgemm on the same stored operands, OpenBLAS on nth of its
// own threads (called from one thread, outside any OpenMP region).
void bm_openblas(benchmark::State &state, Shape s, int nth)
{
    Operands o(s);
    const int M = (int)s.M, N = (int)s.N, K = (int)s.K;
    CBLAS_TRANSPOSE ta = CblasNoTrans, tb = CblasNoTrans;
    int lda = K, ldb = N;
    if (s.layout == sgb::FWD) tb = CblasTrans, ldb = K;
    if (s.layout == sgb::BWD_WEIGHTS) ta = CblasTrans, lda = M;
    openblas_set_num_threads(nth);
    double t0 = sgb::now_seconds();
    for (auto _ : state)
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, o.a, lda, o.b, ldb, 0.0f, o.c, N);
    double secs = sgb::now_seconds() - t0;
    benchmark::DoNotOptimize(o.c.p[0]);
    sgb::set_flops(state, sgb::shape_flops(s), secs, sgb::best_peak_flops(nth));
}
#endif

} // namespace

void sgb::register_gemm()
{
    std::vector<Shape> shapes(std::begin(sgb::model_shapes), std::end(sgb::model_shapes));
    shapes.push_back({sgb::NN, 1024, 1024, 1024}); // the square reference point
    for (const Shape &s : shapes) {
        for (const sg_kernels *k : isas())
            for (int nth : thread_counts())
                add("gemm/" + std::string(k->isa) + "/" + sgb::shape_name(s), nth,
                    [=](benchmark::State &st) { bm_ours(st, k, s, nth); });
#ifdef SIMDGAN_BENCH_OPENBLAS
        for (int nth : thread_counts())
            add("gemm/openblas/" + sgb::shape_name(s), nth,
                [=](benchmark::State &st) { bm_openblas(st, s, nth); });
#endif
    }
}
