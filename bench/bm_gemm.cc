// bm_gemm.cc: sg_gemm on the products one training step makes, per ISA and
// thread count, against OpenBLAS's cblas_sgemm in the same binary.
//
//   gemm/<isa>/<layout>_<M>x<N>x<K>/nth:T
//   gemm/openblas/<layout>_<M>x<N>x<K>/nth:T
//
// Layouts (W stored [out, in], activations [rows, features], as in model.c):
//   fwd          Y[M,N]  = X[M,K] . W[N,K]^T      (rows, out, in)
//   bwd_data     dX[M,N] = dY[M,K] . W[K,N]       (rows, in, out)
//   bwd_weights  dW[M,N] = dY[K,M]^T . X[K,N]     (out, in, rows)
//   nn           C = A[M,K] . B[K,N], the square 1024^3 reference point
// Raw products: no epilogue here (bm_epilogue.cc has the fused ones).
// Counters: flops = 2 M N K per iteration; peak_pct against the ISA's FMA
// peak at T threads (OpenBLAS rows: against the best ISA's).
#include "bench.h"

#ifdef SIMDGAN_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

enum Layout { FWD, BWD_DATA, BWD_WEIGHTS, NN };
const char *const layout_names[] = {"fwd", "bwd_data", "bwd_weights", "nn"};

struct Shape {
    Layout layout;
    size_t M, N, K;
};

// G: 64 -> 256 -> 256 -> 784 on 100 rows; D: 784 -> 256 -> 256 -> 1 on 200
// (the D step) or 100 rows (the G step).
const Shape shapes[] = {
    {FWD, 100, 256, 64},          {FWD, 100, 256, 256},         {FWD, 100, 784, 256},
    {FWD, 100, 256, 784},         {FWD, 200, 256, 784},         {FWD, 200, 256, 256},
    {BWD_DATA, 100, 784, 256},    {BWD_DATA, 100, 256, 256},    {BWD_DATA, 100, 256, 784},
    {BWD_DATA, 200, 256, 256},    {BWD_WEIGHTS, 256, 64, 100},  {BWD_WEIGHTS, 256, 256, 100},
    {BWD_WEIGHTS, 784, 256, 100}, {BWD_WEIGHTS, 256, 256, 200}, {BWD_WEIGHTS, 256, 784, 200},
    {NN, 1024, 1024, 1024},
};

std::string shape_name(const Shape &s)
{
    return std::string(layout_names[s.layout]) + "_" + std::to_string(s.M) + "x" +
           std::to_string(s.N) + "x" + std::to_string(s.K);
}

// The operands as stored: A [M,K] or, for bwd_weights, [K,M]; B [N,K] for
// fwd (a weight), else [K,N]. Both hold M*K and K*N floats either way.
struct Operands {
    sgb::Floats a, b, c;
    explicit Operands(const Shape &s) : a(s.M * s.K, -1, 1, 1), b(s.K * s.N, -1, 1, 2), c(s.M * s.N) {}
};

// gemm.h's strided views of the stored operands.
void views(const Shape &s, const Operands &o, sg_view *A, sg_view *B)
{
    switch (s.layout) {
    case FWD:
        *A = sg_view{o.a, s.K, 1}, *B = sg_view{o.b, 1, s.K};
        break;
    case BWD_DATA:
    case NN:
        *A = sg_view{o.a, s.K, 1}, *B = sg_view{o.b, s.N, 1};
        break;
    case BWD_WEIGHTS:
        *A = sg_view{o.a, 1, s.M}, *B = sg_view{o.b, s.N, 1};
        break;
    }
}

double flops(const Shape &s) { return 2.0 * (double)s.M * (double)s.N * (double)s.K; }

void bm_ours(benchmark::State &state, const sg_kernels *k, Shape s, int nth)
{
    sgb::Engine eng(k, nth);
    if (!eng.ok(state)) return;
    sg_engine_reserve(&eng.e, s.M, s.N, s.K);
    Operands o(s);
    sg_view A, B;
    views(s, o, &A, &B);
    double secs = sgb::run_team(state, nth, [&](int ith) {
        sg_gemm(&eng.e, s.M, s.N, s.K, A, B, o.c, s.N, 0, nullptr, ith);
    });
    benchmark::DoNotOptimize(o.c.p[0]);
    sgb::set_flops(state, flops(s), secs, sgb::peak_flops(k, nth));
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
    if (s.layout == FWD) tb = CblasTrans, ldb = K;
    if (s.layout == BWD_WEIGHTS) ta = CblasTrans, lda = M;
    openblas_set_num_threads(nth);
    double t0 = sgb::now_seconds();
    for (auto _ : state)
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, 1.0f, o.a, lda, o.b, ldb, 0.0f, o.c, N);
    double secs = sgb::now_seconds() - t0;
    benchmark::DoNotOptimize(o.c.p[0]);
    sgb::set_flops(state, flops(s), secs, sgb::best_peak_flops(nth));
}
#endif

} // namespace

void sgb::register_gemm()
{
    for (const Shape &s : shapes) {
        for (const sg_kernels *k : isas())
            for (int nth : thread_counts())
                add("gemm/" + std::string(k->isa) + "/" + shape_name(s), nth,
                    [=](benchmark::State &st) { bm_ours(st, k, s, nth); });
#ifdef SIMDGAN_BENCH_OPENBLAS
        for (int nth : thread_counts())
            add("gemm/openblas/" + shape_name(s), nth,
                [=](benchmark::State &st) { bm_openblas(st, s, nth); });
#endif
    }
}
