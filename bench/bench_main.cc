// bench_main.cc: the suite's main and shared helpers: which ISAs and thread
// counts to register, the machine context recorded in the output, the
// OpenBLAS environment fix-up, and --help (Google Benchmark's flags, then
// ours and the environment variables read here).
//
// Flags beyond Google Benchmark's (taken out of argv before it parses):
//   --simdgan_iterations=N  run every benchmark for exactly N iterations
//                           (tools/compare-pytorch times 200 training steps)
//   --simdgan_max_threads=N thread counts 1..N instead of 1..physical cores
//                           (and peaks measured only for those: under
//                           qemu-user, threads crawl)
// Defaults changed: --benchmark_min_time=0.1 unless given (a suite of a few
// minutes on two cores; profiles use repetitions instead of long runs).
#include "bench.h"

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

#ifdef SIMDGAN_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

long g_iterations = 0;  // --simdgan_iterations, 0: Google Benchmark decides
long g_max_threads = 0; // --simdgan_max_threads, 0: the physical cores

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

#ifdef SIMDGAN_BENCH_OPENBLAS
// The OpenBLAS core whose kernels this CPU runs best, from the same feature
// bits as the engine's dispatch: OpenBLAS 0.3.21 does not know recent Xeons
// (family 6 model 207 here) and falls back to Prescott (SSE3), a quarter of
// its AVX-512 speed; an inherited OPENBLAS_CORETYPE=Haswell halves it.
// $SIMDGAN_BENCH_OPENBLAS_CORETYPE overrides (empty: OpenBLAS's own choice).
std::string openblas_core_wanted()
{
    const char *o = getenv("SIMDGAN_BENCH_OPENBLAS_CORETYPE");
    if (o) return o;
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    if (ci.avx512f && ci.avx512vl && ci.avx512bw && ci.avx512dq && ci.os_zmm) return "SkylakeX";
    if (ci.avx2 && ci.fma && ci.os_ymm) return "Haswell";
    return "";
}

// OpenBLAS picks its kernels in a library constructor, before main, from
// OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) when set; setting them in main is
// too late. So the binary runs itself again once, with OPENBLAS_CORETYPE set
// to the wanted core (or unset) and OPENBLAS_L2_SIZE unset, and records
// what it changed in SIMDGAN_BENCH_REEXECUTED (which, when set, also keeps it
// from running itself again: set it to keep the environment as it is).
void reexec_for_openblas(char **argv)
{
    if (getenv("SIMDGAN_BENCH_REEXECUTED")) return;
    std::string want = openblas_core_wanted();
    const char *core = getenv("OPENBLAS_CORETYPE"), *l2 = getenv("OPENBLAS_L2_SIZE");
    if (!l2 && (core ? want == core : want.empty())) return;
    std::string change = std::string("OPENBLAS_CORETYPE ") + (core ? core : "unset") + " -> " +
                         (want.empty() ? "unset" : want);
    if (l2) change += std::string(", OPENBLAS_L2_SIZE ") + l2 + " -> unset";
    setenv("SIMDGAN_BENCH_REEXECUTED", change.c_str(), 1);
    if (want.empty())
        unsetenv("OPENBLAS_CORETYPE");
    else
        setenv("OPENBLAS_CORETYPE", want.c_str(), 1);
    unsetenv("OPENBLAS_L2_SIZE");
    execv("/proc/self/exe", argv);
    std::fprintf(stderr, "simdgan_bench: could not re-run for %s (%s); OpenBLAS keeps its core\n",
                 change.c_str(), std::strerror(errno));
    setenv("SIMDGAN_BENCH_REEXECUTED", ("failed: " + change).c_str(), 1);
}
#endif

