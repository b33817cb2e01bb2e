// bm_peak.cc: the machine's two roofs, for percent-of-peak and rooflines.
//
//   peak/<isa>/fma/nth:T          the kernel table's fma_peak slot: a
//                                 register-resident FMA loop, on T threads
//   peak/bf16_<path>/nth:T        the bf16 path's matrix unit (simd/bf16.h's
//                                 peak slot: AMX tdpbf16ps on 4 accumulator
//                                 tiles, AVX512_BF16 vdpbf16ps on 20 zmm
//                                 accumulators, BFMMLA on 16), register-
//                                 resident, on T threads; one row per bf16
//                                 path built in and runnable here that has
//                                 one (not ref): the roof of the bf16 rows'
//                                 peak_pct (bm_bf16.cc, bm_step.cc)
//   stream/<copy|triad>/<l2|mem>/nth:T
//                                 a[i] = b[i] (copy), a[i] = b[i] + s c[i]
//                                 (triad), portable C++, over arrays that
//                                 fit half of each core's L2 (l2) or that
//                                 are far larger than the L3 (mem)
//   ukr/<isa>/nth:T               the micro-kernel's ceiling: one MR x NR
//                                 tile, K = 256, its packed A and B panels
//                                 and C in L1, called over and over on each
//                                 of T threads (no packing, no edges, no
//                                 epilogue): what any GEMM of this engine
//                                 can reach at best; peak_pct against the
//                                 FMA loop
//
// Bandwidth is counted as STREAM does: bytes the loop names (8 per copy
// element, 12 per triad element), without write-allocate traffic. Times in
// microseconds, the mem rows' tens of milliseconds too: compare.py prints
// whole time units.
// peak_flops() and bf16_peak_flops() measure the FMA and the matrix unit's
// peak once per (table, threads) for the percent-of-peak counters of the
// other families.
#include "bench.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace {

// A register-resident peak loop (the fp32 table's fma_peak, a bf16 path's
// peak): iters rounds, returns the flops performed.
using peak_loop = double (*)(size_t iters);

// One call of the loop on every thread at once; returns the flops performed.
double team_flops(peak_loop loop, int nth, size_t iters)
{
    double flops = 0.0;
#ifdef _OPENMP
#pragma omp parallel num_threads(nth) reduction(+ : flops)
    {
        sg_hw_bind(omp_get_thread_num());
        flops += loop(iters);
    }
#else
    (void)nth;
    sg_hw_bind(0);
    flops = loop(iters);
#endif
    return flops;
}

// Iterations for one call of about `seconds` on one thread.
size_t loop_iters(peak_loop loop, double seconds)
{
    size_t iters = 1024;
    for (;;) {
        double t0 = sgb::now_seconds();
        loop(iters);
        double t = sgb::now_seconds() - t0;
        if (t >= seconds / 4 || iters > ((size_t)1 << 40))
            return (size_t)((double)iters * seconds / std::max(t, 1e-9)) + 1;
        iters *= 4;
    }
}

void bm_fma(benchmark::State &state, const sg_kernels *k, int nth)
{
    size_t iters = loop_iters(k->fma_peak, 1e-3);
    double flops = 0.0; // per iteration, all threads
    double secs = sgb::run_team(state, nth, [&](int ith) {
        double f = k->fma_peak(iters);
        if (ith == 0) flops = f * nth;
        sgb::team_barrier();
    });
    sgb::set_flops(state, flops, secs, 0.0);
}

// The micro-kernel on resident panels: K = 256 steps of MR and NR floats,
// the depth of one K block of the engine's products (avx512 10 x 32: A
// 10 KiB, B 32 KiB, in L1 where it holds 48 KiB, split with the L2 at 32).
// accumulate 1 keeps C live, as the K blocks after the first do.
void bm_ukr(benchmark::State &state, const sg_kernels *k, int nth)
{
    const size_t K = 256, MR = (size_t)k->mr, NR = (size_t)k->nr;
    const size_t calls = 64; // per iteration and thread
    std::vector<std::unique_ptr<sgb::Floats>> a, b, c;
    for (int t = 0; t < nth; t++) {
        a.emplace_back(new sgb::Floats(K * MR, -1, 1, 1 + t));
        b.emplace_back(new sgb::Floats(K * NR, -1, 1, 2 + t));
        c.emplace_back(new sgb::Floats(MR * NR));
    }
    double secs = sgb::run_team(state, nth, [&](int ith) {
        const float *ap = a[ith]->p, *bp = b[ith]->p;
        float *cp = c[ith]->p;
        for (size_t r = 0; r < calls; r++) k->sgemm_ukr(K, ap, bp, cp, NR, 1, nullptr);
        benchmark::DoNotOptimize(cp[0]);
        sgb::team_barrier();
    });
    sgb::set_flops(state, 2.0 * (double)(K * MR * NR * calls) * nth, secs, sgb::peak_flops(k, nth));
}

