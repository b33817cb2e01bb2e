#!/usr/bin/python3
"""test_trace.py: `simdgan train --trace` and tools/step-breakdown.

Usage: test_trace.py SIMDGAN SOURCE_DIR [SIMDGAN_BENCH]

- Bad --trace and --trace-steps values (a missing folder, a folder, 0, 1001,
  --trace-steps alone) exit 2 with one line, before any training: the --out
  folder is not created.
- A short run on 2 threads (a small synthetic IDX set) writes a trace that
  parses as Chrome trace-event JSON: a STEP event per traced step on thread
  0, in order and disjoint; every "X" event well formed (name, a known cat,
  pid 1, tid 0 or 1, ts and dur >= 0, args.step) and inside its step's
  window; events of one thread nested or disjoint, never crossing; both
  threads named ("M" thread_name) and with events; the phases PACK_A,
  KERNEL, ADAM and BARRIER present on both threads, barriers as many on each
  thread and in each step; nothing dropped; no temporary left.
- tools/step-breakdown on it: per thread, the phases and "untraced" add up
  to the step; the "all" rows are the threads' sums; barriers per step as
  counted here. On a trace made here with known figures, every number is
  the one expected, nested time counted once. Bad input (not JSON, no
  traceEvents, no STEP events, an event without ts) exits 2 with one line.
- A run stopped by SIGINT, and one that fails (no data), still write a
  valid trace.
- With SIMDGAN_BENCH: SIMDGAN_TRACE=FILE SIMDGAN_TRACE_STEPS=3 on a 2-thread
  step row writes the same well-formed trace of 3 steps, and the row has the
  counters barrier_pct, barriers (as counted in the trace), pack_pct,
  kernel_pct, adam_pct; an unwritable SIMDGAN_TRACE fails the row.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

SIMDGAN = os.path.abspath(sys.argv[1])
SOURCE = os.path.abspath(sys.argv[2])
BENCH = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else None
TESTS = os.path.join(SOURCE, "tests")
sys.path.insert(0, TESTS)
from checks import check, finish  # noqa: E402
from idx_data import write_dataset  # noqa: E402

BREAKDOWN = os.path.join(SOURCE, "tools", "step-breakdown")
CATS = {"STEP", "FILL", "PACK_A", "PACK_B", "KERNEL", "EPILOGUE", "LOSS", "ADAM", "BARRIER"}
NEEDED = ("PACK_A", "KERNEL", "ADAM", "BARRIER")


def env(extra=None):
    e = dict(os.environ)
    for k in ("SIMDGAN_DATA", "SIMDGAN_ISA", "SIMDGAN_FUSION", "OMP_NUM_THREADS",
              "SIMDGAN_TRACE", "SIMDGAN_TRACE_STEPS"):
        e.pop(k, None)
    e.update(extra or {})
    return e


def run(cmd, timeout=300, extra=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(extra), timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def one_line(what, rc, err, prefix, words):
    lines = err.strip().splitlines()
    check(rc == 2, "%s: exit 2 (got %d)" % (what, rc))
    check(len(lines) == 1 and lines[0].startswith(prefix) and all(w in lines[0] for w in words),
          "%s: one line starting %r naming %s (got %r)" % (what, prefix, words, err))


def bad_flags(tmp, data):
    out = os.path.join(tmp, "never")
    base = [SIMDGAN, "train", "--data", data, "--out", out, "--epochs", "1"]
    missing = os.path.join(tmp, "no-such-folder", "t.json")
    for what, args, words in (
            ("--trace in a missing folder", ["--trace", missing], [missing]),
            ("--trace naming a folder", ["--trace", tmp], [tmp, "folder"]),
            ("--trace empty", ["--trace", ""], ["--trace"]),
            ("--trace-steps 0", ["--trace", os.path.join(tmp, "t.json"), "--trace-steps", "0"],
             ["--trace-steps", "1000"]),
            ("--trace-steps 1001", ["--trace", os.path.join(tmp, "t.json"),
                                    "--trace-steps", "1001"], ["--trace-steps", "1000"]),
            ("--trace-steps alone", ["--trace-steps", "5"], ["--trace-steps", "--trace"])):
        rc, _, err = run(base + args)
        one_line(what, rc, err, "simdgan: ", words)
        check(not os.path.exists(out), "%s: the output folder was created" % what)
        check(not os.path.exists(os.path.join(tmp, "t.json")), "%s: a trace was written" % what)


def load_trace(path, what):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        check(False, "%s: the trace does not load as JSON: %s" % (what, e))
        return None


def well_formed(d, steps, nth):
    """The checks of a trace of `steps` steps on `nth` threads."""
    check(isinstance(d, dict) and isinstance(d.get("traceEvents"), list),
          "the trace is an object with a traceEvents list")
    events = d["traceEvents"]
    other = d.get("otherData", {})
    check(other.get("steps") == steps, "otherData.steps is %d (got %s)" % (steps, other))
    check(other.get("dropped") == 0, "no events dropped (got %s)" % other.get("dropped"))
    named = {e.get("tid") for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"}
    xs = [e for e in events if e.get("ph") == "X"]
    check(all(e.get("ph") in ("X", "M") for e in events), "events are X or M only")
    bad = [e for e in xs if not (isinstance(e.get("name"), str) and e["name"]
                                 and e.get("cat") in CATS and e.get("pid") == 1
                                 and e.get("tid") in range(nth)
                                 and isinstance(e.get("ts"), (int, float)) and e["ts"] >= 0
                                 and isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0
                                 and isinstance(e.get("args", {}).get("step"), int)
                                 and 0 <= e["args"]["step"] < steps)]
    check(not bad, "every X event has name, a known cat, pid 1, tid < %d, ts, dur, args.step "
                   "(bad: %s)" % (nth, bad[:3]))
    if bad:
        return
    step_ev = sorted((e for e in xs if e["cat"] == "STEP"), key=lambda e: e["ts"])
    check([e["args"]["step"] for e in step_ev] == list(range(steps)),
          "one STEP event per traced step, in order (got %s)"
          % [e["args"]["step"] for e in step_ev])
    check(all(e["tid"] == 0 and e["name"] == "step" for e in step_ev), "STEP events on thread 0")
    check(all(a["ts"] + a["dur"] <= b["ts"] for a, b in zip(step_ev, step_ev[1:])),
          "the steps do not overlap")
    window = {e["args"]["step"]: (e["ts"], e["ts"] + e["dur"]) for e in step_ev}
    outside = [e for e in xs if e["args"]["step"] in window and not (
        window[e["args"]["step"]][0] <= e["ts"]
        and e["ts"] + e["dur"] <= window[e["args"]["step"]][1])]
    check(not outside, "every event lies inside its step (outside: %s)" % outside[:3])
    for t in range(nth):
        check(t in named, "thread %d is named (M thread_name)" % t)
        mine = sorted((e for e in xs if e["tid"] == t), key=lambda e: (e["ts"], -e["dur"]))
        check(len(mine) > 0, "thread %d has events" % t)
        stack, crossing = [], []
        for e in mine:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"]:
                stack.pop()
            if stack and e["ts"] + e["dur"] > stack[-1]["ts"] + stack[-1]["dur"]:
                crossing.append((stack[-1], e))
            stack.append(e)
        check(not crossing, "thread %d: events nested or disjoint (crossing: %s)"
              % (t, crossing[:2]))
        cats = {e["cat"] for e in mine}
        for ph in NEEDED:
            check(ph in cats, "thread %d has %s events (has %s)" % (t, ph, sorted(cats)))
    barriers = {(t, s): 0 for t in range(nth) for s in range(steps)}
    for e in xs:
        if e["cat"] == "BARRIER":
            barriers[(e["tid"], e["args"]["step"])] += 1
    check(len(set(barriers.values())) == 1,
          "as many barriers on every thread in every step (got %s)" % barriers)
    return xs


def breakdown_adds_up(path, xs, nth):
    rc, out, err = run([BREAKDOWN, path, "--json"])
    check(rc == 0, "step-breakdown --json runs on the trace (rc %d): %s" % (rc, err))
    if rc != 0:
        return
    b = json.loads(out)
    n = b["steps"]
    check(b["threads"] == list(range(nth)), "step-breakdown sees threads %s" % b["threads"])
    step = b["step_us"]["mean"]
    for t in range(nth):
        rows = [r for r in b["phases"] if r["thread"] == t]
        total = sum(r["us_per_step"] for r in rows)
        check(abs(total - step) <= 1e-6 * step + 1e-6,
              "thread %d: phases and untraced add up to the step (%.3f, step %.3f)"
              % (t, total, step))
    for ph in {r["phase"] for r in b["phases"]}:
        alls = [r for r in b["phases"] if r["phase"] == ph and r["thread"] == "all"]
        per = sum(r["total_us"] for r in b["phases"] if r["phase"] == ph and r["thread"] != "all")
        check(len(alls) == 1 and abs(alls[0]["total_us"] - per) < 1e-6 * (per + 1),
              "%s: the all row is the threads' sum" % ph)
    kept = [e for e in xs if e["args"]["step"] >= b["skipped"]]
    for t in range(nth):
        want = sum(1 for e in kept if e["tid"] == t and e["cat"] == "BARRIER") / n
        check(b["barriers_per_step"].get(str(t)) == want,
              "thread %d: %s barriers per step (got %s)"
              % (t, want, b["barriers_per_step"].get(str(t))))
    rc, out, err = run([BREAKDOWN, path])
    check(rc == 0 and "per phase and thread" in out and "barriers per step" in out,
          "step-breakdown prints its table (rc %d): %s" % (rc, err))
    print(out)


def known_trace(tmp):
    """A trace made here: 3 steps of 100 us on 2 threads; thread 0 has a
    KERNEL of 40 us holding a PACK_B of 10 us, and a BARRIER of 5 us; thread
    1 a KERNEL of 30 us and two BARRIERs of 5 us. Step 0 is skipped."""
    ev = [{"name": "thread_name", "ph": "M", "pid": 1, "tid": t, "args": {"name": "t%d" % t}}
          for t in (0, 1)]
    def x(name, cat, tid, ts, dur):
        return {"name": name, "cat": cat, "ph": "X", "pid": 1, "tid": tid,
                "ts": 1000.0 * s + ts, "dur": dur, "args": {"step": s}}

    for s in range(3):
        ev += [x("step", "STEP", 0, 0, 100), x("D.l1.fwd", "KERNEL", 0, 10, 40),
               x("D.l1.fwd", "PACK_B", 0, 20, 10), x("barrier", "BARRIER", 0, 60, 5),
               x("G.l2.fwd", "KERNEL", 1, 5, 30), x("barrier", "BARRIER", 1, 40, 5),
               x("barrier", "BARRIER", 1, 60, 5)]
    path = os.path.join(tmp, "known.json")
    with open(path, "w") as f:
        json.dump({"traceEvents": ev[::-1], "otherData": {"dropped": 0}}, f)
    rc, out, err = run([BREAKDOWN, path, "--json"])
    check(rc == 0, "step-breakdown on the made trace (rc %d): %s" % (rc, err))
    if rc != 0:
        return
    b = json.loads(out)
    check(b["steps"] == 2 and b["skipped"] == 1, "2 steps kept, 1 skipped (got %d, %d)"
          % (b["steps"], b["skipped"]))
    got = {(r["phase"], r["thread"]): (r["us_per_step"], r["pct_of_step"], r["count_per_step"])
           for r in b["phases"]}
    want = {("KERNEL", 0): (30, 30, 1), ("KERNEL", 1): (30, 30, 1), ("KERNEL", "all"): (60, 30, 2),
            ("PACK_B", 0): (10, 10, 1), ("PACK_B", 1): (0, 0, 0), ("PACK_B", "all"): (10, 5, 1),
            ("BARRIER", 0): (5, 5, 1), ("BARRIER", 1): (10, 10, 2),
            ("BARRIER", "all"): (15, 7.5, 3),
            ("untraced", 0): (55, 55, 0), ("untraced", 1): (60, 60, 0),
            ("untraced", "all"): (115, 57.5, 0)}
    for k, v in want.items():
        g = got.get(k)
        check(g is not None and all(abs(a - c) < 1e-9 for a, c in zip(g, v)),
              "made trace: %s %s is %s (got %s)" % (k[0], k[1], v, g))
    check(set(got) == set(want), "made trace: the rows are %s (got %s)" % (sorted(want, key=str),
                                                                          sorted(got, key=str)))
    check(b["barriers_per_step"] == {"0": 1, "1": 2}, "made trace: barriers per step")
    names = {r["name"]: r for r in b["names"]}
    check(names.get("D.l1.fwd", {}).get("phases_us_per_step") == {"KERNEL": 30, "PACK_B": 10},
          "made trace: D.l1.fwd has 30 us of KERNEL and 10 of PACK_B per step (got %s)"
          % names.get("D.l1.fwd"))
    rc, out, err = run([BREAKDOWN, path, "--skip", "3"])
    one_line("--skip past the last step", rc, err, "step-breakdown: ", [path])


def bad_input(tmp):
    rc, out, _ = run([BREAKDOWN, "--help"])
    check(rc == 0 and "usage" in out, "step-breakdown --help")
    cases = (("not JSON", "{ nope", ["not JSON"]),
             ("no traceEvents", '{"x": 1}', ["traceEvents"]),
             ("no STEP events", '{"traceEvents": [{"name": "a", "cat": "KERNEL", "ph": "X", '
                                '"pid": 1, "tid": 0, "ts": 0, "dur": 1}]}', ["STEP"]),
             ("an event without ts", '{"traceEvents": [{"name": "a", "cat": "STEP", "ph": "X", '
                                     '"pid": 1, "tid": 0, "dur": 1}]}', ["ts"]))
    for what, text, words in cases:
        path = os.path.join(tmp, "bad.json")
        with open(path, "w") as f:
            f.write(text)
        rc, _, err = run([BREAKDOWN, path])
        one_line("step-breakdown on " + what, rc, err, "step-breakdown: ", [path] + words)
    missing = os.path.join(tmp, "missing.json")
    rc, _, err = run([BREAKDOWN, missing])
    one_line("step-breakdown on a missing file", rc, err, "step-breakdown: ", [missing])


def bench(tmp):
    rc, out, err = run([BENCH, "--benchmark_list_tests=true"])
    rows = [r for r in out.split() if re.match(r"^step/[^/]+/fused/b100_h256/nth:2/", r)]
    check(rc == 0, "simdgan_bench --benchmark_list_tests (rc %d): %s" % (rc, err))
    if not rows:
        print("note: no 2-thread step row in simdgan_bench (one core): its trace is not tested")
        return
    row = "^" + re.escape(rows[0]) + "$"
    path = os.path.join(tmp, "bench.json")
    rc, out, err = run([BENCH, "--benchmark_filter=" + row, "--benchmark_min_time=0.01",
                        "--benchmark_format=json"],
                       extra={"SIMDGAN_TRACE": path, "SIMDGAN_TRACE_STEPS": "3"})
    check(rc == 0, "bm_step with SIMDGAN_TRACE (rc %d): %s" % (rc, err))
    d = load_trace(path, "bm_step")
    xs = well_formed(d, 3, 2) if d is not None else None
    try:
        b = json.loads(out)["benchmarks"][0]
    except (ValueError, KeyError, IndexError):
        check(False, "bm_step prints its JSON row: %r" % out[:200])
        return
    check(not b.get("error_occurred"), "bm_step's traced row ran: %s" % b.get("error_message"))
    for c in ("barrier_pct", "barriers", "pack_pct", "kernel_pct", "adam_pct"):
        check(0 <= b.get(c, -1) <= (1e9 if c == "barriers" else 100),
              "bm_step's traced row has the counter %s (got %s)" % (c, b.get(c)))
    if xs:
        want = sum(1 for e in xs if e["cat"] == "BARRIER") / 2 / 3
        check(b.get("barriers") == want, "bm_step: barriers %s as in the trace (%s)"
              % (b.get("barriers"), want))
    missing = os.path.join(tmp, "no-such-folder", "b.json")
    rc, out, err = run([BENCH, "--benchmark_filter=" + row, "--benchmark_min_time=0.01",
                        "--benchmark_format=json"], extra={"SIMDGAN_TRACE": missing})
    try:
        b = json.loads(out)["benchmarks"][0]
    except (ValueError, KeyError, IndexError):
        b = {}
    check(b.get("error_occurred") and missing in b.get("error_message", ""),
          "bm_step with an unwritable SIMDGAN_TRACE: the row fails naming it (got %s)" % b)


def main():
    with tempfile.TemporaryDirectory() as tmp:
        data = write_dataset(os.path.join(tmp, "data"), 400, 100)
        small = ["--data", data, "--batch-size", "50", "--hidden", "64", "--latent", "16",
                 "--log-every", "0", "--checkpoint-every", "0"]
        bad_flags(tmp, data)
        known_trace(tmp)
        bad_input(tmp)

        # A traced run on 2 threads: 5 traced steps of 8.
        path = os.path.join(tmp, "run.json")
        rc, _, err = run([SIMDGAN, "train", *small, "--out", os.path.join(tmp, "run"),
                          "--threads", "2", "--epochs", "1", "--max-steps", "8",
                          "--trace", path, "--trace-steps", "5"])
        check(rc == 0, "a traced run (rc %d): %s" % (rc, err))
        check(not [f for f in os.listdir(tmp) if ".tmp." in f], "no temporary left beside it")
        d = load_trace(path, "the traced run")
        if d is not None:
            xs = well_formed(d, 5, 2)
            if xs:
                breakdown_adds_up(path, xs, 2)

        # SIGINT: the run stops cleanly after a step, and the trace is written.
        path = os.path.join(tmp, "int.json")
        p = subprocess.Popen([SIMDGAN, "train", *small, "--log-every", "1",
                              "--out", os.path.join(tmp, "int"), "--threads", "2",
                              "--epochs", "100000", "--trace", path, "--trace-steps", "1000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
        first = p.stdout.readline()
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=300)
        check(first.startswith("Epoch") and p.returncode == 130,
              "SIGINT: exit 130 after a log line (got %d, %r)" % (p.returncode, first))
        d = load_trace(path, "SIGINT")
        if d is not None:
            steps = d.get("otherData", {}).get("steps", 0)
            check(1 <= steps < 1000, "SIGINT: the trace holds the steps run (%s)" % steps)
            well_formed(d, steps, 2)

        # A run that fails before its first step still writes its (empty) trace.
        path = os.path.join(tmp, "fail.json")
        rc, _, err = run([SIMDGAN, "train", "--data", os.path.join(tmp, "nodata"),
                          "--out", os.path.join(tmp, "fail"), "--threads", "2",
                          "--trace", path])
        check(rc == 2 and len(err.strip().splitlines()) == 1,
              "a run without data: exit 2, one line (got %d, %r)" % (rc, err))
        d = load_trace(path, "the failed run")
        check(d is not None and d.get("otherData", {}).get("steps") == 0
              and not [e for e in d["traceEvents"] if e.get("ph") == "X"],
              "the failed run's trace is valid and empty")
        if BENCH:
            bench(tmp)
    return finish("test_trace")


if __name__ == "__main__":
    sys.exit(main())