// --help: Google Benchmark's usage, then what this binary adds to it.
void print_help()
{
    benchmark::PrintDefaultHelp();
    std::fputs(
        "\n"
        "simdgan_bench's own flags:\n"
        "          [--simdgan_iterations=N]   run every benchmark for exactly N iterations\n"
        "                                     (tools/compare-pytorch, tools/load-test)\n"
        "          [--simdgan_max_threads=N]  thread counts 1..N instead of 1..physical cores\n"
        "Default changed: --benchmark_min_time=0.1 unless given.\n"
        "\n"
        "Names: <family>/<isa|openblas>/<variant>/nth:<T>/real_time, one per kernel table\n"
        "this CPU runs and per T from 1 to the physical cores. nth:<T> is the threads the\n"
        "code under test runs on (its OpenMP team, or OpenBLAS's threads); Google\n"
        "Benchmark's own \"threads\" field counts its harness threads: always 1 here.\n"
        "Families: peak stream gemm epilogue bce adam normal step (bench/bm_<family>.cc).\n"
        "\n"
        "Environment:\n"
        "  SIMDGAN_ISA=ISA            only this kernel table (ref, avx2, avx512, neon);\n"
        "                             default: every table built in that this CPU runs\n"
        "  SIMDGAN_BF16=PATH          the bf16 path of the step's bf16 rows (amx,\n"
        "                             avx512bf16, bfmmla, ref; default: the best this CPU\n"
        "                             runs; the ref rows run too); one this CPU cannot run\n"
        "                             fails\n"
        "  SIMDGAN_FUSION=0|1         read by the engine and recorded in the context; the\n"
        "                             fused and unfused variants set fusion themselves, and\n"
        "                             another value fails every benchmark that builds one\n"
        "  SIMDGAN_MC, SIMDGAN_KC, SIMDGAN_NC\n"
        "                             cache blocking, as in simdgan (default from hwloc)\n"
        "  SIMDGAN_BENCH_OPENBLAS_CORETYPE=CORE\n"
        "                             OpenBLAS's kernels for the baseline (default from the\n"
        "                             CPU's features: SkylakeX with AVX-512, Haswell with\n"
        "                             AVX2; empty: OpenBLAS's own choice); the binary runs\n"
        "                             itself again with OPENBLAS_CORETYPE set to it\n"
        "  SIMDGAN_BENCH_REEXECUTED   set by that second run; set it to keep\n"
        "                             OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE as inherited\n",
        stdout);
}

// Takes our own flags out of argv; adds the default min_time.
std::vector<char *> parse_args(int argc, char **argv)
{
    static std::string min_time = "--benchmark_min_time=0.1";
    std::vector<char *> out;
    bool has_min_time = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        long *ours = !std::strncmp(a, "--simdgan_iterations=", 21)    ? &g_iterations
                     : !std::strncmp(a, "--simdgan_max_threads=", 22) ? &g_max_threads
                                                                      : nullptr;
        if (ours) {
            const char *v = std::strchr(a, '=') + 1;
            char *end;
            errno = 0;
            *ours = std::strtol(v, &end, 10);
            if (!*v || *end || errno || *ours < 1 || *ours > 1000000000L) {
                std::fprintf(stderr,
                             "simdgan_bench: %.*s: '%s' is not a count; expected an integer "
                             "from 1 to 1000000000\n",
                             (int)(v - a - 1), a, v);
                std::exit(2);
            }
            continue;
        }
        if (!std::strncmp(a, "--benchmark_min_time=", 21)) has_min_time = true;
        out.push_back(argv[i]);
    }
    if (!has_min_time) out.insert(out.begin() + 1, &min_time[0]);
    out.push_back(nullptr);
    return out;
}

bool listing_only(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!std::strncmp(argv[i], "--benchmark_list_tests", 22) &&
            std::strcmp(argv[i], "--benchmark_list_tests=false"))
            return true;
    return false;
}

const char *arch()
{
#if defined(__x86_64__)
    return "x86_64";
#elif defined(__aarch64__)
    return "aarch64";
#else
    return "other";
#endif
}

// The machine, the build and the engine's choices, into the JSON "context".
void add_context()
{
    using benchmark::AddCustomContext;
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const sg_hw *hw = sg_hw_get();
    AddCustomContext("simdgan_version", SIMDGAN_VERSION);
    AddCustomContext("arch", arch());
    AddCustomContext("cpu", ci.brand);
    AddCustomContext("cpu_vendor", ci.vendor);
    AddCustomContext("cores", std::to_string(hw->cores));
    AddCustomContext("hardware_threads", std::to_string(hw->pus));
    AddCustomContext("l1d_bytes", std::to_string(hw->l1d));
    AddCustomContext("l2_bytes", std::to_string(hw->l2));
    AddCustomContext("l3_bytes", std::to_string(hw->l3));
    AddCustomContext("l3_cores", std::to_string(hw->l3_cores));
    AddCustomContext("topology_source", hw->source);
    AddCustomContext("cxx_compiler", SIMDGAN_CXX_COMPILER);
    AddCustomContext("c_compiler", SIMDGAN_C_COMPILER);
    AddCustomContext("c_flags", SIMDGAN_C_FLAGS);
    AddCustomContext("build_type", SIMDGAN_BUILD_TYPE);
#ifdef _OPENMP
    AddCustomContext("openmp", std::to_string(_OPENMP));
#else
    AddCustomContext("openmp", "off");
#endif
    const char *fusion = getenv("SIMDGAN_FUSION");
    AddCustomContext("simdgan_fusion_env", fusion ? fusion : "unset");
    std::string names;
    for (const sg_kernels *k : sgb::isas()) {
        names += (names.empty() ? "" : ",") + std::string(k->isa);
        sg_blocking b;
        if (sg_blocking_init(&b, k, hw) == 0)
            AddCustomContext(fmt("blocking/%s", k->isa),
                             fmt("MC=%d KC=%d NC=%d (%s)", b.mc, b.kc, b.nc, b.source));
        AddCustomContext(fmt("ukr/%s", k->isa), k->ukr_name);
    }
    AddCustomContext("isas", names);
#ifdef SIMDGAN_BENCH_OPENBLAS
    AddCustomContext("openblas_core", openblas_get_corename());
    AddCustomContext("openblas_config", openblas_get_config());
    const char *changed = getenv("SIMDGAN_BENCH_REEXECUTED");
    AddCustomContext("openblas_env", changed ? changed : "as inherited");
#else
    AddCustomContext("openblas_core", "not built");
#endif
}

