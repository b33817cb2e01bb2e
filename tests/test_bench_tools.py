#!/usr/bin/python3
"""test_bench_tools.py: simdgan_bench's flags and names, and the tools that
read its output: tools/record-profile, tools/compare-profiles and
tools/compare-pytorch, with Google Benchmark's compare.py on their profiles.

Usage: test_bench_tools.py SIMDGAN_BENCH [PROJECT_DIR]

- simdgan_bench --help lists Google Benchmark's flags and then the
  project's (--simdgan_iterations, --simdgan_max_threads) and the variables
  it reads; a bad value of either flag exits 2 with one line naming it.
- Names end in nth:<T>/real_time, never threads:<T>: Google Benchmark's own
  "threads" field (1) and the names cannot disagree; the context's peaks
  are keyed nth:<T>; the step is timed in microseconds and its ms_per_step
  counter agrees with its real_time (units, not speed).
- bf16 rows: a peak/bf16_<path> row (bm_peak.cc) for exactly the non-ref
  paths the gemm_bf16 rows run (those built in and runnable here), listed
  after every peak/<isa>/fma row (tools take the first peak row's ISA); per
  ISA, step/<isa>/bf16_<path>/b100_h256 for the path sg_bf16_select picks
  (the first such path, or SIMDGAN_BF16's) and for ref, once each; a bad
  SIMDGAN_BF16 exits 2 with one line; a bf16 step row counts the same FLOP
  per step as the fp32 row and its ms_per_step agrees with its real_time.
- record-profile (one tiny family, 3 repetitions, into a temporary folder)
  keeps every repetition and the four aggregates, so compare.py's U test
  runs on two such profiles; bad arguments exit 2 with one line.
- compare-profiles reads old (threads:<T>) and new (nth:<T>) profiles and
  matches their rows; --plot from the committed profiles, the emulated one
  among them, writes a PNG that decodes, with a title naming every profile,
  each GEMM point numbered and keyed, the emulated profile hatched and
  labelled "emulated: not a speed", and the step in the table's unit.
- compare-pytorch: --help and bad arguments; its runs alternate round by
  round; min/median/max; the load warning's threshold; the measured other
  work sees a competing process; the simdgan half runs on the bench binary.
  No PyTorch runs here.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

BENCH = os.path.abspath(sys.argv[1])
PROJECT = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                          os.path.join(os.path.dirname(__file__), ".."))
TOOLS = os.path.join(PROJECT, "tools")
RECORD = os.path.join(TOOLS, "record-profile")
PROFILES_TOOL = os.path.join(TOOLS, "compare-profiles")
PYTORCH_TOOL = os.path.join(TOOLS, "compare-pytorch")
COMPARE_PY = "/usr/share/benchmark/compare.py"
COMMITTED = os.path.join(PROJECT, "profiles")
sys.path.insert(0, os.path.join(PROJECT, "tests"))
from check_png import decode_png  # noqa: E402
from checks import check, finish, load_tool  # noqa: E402

def run(cmd, env_extra=None, timeout=300):
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def one_line(se):
    return len([l for l in se.splitlines() if l.strip()]) == 1


def best_isa():
    rc, so, se = run([BENCH, "--benchmark_list_tests=true", "--benchmark_filter=^peak/"])
    m = re.search(r"^peak/([^/]+)/fma/", so, re.M)
    if rc != 0 or not m:
        print("FAILED: %s --benchmark_list_tests: exit %d %s" % (BENCH, rc, se.strip()))
        sys.exit(1)
    return m.group(1)


# ---- simdgan_bench ------------------------------------------------------------

def test_help():
    rc, so, se = run([BENCH, "--help"])
    check(rc == 0, "--help: exit %d, %s" % (rc, se.strip()[-300:]))
    for want in ("--benchmark_filter", "--benchmark_repetitions", "--simdgan_iterations=N",
                 "--simdgan_max_threads=N", "SIMDGAN_ISA", "SIMDGAN_FUSION",
                 "SIMDGAN_BENCH_OPENBLAS_CORETYPE", "SIMDGAN_BENCH_REEXECUTED", "nth:<T>"):
        check(want in so, "--help does not mention %s" % want)
    check(so.index("--benchmark_filter") < so.index("--simdgan_iterations"),
          "--help: the project's flags should follow Google Benchmark's")


def test_bad_flags():
    for arg, flag in (("--simdgan_iterations=0", "--simdgan_iterations"),
                      ("--simdgan_iterations=12x", "--simdgan_iterations"),
                      ("--simdgan_max_threads=", "--simdgan_max_threads"),
                      ("--simdgan_max_threads=-3", "--simdgan_max_threads")):
        rc, so, se = run([BENCH, arg, "--benchmark_list_tests=true"])
        check(rc == 2 and one_line(se) and flag in se and "expected" in se and not so,
              "%s: exit %d, stderr %r" % (arg, rc, se))


def test_names(isa):
    rc, so, se = run([BENCH, "--benchmark_list_tests=true", "--simdgan_max_threads=2"],
                     {"SIMDGAN_ISA": isa})
    names = so.split()
    check(rc == 0 and len(names) > 50, "--benchmark_list_tests: exit %d, %d names" % (rc, len(names)))
    bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*(/[A-Za-z0-9_]+)+/nth:\d+/real_time", n)
           or "threads:" in n]
    check(not bad, "names not of the form <family>/.../nth:<T>/real_time: %s" % bad[:3])
    counts = {int(re.search(r"/nth:(\d+)/", n).group(1)) for n in names if "/nth:" in n}
    check(1 in counts, "no nth:1 benchmark (counts %s)" % sorted(counts))


def bench_json(isa, filt, *extra):
    rc, so, se = run([BENCH, "--benchmark_filter=" + filt, "--simdgan_max_threads=1",
                      "--benchmark_format=json"] + list(extra), {"SIMDGAN_ISA": isa})
    try:
        return json.loads(so) if rc == 0 else None
    except ValueError:
        return None


def test_json(isa):
    d = bench_json(isa, "^normal/%s/n6400/nth:1/" % isa, "--benchmark_min_time=0.01")
    check(d is not None and len(d["benchmarks"]) == 1, "normal/%s: no JSON result" % isa)
    if d:
        b = d["benchmarks"][0]
        check(b["threads"] == 1 and "/nth:1/" in b["name"] and "threads:" not in b["name"],
              "threads field %s against name %s" % (b["threads"], b["name"]))
        ctx = d["context"]
        check("peak_gflops/%s/nth:1" % isa in ctx, "context: no peak_gflops/%s/nth:1" % isa)
        check(not [k for k in ctx if "threads:" in k], "context keys still say threads:")

    d = bench_json(isa, "^step/%s/fused/b100_h256/nth:1/" % isa, "--simdgan_iterations=3")
    check(d is not None and len(d["benchmarks"]) == 1, "step/%s: no JSON result" % isa)
    if d:
        b = d["benchmarks"][0]
        check(b["time_unit"] == "us", "step: time unit %s, expected us" % b["time_unit"])
        check(b["iterations"] == 3, "step: %s iterations, expected 3" % b["iterations"])
        # The same loop timed twice: a unit slip would be a factor of 1000.
        ratio = b["real_time"] / 1000.0 / b["ms_per_step"] if b.get("ms_per_step") else 0
        check(0.5 < ratio < 2.0, "step: real_time %s us against ms_per_step %s"
              % (b["real_time"], b.get("ms_per_step")))


def list_names(*extra, bf16=None):
    """The binary's benchmark names (1 thread) with SIMDGAN_BF16 set to bf16
    or unset; (exit status, names, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SIMDGAN_BF16", "SIMDGAN_ISA")}
    if bf16 is not None:
        env["SIMDGAN_BF16"] = bf16
    p = subprocess.run([BENCH, "--benchmark_list_tests=true", "--simdgan_max_threads=1"]
                       + list(extra), capture_output=True, text=True, env=env, timeout=300)
    return p.returncode, [n.replace("/nth:1/real_time", "") for n in p.stdout.split()], p.stderr


def test_bf16_names():
    rc, names, se = list_names("--benchmark_filter=^(peak|gemm_bf16|step)/")
    check(rc == 0 and names, "--benchmark_list_tests: exit %d %r" % (rc, se))
    fma = [i for i, n in enumerate(names) if re.fullmatch(r"peak/[^/]+/fma", n)]
    bf16_peaks = [i for i, n in enumerate(names) if n.startswith("peak/bf16_")]
    check(fma and all(i > max(fma) for i in bf16_peaks),
          "peak/bf16_* rows must follow every peak/<isa>/fma row: %s" % names[:12])
    peak_paths = [names[i][len("peak/bf16_"):] for i in bf16_peaks]
    gemm_paths = list(dict.fromkeys(n.split("/")[1] for n in names if n.startswith("gemm_bf16/")))
    unit_paths = [p for p in gemm_paths if not p.startswith("ref_")]
    check("ref" not in peak_paths and "/" not in "".join(peak_paths)
          and sorted(peak_paths) == sorted(unit_paths),
          "peak/bf16_ rows %s; expected one per matrix-unit path of gemm_bf16 %s"
          % (peak_paths, gemm_paths))
    isas = [names[i].split("/")[1] for i in fma]
    picked = unit_paths[0] if unit_paths else "ref"
    for isa in isas:
        rows = [n for n in names if re.fullmatch(r"step/%s/bf16_[a-z0-9]+/b100_h256" % isa, n)]
        want = ["step/%s/bf16_%s/b100_h256" % (isa, p) for p in dict.fromkeys([picked, "ref"])]
        check(rows == want, "bf16 step rows of %s: %s; expected %s" % (isa, rows, want))
    rc, names, se = list_names("--benchmark_filter=^step/", bf16="ref")
    rows = [n for n in names if "/bf16_" in n]
    check(rc == 0 and rows == ["step/%s/bf16_ref/b100_h256" % isa for isa in isas],
          "SIMDGAN_BF16=ref: exit %d, bf16 step rows %s" % (rc, rows))
    rc, names, se = list_names(bf16="no-such-path")
    check(rc == 2 and one_line(se) and "SIMDGAN_BF16" in se and not names,
          "SIMDGAN_BF16=no-such-path: exit %d, stderr %r" % (rc, se))


def test_bf16_step_json(isa):
    d = bench_json(isa, "^step/%s/(fused|bf16_ref)/b100_h256/nth:1/" % isa,
                   "--simdgan_iterations=3")
    rows = {b["name"].split("/")[2]: b for b in (d or {}).get("benchmarks", [])}
    check(sorted(rows) == ["bf16_ref", "fused"], "step fp32 and bf16 rows: %s" % sorted(rows))
    # flops is a rate over real_time: back to FLOP per step, which must be
    # the same model's (568934400 at batch 100) in both precisions.
    per_step = {k: b["flops"] * b["real_time"] * 1e-6 for k, b in rows.items() if "flops" in b}
    check(len(per_step) == 2 and all(abs(v / 568934400 - 1) < 1e-6 for v in per_step.values()),
          "FLOP per step: %s; expected 568934400 for both" % per_step)
    b = rows.get("bf16_ref", {})
    ratio = b["real_time"] / 1000.0 / b["ms_per_step"] if b.get("ms_per_step") else 0
    check(b.get("iterations") == 3 and b.get("time_unit") == "us" and 0.5 < ratio < 2.0,
          "bf16 step row: %s" % b)


# ---- record-profile and compare.py --------------------------------------------

def record(tmp, name):
    rc, so, se = run([sys.executable, RECORD, BENCH, "--families", "normal", "--repetitions", "3",
                      "--min-time", "0.01", "--out", tmp, "--name", name])
    path = [os.path.join(tmp, f) for f in os.listdir(tmp) if f.startswith(name + "-")]
    check(rc == 0 and len(path) == 1, "record-profile %s: exit %d, %s" % (name, rc, se[-500:]))
    return path[0] if path else None


def test_record(tmp, isa):
    a, b = record(tmp, "a"), record(tmp, "b")
    if not a or not b:
        return None, None
    check(os.path.basename(a) == "a-%s-1t.json" % isa, "record-profile wrote %s" % a)
    with open(a) as f:
        d = json.load(f)
    ctx, rows = d["context"], d["benchmarks"]
    check(ctx.get("isa") == isa and ctx.get("threads") == 1 and ctx.get("repetitions") == 3
          and ctx.get("emulated") is False, "record-profile context: %s"
          % {k: ctx.get(k) for k in ("isa", "threads", "repetitions", "emulated")})
    names = {r["run_name"] for r in rows}
    check(names == {"normal/%s/n6400/nth:1/real_time" % isa}, "record-profile rows: %s" % names)
    runs = [r for r in rows if r["run_type"] == "iteration"]
    aggs = sorted(r["aggregate_name"] for r in rows if r["run_type"] == "aggregate")
    check(len(runs) == 3 and aggs == ["cv", "mean", "median", "stddev"],
          "record-profile keeps %d repetitions and aggregates %s; expected 3 and all four"
          % (len(runs), aggs))

    if not os.path.isfile(COMPARE_PY):
        check(False, "%s is missing (Debian's libbenchmark-tools)" % COMPARE_PY)
        return a, b
    rc, so, se = run([sys.executable, COMPARE_PY, "benchmarks", a, b])
    check(rc == 0 and "U Test, Repetitions: 3 vs 3" in so and "_pvalue" in so,
          "compare.py benchmarks: exit %d, no U test in %r %r" % (rc, so[-600:], se[-300:]))
    return a, b


def test_record_errors(tmp):
    for args, needle in ((["--threads", "0"], "--threads"),
                         (["--repetitions", "0"], "--repetitions"),
                         ([os.path.join(tmp, "no-such-bench")], "no-such-bench")):
        rc, so, se = run([sys.executable, RECORD] + args + ["--out", tmp])
        check(rc == 2 and one_line(se) and needle in se,
              "record-profile %s: exit %d, stderr %r" % (args, rc, se))


# ---- compare-profiles -----------------------------------------------------------

def table_row(out, key):
    for line in out.splitlines():
        if line.split()[:1] == [key]:
            return line.split()
    return None


def test_compare_profiles(tmp, cp, a, b):
    old = os.path.join(COMMITTED, "xeon-2c-avx512-1t.json")
    if a and b:
        rc, so, se = run([sys.executable, PROFILES_TOOL, a, b])
        row = table_row(so, "normal/simdgan/n6400")
        check(rc == 0 and row is not None and row[-1] != "-",
              "compare-profiles on two new profiles: exit %d, row %s %s" % (rc, row, se))
        # An old profile (threads:1 names) and a new one (nth:1) meet row by row.
        rc, so, se = run([sys.executable, PROFILES_TOOL, old, a, "--match", "^normal/"])
        row = table_row(so, "normal/simdgan/n6400")
        check(rc == 0 and row is not None and len(row) == 9
              and all(re.fullmatch(r"[0-9.e+-]+", v) for v in (row[2], row[5], row[8])),
              "compare-profiles old against new: exit %d, row %s %s" % (rc, row, se))

    rc, so, se = run([sys.executable, PROFILES_TOOL,
                      os.path.join(COMMITTED, "xeon-16c-avx512-step-scaling.json")])
    check(rc == 0 and "step/avx512/fused/b100_h256/nth:16" in so and "threads:" not in so,
          "compare-profiles on the step-scaling profile: exit %d %s" % (rc, se))

    # Thread counts in names and peaks, old and new spellings alike.
    for comp in ("threads", "nth"):
        path = os.path.join(tmp, "synthetic-%s.json" % comp)
        with open(path, "w") as f:
            json.dump({"context": {"isa": "x", "threads": 2, "peak_gflops/x/%s:2" % comp: "10.5"},
                       "benchmarks": [{"name": "gemm/x/fwd_1x2x3/%s:2/real_time" % comp,
                                       "run_name": "gemm/x/fwd_1x2x3/%s:2/real_time" % comp,
                                       "run_type": "iteration", "real_time": 1.0,
                                       "time_unit": "us", "flops": 12e6}]}, f)
        p = cp.Profile(path)
        check(p.peak == 10.5 and list(p.rows) == ["gemm/simdgan/fwd_1x2x3"]
              and p.rows["gemm/simdgan/fwd_1x2x3"]["threads"] == 2,
              "%s profile: peak %s rows %s" % (comp, p.peak, p.rows))

    # A few rows of each family the plot draws (all of them take seconds).
    paths = [os.path.join(COMMITTED, n) for n in
             ("xeon-2c-avx512-1t.json", "xeon-16c-avx512-16t.json", "qemu-aarch64-neon-1t.json")]
    match = (r"^(gemm/(simdgan|openblas)/(fwd_100x784x256|bwd_data_100x256x784|nn_1024.*)"
             r"|epilogue/simdgan/fused/fwd_tanh.*|adam/simdgan/fused/G|step/simdgan/.*fused/)")
    png = os.path.join(tmp, "plot.png")
    rc, so, se = run([sys.executable, PROFILES_TOOL] + paths + ["--plot", png, "--match", match])
    check(rc == 0 and os.path.isfile(png), "compare-profiles --plot: exit %d %s" % (rc, se[-500:]))
    if os.path.isfile(png):
        with open(png, "rb") as f:
            try:
                w, h, _, _ = decode_png(f.read(), png)
                check(w == 1870 and h >= 700, "plot is %dx%d" % (w, h))
            except ValueError as e:
                check(False, str(e))
    step_unit = table_row(so, "step/simdgan/fused/b100_h256")
    check(step_unit is not None and step_unit[1] == "ms/step", "table's step row: %s" % step_unit)

    profiles = [cp.Profile(p) for p in paths]
    for p in profiles:
        p.rows = {k: v for k, v in p.rows.items() if re.search(match, k)}
    fig, axes = cp.figure(profiles)
    title = fig._suptitle.get_text() if fig._suptitle else ""
    check(all(p.label in title for p in profiles) and "EMULATED" in title,
          "plot title: %r" % title)
    gemms = [k for k in sorted({k for p in profiles for k in p.rows})
             if k.startswith(("gemm/simdgan/", "gemm/openblas/", "epilogue/simdgan/"))
             and cp.intensity(k)]
    points = sum(1 for p in profiles for k in gemms if "flops" in p.rows.get(k, {}))
    numbers = [t.get_text() for t in axes["roofline"].texts]
    check(len(numbers) == points and all(n.isdigit() for n in numbers),
          "roofline: %d numbered points, %d GEMM points" % (len(numbers), points))
    key = "\n".join(t.get_text() for t in axes["key"].texts)
    check(all(re.search(r"\b\d+  %s$" % re.escape(k), key, re.M) for k in gemms),
          "roofline key does not name every GEMM row")
    hatched = [b for b in axes["bars"].patches if b.get_hatch()]
    emulated_rows = sum(1 for k in profiles[2].rows if "flops" in profiles[2].rows[k]
                        and not k.startswith(("peak/", "stream/", "step/")))
    check(len(hatched) >= emulated_rows > 0, "emulated bars hatched: %d of %d"
          % (len(hatched), emulated_rows))
    for name in ("bars", "roofline"):
        legend = axes[name].get_legend()
        texts = [t.get_text() for t in legend.get_texts()] if legend else []
        check(any("qemu-aarch64-neon-1t" in t and "emulated: not a speed" in t for t in texts),
              "%s legend: %s" % (name, texts))
    step = axes.get("step")
    check(step is not None and "ms/step" in step.get_xlabel(),
          "step panel's unit: %r" % (step.get_xlabel() if step else None))
    if step is not None:
        shown = {t.get_text() for t in step.texts}
        check("4.574" in shown, "step panel does not show xeon-2c's 4.574 ms/step: %s" % shown)
    # Matplotlib keeps figures until closed.
    import matplotlib.pyplot as plt
    plt.close(fig)


# ---- compare-pytorch ---------------------------------------------------------------

def test_compare_pytorch(tmp, ct, isa):
    rc, so, _ = run([sys.executable, PYTORCH_TOOL, "--help"])
    check(rc == 0 and all(w in so for w in ("--runs", "--max-others", "min, median and max")),
          "compare-pytorch --help: exit %d" % rc)
    for args, needle in ((["--runs", "0"], "--runs"), (["--max-others", "-1"], "--max-others"),
                         (["--bench", os.path.join(tmp, "none")], "none")):
        rc, so, se = run([sys.executable, PYTORCH_TOOL] + args)
        check(rc == 2 and one_line(se) and needle in se,
              "compare-pytorch %s: exit %d, stderr %r" % (args, rc, se))

    order = []
    cases = [(c, (lambda c=c: order.append(c) or len(order))) for c in "abc"]
    res = ct.alternate(cases, 4, measure=lambda fn: (fn(), 0.0))
    check(order == list("abccbaabccba"), "alternate's order: %s" % "".join(order))
    check(sorted(res) == list("abc") and all(len(v) == 4 for v in res.values())
          and res["a"][1] == (6, 0.0), "alternate's results: %s" % res)

    check(ct.spread([3.0, 1.0, 2.0, 10.0]) == (1.0, 2.5, 10.0), "spread")
    check(ct.load_warning([0.1, None, 0.25], 0.25, 2) is None, "warned below the threshold")
    check(ct.load_warning([None, None], 0.25, 2) is None, "warned with nothing measured")
    w = ct.load_warning([0.1, 0.9, 0.3], 0.25, 2)
    check(w is not None and "2 of 3 runs" in w and "0.90" in w and "loaded" in w,
          "load warning: %r" % w)

    # A competitor outside the measured call is other work: about a CPU.
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        result, others = ct.measured(lambda: time.sleep(1.0) or "done")
    finally:
        spin.kill()
        spin.wait()
    check(result == "done" and others is not None and others > 0.3,
          "measured other work beside a spinning process: %s" % others)

    check(isa in ct.bench_isas(BENCH), "compare-pytorch sees no %s step in the bench" % isa)
    ms = ct.simdgan_ms(BENCH, isa, 1, 2)
    check(ms > 0, "compare-pytorch's simdgan run: %s ms/step" % ms)


def main():
    tmp = tempfile.mkdtemp(prefix="simdgan-bench-tools-")
    try:
        isa = best_isa()
        test_help()
        test_bad_flags()
        test_names(isa)
        test_json(isa)
        test_bf16_names()
        test_bf16_step_json(isa)
        a, b = test_record(tmp, isa)
        test_record_errors(tmp)
        test_compare_profiles(tmp, load_tool(PROFILES_TOOL, "compare_profiles"), a, b)
        test_compare_pytorch(tmp, load_tool(PYTORCH_TOOL, "compare_pytorch"), isa)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("test_bench_tools")


if __name__ == "__main__":
    sys.exit(main())
