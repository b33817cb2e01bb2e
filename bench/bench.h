// bench.h: what the bm_*.cc files of the Google Benchmark suite share.
//
// The engine is C; this harness is C++ only because Google Benchmark is.
// Every benchmark is registered at run time (RegisterBenchmark), once per
// kernel table this binary has and this CPU runs (or only $SIMDGAN_ISA), and
// once per thread count 1..physical cores, under names
//
//     <family>/<isa or baseline>/<variant>/nth:<T>/real_time
//
// so that `compare.py filters` can put two ISAs, or fused against unfused,
// side by side (the token that differs is always one path element).
// nth:<T> is the number of threads the code under test runs on (its OpenMP
// team, or OpenBLAS's own threads): Google Benchmark's "threads" (its JSON
// field, and the "threads:<N>" it appends to names for ->Threads(N)) counts
// the harness's threads, which is always 1 here, so the two never collide.
// Threaded code is timed in real time (UseRealTime), so every benchmark is.
//
// Counters: "flops" (FLOP/s, a rate) and "peak_pct" (percent of the register-
// resident FMA peak of the same ISA at the same thread count, measured once by
// bm_peak.cc in this binary).
#ifndef SIMDGAN_BENCH_H
#define SIMDGAN_BENCH_H

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#ifdef _OPENMP
#include <omp.h>
#endif

extern "C" {
#include "cpu.h"
#include "gemm.h"
#include "hw.h"
#include "model.h"
#include "util.h"
}