// The peaks that the percent-of-peak counters divide by, measured now so
// that they are in the context even when a filter leaves out peak/.
void add_peak_context()
{
    for (const sg_kernels *k : sgb::isas())
        for (int nth : sgb::thread_counts())
            benchmark::AddCustomContext(fmt("peak_gflops/%s/nth:%d", k->isa, nth),
                                        fmt("%.2f", sgb::peak_flops(k, nth) * 1e-9));
}

} // namespace

namespace sgb {

const std::vector<const sg_kernels *> &isas()
{
    static std::vector<const sg_kernels *> list = [] {
        std::vector<const sg_kernels *> v;
        sg_cpu_info ci;
        sg_cpu_detect(&ci);
        const char *want = getenv("SIMDGAN_ISA");
        if (want && *want) {
            const sg_kernels *k = sg_kernels_by_name(want);
            if (!k) {
                std::fprintf(stderr, "simdgan_bench: %s\n", sg_last_error());
                std::exit(2);
            }
            v.push_back(k);
            return v;
        }
        for (const sg_kernels *const *t = sg_kernels_built(); *t; t++)
            if (sg_kernels_runnable(*t, &ci)) v.push_back(*t);
        return v;
    }();
    return list;
}

const std::vector<int> &thread_counts()
{
    static std::vector<int> list = [] {
        std::vector<int> v{1};
#ifdef _OPENMP
        int most = sg_hw_get()->cores;
        if (g_max_threads) most = (int)g_max_threads;
        for (int t = 2; t <= most; t++) v.push_back(t);
#endif
        return v;
    }();
    return list;
}

double best_peak_flops(int nth)
{
    double best = 0.0;
    for (const sg_kernels *k : isas()) {
        double p = peak_flops(k, nth);
        if (p > best) best = p;
    }
    return best;
}

benchmark::internal::Benchmark *add(const std::string &base, int nth,
                                    std::function<void(benchmark::State &)> fn,
                                    benchmark::TimeUnit unit)
{
    std::string name = base + "/nth:" + std::to_string(nth);
    auto *b = benchmark::RegisterBenchmark(name.c_str(), std::move(fn));
    b->UseRealTime()->Unit(unit);
    if (g_iterations) b->Iterations(g_iterations);
    return b;
}

void set_flops(benchmark::State &state, double flops_per_iter, double seconds, double peak)
{
    using benchmark::Counter;
    state.counters["flops"] = Counter(flops_per_iter, Counter::kIsIterationInvariantRate);
    if (peak > 0.0 && seconds > 0.0)
        state.counters["peak_pct"] =
            100.0 * flops_per_iter * (double)state.iterations() / seconds / peak;
}

Floats::Floats(size_t count, float lo, float hi, unsigned seed) : n(count)
{
    p = static_cast<float *>(sg_xalloc((count ? count : 1) * sizeof(float)));
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < count; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(s >> 8) * (1.0f / 16777216.0f);
    }
}

Engine::Engine(const sg_kernels *k, int nth)
{
    good = sg_engine_init(&e, k, nth) == 0;
    if (!good) why = sg_last_error();
    e.bind = 1; // as in training
}

bool Engine::ok(benchmark::State &state)
{
    if (!good) state.SkipWithError(why.c_str());
    return good;
}

double now_seconds()
{
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

} // namespace sgb

int main(int argc, char **argv)
{
#ifdef SIMDGAN_BENCH_OPENBLAS
    reexec_for_openblas(argv);
#endif
    bool listing = listing_only(argc, argv);
    std::vector<char *> args = parse_args(argc, argv);
    int n = (int)args.size() - 1;
    benchmark::Initialize(&n, args.data(), print_help);
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 2;

    sgb::register_peak();
    sgb::register_gemm();
    sgb::register_bf16();
    sgb::register_epilogue();
    sgb::register_bce();
    sgb::register_adam();
    sgb::register_normal();
    sgb::register_step();

    if (!listing) {
        add_context();
        add_peak_context();
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