// The row: the loop timed by Google Benchmark (a quarter of the 20 ms per
// call), peak_pct against the best-of-5 figure the other rows divide by.
void bm_bf16_peak(benchmark::State &state, const sg_bf16_kernels *k, int nth)
{
    const double roof = sgb::bf16_peak_flops(k, nth);
    const size_t iters = loop_iters(k->peak, 0.02) / 4;
    double fl = 0.0, t0 = sgb::now_seconds();
    for (auto _ : state) fl += team_flops(k->peak, nth, iters);
    double secs = sgb::now_seconds() - t0;
    sgb::set_flops(state, fl / (double)state.iterations(), secs, roof);
}

// Arrays for the stream benchmarks, kept across runs of a benchmark (the
// mem size is hundreds of MiB; first-touched by the threads that use them).
struct Arrays {
    float *a = nullptr, *b = nullptr, *c = nullptr;
    size_t n = 0;
};

Arrays &arrays(size_t n, int nth)
{
    static std::map<std::pair<size_t, int>, Arrays> pool;
    Arrays &s = pool[{n, nth}];
    if (!s.a) {
        s.n = n;
        s.a = static_cast<float *>(sg_xalloc(n * sizeof(float)));
        s.b = static_cast<float *>(sg_xalloc(n * sizeof(float)));
        s.c = static_cast<float *>(sg_xalloc(n * sizeof(float)));
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nth)
#endif
        for (size_t i = 0; i < n; i++) s.a[i] = 0.0f, s.b[i] = 1.0f, s.c[i] = 2.0f;
    }
    return s;
}

void bm_stream(benchmark::State &state, bool triad, size_t n, int nth)
{
    Arrays &s = arrays(n, nth);
    float *__restrict a = s.a;
    const float *__restrict b = s.b, *__restrict c = s.c;
    const float q = 3.0f;
    sgb::run_team(state, nth, [&](int ith) {
        size_t i0, i1;
        sg_slice(n, ith, nth, &i0, &i1);
        if (triad)
            for (size_t i = i0; i < i1; i++) a[i] = b[i] + q * c[i];
        else
            for (size_t i = i0; i < i1; i++) a[i] = b[i];
        sgb::team_barrier();
    });
    benchmark::DoNotOptimize(a[n / 2]);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)n *
                            (int64_t)((triad ? 3 : 2) * sizeof(float)));
}

} // namespace

namespace {

// The best of 5 timed team calls of about 20 ms each, in FLOP/s, once per
// (loop, threads).
double best_rate(peak_loop loop, int nth)
{
    static std::map<std::pair<peak_loop, int>, double> cache;
    auto it = cache.find({loop, nth});
    if (it != cache.end()) return it->second;
    const size_t iters = loop_iters(loop, 0.02);
    double best = 0.0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = sgb::now_seconds();
        double fl = team_flops(loop, nth, iters);
        best = std::max(best, fl / (sgb::now_seconds() - t0));
    }
    cache[{loop, nth}] = best;
    return best;
}

} // namespace

double sgb::peak_flops(const sg_kernels *k, int nth) { return best_rate(k->fma_peak, nth); }

double sgb::bf16_peak_flops(const sg_bf16_kernels *k, int nth) { return best_rate(k->peak, nth); }

void sgb::register_peak()
{
    for (const sg_kernels *k : isas())
        for (int nth : thread_counts())
            add(std::string("peak/") + k->isa + "/fma", nth,
                [=](benchmark::State &s) { bm_fma(s, k, nth); });
    // After the fma rows: tools take the first peak/<isa>/ row for the best ISA.
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    for (const sg_bf16_kernels *const *t = sg_bf16_built(); *t; t++) {
        const sg_bf16_kernels *k = *t;
        if (!k->peak || !sg_bf16_runnable(k, &ci)) continue;
        for (int nth : thread_counts())
            add(std::string("peak/bf16_") + k->path, nth,
                [=](benchmark::State &s) { bm_bf16_peak(s, k, nth); });
    }
    for (const sg_kernels *k : isas())
        for (int nth : thread_counts())
            add(std::string("ukr/") + k->isa, nth, [=](benchmark::State &s) { bm_ukr(s, k, nth); });

    const sg_hw *hw = sg_hw_get();
    for (int nth : thread_counts()) {
        // l2: three arrays in half of each thread's L2.
        size_t n_l2 = (size_t)nth * hw->l2 / 2 / (3 * sizeof(float));
        // mem: three arrays together twice the L3, at least 256 MiB, at most 1 GiB.
        size_t bytes = std::min(std::max(2 * hw->l3, (size_t)256 << 20), (size_t)1 << 30);
        size_t n_mem = bytes / (3 * sizeof(float));
        for (bool triad : {false, true}) {
            const char *op = triad ? "triad" : "copy";
            add(std::string("stream/") + op + "/l2", nth,
                [=](benchmark::State &s) { bm_stream(s, triad, n_l2, nth); });
            add(std::string("stream/") + op + "/mem", nth,
                [=](benchmark::State &s) { bm_stream(s, triad, n_mem, nth); });
        }
    }
}