namespace sgb {

// The kernel tables to benchmark, best first: those built into this binary
// that this CPU runs, or only the one $SIMDGAN_ISA names.
const std::vector<const sg_kernels *> &isas();
// 1..physical cores (hwloc), or {1} in a build without OpenMP.
const std::vector<int> &thread_counts();

// FLOP/s of table k's register-resident FMA loop (the fma_peak slot) run by
// nth threads at once: measured once per (k, nth) and cached (bm_peak.cc).
double peak_flops(const sg_kernels *k, int nth);
// The best peak among isas() at nth threads: the yardstick of baselines.
double best_peak_flops(int nth);
// FLOP/s of bf16 table k's matrix-unit loop (its peak slot, which must be
// non-NULL) run by nth threads at once: measured once per (k, nth), cached
// (bm_peak.cc).
double bf16_peak_flops(const sg_bf16_kernels *k, int nth);

// Registers fn as "<base>/nth:<nth>" in real time with the given unit.
benchmark::internal::Benchmark *add(const std::string &base, int nth,
                                    std::function<void(benchmark::State &)> fn,
                                    benchmark::TimeUnit unit = benchmark::kMicrosecond);

// Registration of each family, called by main in this order.
void register_peak();
void register_gemm();
void register_epilogue();
void register_bce();
void register_adam();
void register_normal();
void register_step();
void register_bf16();

// "flops" (a rate) and, when peak > 0, "peak_pct" from the loop's own time.
void set_flops(benchmark::State &state, double flops_per_iter, double seconds, double peak);

// 64-byte aligned floats, uniform in [lo, hi) from a fixed seed.
struct Floats {
    float *p = nullptr;
    size_t n = 0;
    explicit Floats(size_t count, float lo = -1.0f, float hi = 1.0f, unsigned seed = 1);
    ~Floats() { sg_free(p); }
    Floats(const Floats &) = delete;
    Floats &operator=(const Floats &) = delete;
    operator float *() const { return p; }
};

// An engine for table k and nth threads, workspace reserved for M x N x K.
// ok() is false (and error() says why) when sg_engine_init refused, e.g. on
// a malformed SIMDGAN_FUSION or SIMDGAN_KC.
struct Engine {
    sg_engine e;
    bool good;
    std::string why;
    Engine(const sg_kernels *k, int nth);
    ~Engine() { sg_engine_free(&e); }
    Engine(const Engine &) = delete;
    Engine &operator=(const Engine &) = delete;
    bool ok(benchmark::State &state); // on failure reports it with SkipWithError
};

inline void team_barrier()
{
#ifdef _OPENMP
#pragma omp barrier
#endif
}

inline int team_size()
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// The products one training step makes, for bm_gemm.cc and bm_bf16.cc.
// Layouts (W stored [out, in], activations [rows, features], as in model.c):
//   fwd          Y[M,N]  = X[M,K] . W[N,K]^T      (rows, out, in)
//   bwd_data     dX[M,N] = dY[M,K] . W[K,N]       (rows, in, out)
//   bwd_weights  dW[M,N] = dY[K,M]^T . X[K,N]     (out, in, rows)
//   nn           C = A[M,K] . B[K,N]
enum Layout { FWD, BWD_DATA, BWD_WEIGHTS, NN };

struct Shape {
    Layout layout;
    size_t M, N, K;
};

// G: 64 -> 256 -> 256 -> 784 on 100 rows; D: 784 -> 256 -> 256 -> 1 on 200
// (the D step) or 100 rows (the G step).
inline constexpr Shape model_shapes[] = {
    {FWD, 100, 256, 64},          {FWD, 100, 256, 256},         {FWD, 100, 784, 256},
    {FWD, 100, 256, 784},         {FWD, 200, 256, 784},         {FWD, 200, 256, 256},
    {BWD_DATA, 100, 784, 256},    {BWD_DATA, 100, 256, 256},    {BWD_DATA, 100, 256, 784},
    {BWD_DATA, 200, 256, 256},    {BWD_WEIGHTS, 256, 64, 100},  {BWD_WEIGHTS, 256, 256, 100},
    {BWD_WEIGHTS, 784, 256, 100}, {BWD_WEIGHTS, 256, 256, 200}, {BWD_WEIGHTS, 256, 784, 200},
};

// "<layout>_<M>x<N>x<K>", the shape's part of a benchmark name.
inline std::string shape_name(const Shape &s)
{
    static const char *const layouts[] = {"fwd", "bwd_data", "bwd_weights", "nn"};
    return std::string(layouts[s.layout]) + "_" + std::to_string(s.M) + "x" +
           std::to_string(s.N) + "x" + std::to_string(s.K);
}

inline double shape_flops(const Shape &s)
{
    return 2.0 * (double)s.M * (double)s.N * (double)s.K;
}

// The operands as stored: A [M,K] or, for bwd_weights, [K,M]; B [N,K] for
// fwd (a weight), else [K,N] (both hold M*K and K*N floats either way); A
// and B are gemm.h's strided views of them.
struct Operands {
    Floats a, b, c;
    sg_view A, B;
    explicit Operands(const Shape &s) : a(s.M * s.K, -1, 1, 1), b(s.K * s.N, -1, 1, 2), c(s.M * s.N)
    {
        A = sg_view{a, s.K, 1}, B = sg_view{b, s.N, 1};
        if (s.layout == FWD) B = sg_view{b, 1, s.K};
        if (s.layout == BWD_WEIGHTS) A = sg_view{a, 1, s.M};
    }
};

// Runs body(ith) once per benchmark iteration on each of nth threads of ONE
// parallel region (so the region's fork is not timed per iteration; the full
// training step, which opens its region per step, does not use this). Thread
// 0 drives the benchmark loop and releases the others with a barrier; body
// must end with a barrier of the team (sg_gemm, sg_net_adam and sg_gan_step
// do), so that no thread starts the next iteration early. Threads are bound
// to cores as in training. Returns the loop's wall time in seconds.
template <class Body>
double run_team(benchmark::State &state, int nth, Body &&body);

double now_seconds();

} // namespace sgb

// ---- run_team --------------------------------------------------------------

template <class Body>
double sgb::run_team(benchmark::State &state, int nth, Body &&body)
{
    double t0 = 0.0, t1 = 0.0;
#ifdef _OPENMP
    if (nth > 1) {
        bool more = true; // written by thread 0 before a barrier, read after it
        bool short_team = false;
#pragma omp parallel num_threads(nth) shared(more, short_team)
        {
            int ith = omp_get_thread_num();
            if (omp_get_num_threads() != nth) {
                // Not the team asked for (OMP_THREAD_LIMIT, OMP_DYNAMIC): skip.
#pragma omp single
                short_team = true;
            } else {
                sg_hw_bind(ith);
                if (ith == 0) {
                    t0 = now_seconds();
                    for (auto _ : state) {
                        team_barrier();
                        body(0);
                    }
                    t1 = now_seconds();
                    more = false;
                    team_barrier();
                } else {
                    for (;;) {
                        team_barrier();
                        if (!more) break;
                        body(ith);
                    }
                }
            }
        }
        if (short_team) state.SkipWithError("OpenMP gave fewer threads than asked for");
        return t1 - t0;
    }
#endif
    (void)nth;
    sg_hw_bind(0);
    t0 = now_seconds();
    for (auto _ : state) body(0);
    t1 = now_seconds();
    return t1 - t0;
}

#endif
