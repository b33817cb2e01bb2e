#!/usr/bin/python3
"""test_runs.py: runs that survive stops, kills, damage and a second run.

Usage: test_runs.py SIMDGAN [TESTS_DIR]

Every run trains a small model on a synthetic IDX set (test_cli.write_idx),
so the whole file takes seconds. What it checks:
- kill -9 at random instants (checkpoint writes included, with a state every
  3 steps), then --resume, until the run completes: G, D, the state, every
  PNG and the metrics log equal an uninterrupted run's, bit for bit (the
  metrics' ms/step column aside); no temporary is left;
- SIGINT and SIGTERM: exit 130 / 143, one line naming --resume, a state
  that resumes to the same final bits; a second SIGINT exits at once and
  leaves no temporary;
- --resume with no state starts from the beginning and says so; a fresh run
  into a folder holding an unfinished run is refused; a flag that differs
  from the state's names the flag and both values; --epochs raised on resume
  trains on, to the bits of a run that was that long from the start;
- damaged states (truncated, a flipped data byte, a hostile header, shapes
  that disagree with the metadata): one line naming the file, exit 2;
- two runs into one folder: the second names the first's PID, exit 2;
- --lr 1e30: exit 3 naming epoch and step, nothing non-finite written;
- a folder where G.safetensors goes, a file where samples/ goes: refused
  before training;
- stdout closed (| head -1): the run completes;
- a full disk (a 3 MiB tmpfs, where mount works): refused up front when the
  state cannot fit, and ENOSPC in mid-run is one line, exit 2, with the
  previous state intact;
- --precision bf16: bit-identical at 1 and 2 threads and across a stop and
  --resume (which keeps the state's precision and bf16 path, and refuses
  --precision fp32), different from fp32, recorded in the state; a state
  without those keys resumes as fp32, damaged ones are one line; the
  fixed-z grid of a bf16 run equals `simdgan sample`'s of its G.
"""
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import time

SIMDGAN = os.path.abspath(sys.argv[1])
TESTS = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(__file__))
sys.path.insert(0, TESTS)
from check_safetensors import arrays, read_safetensors  # noqa: E402
from test_cli import write_idx  # noqa: E402
from checks import check, finish  # noqa: E402

rng = random.Random(int(os.environ.get("SIMDGAN_TEST_SEED", "0")) or None)




def env():
    e = dict(os.environ)
    for k in ("SIMDGAN_DATA", "SIMDGAN_ISA", "SIMDGAN_FUSION", "SIMDGAN_BF16"):
        e.pop(k, None)
    return e


def run(args, **kw):
    p = subprocess.run([SIMDGAN] + args, capture_output=True, text=True, env=env(), timeout=300,
                       **kw)
    return p.returncode, p.stdout, p.stderr


def start(args):
    return subprocess.Popen([SIMDGAN] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env())


def files(folder):
    """Every output but the lock, as bytes; metrics.csv without ms/step."""
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, folder)
            if rel == ".simdgan.lock":
                continue
            data = open(p, "rb").read()
            if rel == "metrics.csv":
                data = b"\n".join(b",".join(l.split(b",")[:7]) for l in data.splitlines())
            out[rel] = data
    return out


def temporaries(folder):
    return [os.path.join(r, n) for r, _, ns in os.walk(folder) for n in ns if ".tmp." in n]


def one_line_error(name, rc, so, se, status, needles):
    lines = [l for l in se.splitlines() if l.strip()]
    check(rc == status, f"{name}: exit status {rc}, expected {status} (stderr {se!r})")
    check(len(lines) >= 1 and lines[-1].startswith("simdgan: "), f"{name}: stderr {se!r}")
    for n in needles:
        check(n in (lines[-1] if lines else ""), f"{name}: {lines[-1:]!r} lacks {n!r}")


def main():
    tmp = tempfile.mkdtemp(prefix="simdgan-runs-")
    data = os.path.join(tmp, "data")
    write_idx(data, 1200)
    # 60 steps an epoch at batch 20; a small model, so a run takes well under
    # a second and kills land everywhere, checkpoint writes included.
    base = ["train", "--data", data, "--batch-size", "20", "--hidden", "48", "--latent", "16",
            "--seed", "7", "--threads", "2", "--log-every", "20"]

    ref = os.path.join(tmp, "ref")
    t0 = time.time()
    rc, so, se = run(base + ["--epochs", "3", "--out", ref, "--checkpoint-every", "3"])
    dt = time.time() - t0
    check(rc == 0, f"reference run: {se}")
    want = files(ref)
    check("G.safetensors" in want and "samples/fake_images-3.png" in want, f"outputs {sorted(want)}")
    check(len(so.splitlines()) == 9, f"reference log: {so!r}")

    # The default thread count adapts to the machine's load, step by step;
    # the bits do not depend on it.
    auto = os.path.join(tmp, "auto")
    default_threads = [a for a in base if a not in ("--threads", "2")]
    rc, _, se = run(default_threads + ["--epochs", "3", "--out", auto, "--checkpoint-every", "3"])
    check(rc == 0, f"default threads: {se}")
    check(files(auto) == want, "default (adaptive) threads: outputs differ from --threads 2")

    # kill -9 at random instants, then --resume, until the run completes.
    # The reference's state is written every 3 steps; a state every step or
    # every 7 ends at the same bits.
    total_kills = 0
    for trial, every in enumerate((1, 3, 7, 1, 3, 7)):
        out = os.path.join(tmp, f"kill{trial}")
        kills, first = 0, True
        while True:
            p = start(base + ["--epochs", "3", "--out", out, "--checkpoint-every", str(every)] +
                      ([] if first else ["--resume"]))
            first = False
            time.sleep(rng.uniform(0.05, 0.7) * dt)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills += 1
            p.communicate()
            if p.returncode == 0 or kills >= 40:
                break
        check(p.returncode == 0, f"kill trial {trial}: never completed ({kills} kills)")
        got = files(out)
        if every != 3:  # the state's bytes are the same; only its cadence differs
            got.pop("checkpoint.safetensors", None)
        diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k) and
                      (k != "checkpoint.safetensors" or every == 3))
        check(not diff, f"kill trial {trial} ({kills} kills): differs from the reference in {diff}")
        check(not temporaries(out), f"kill trial {trial}: temporaries left {temporaries(out)}")
        print(f"kill -9 trial {trial} (a state every {every} steps): {kills} kills, "
              f"final files identical: {not diff}")
        total_kills += kills
    check(total_kills >= 6, f"only {total_kills} kills landed in 6 trials")

    # SIGINT and SIGTERM: clean stop, exit 130 / 143, and a state that resumes.
    for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        out = os.path.join(tmp, f"sig{status}")
        p = start(base + ["--epochs", "3", "--out", out])
        first = p.stdout.readline()
        p.send_signal(sig)
        so, se = p.communicate()
        so = first + so
        one_line_error(f"signal {status}", p.returncode, so, se, status, ["--resume", out])
        check(os.path.exists(os.path.join(out, "checkpoint.safetensors")), f"{status}: no state")
        rc, so, se = run(base + ["--out", out, "--resume"])
        check(rc == 0, f"resume after signal {status}: {se}")
        got, ref_files = files(out), dict(want)
        got.pop("checkpoint.safetensors"), ref_files.pop("checkpoint.safetensors")
        check(got == ref_files, f"resume after signal {status}: differs from the reference")
        check(not temporaries(out), f"signal {status}: temporaries left")

    # A second SIGINT exits at once: 130, no temporaries.
    out = os.path.join(tmp, "twice")
    p = start(base + ["--epochs", "50", "--out", out, "--checkpoint-every", "1"])
    time.sleep(dt * 0.5)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    p.communicate()
    check(p.returncode == 130, f"two SIGINTs: exit {p.returncode}")
    check(not temporaries(out), f"two SIGINTs: temporaries left {temporaries(out)}")

    # --resume without a state; a fresh run over an unfinished one; flags.
    out = os.path.join(tmp, "noresume")
    rc, so, se = run(base + ["--epochs", "1", "--out", out, "--resume"])
    check(rc == 0 and "no training state" in se and "starting from the beginning" in se,
          f"--resume without a state: {rc} {se!r}")
    out = os.path.join(tmp, "partial")
    rc, so, se = run(base + ["--epochs", "3", "--out", out, "--max-steps", "70"])
    check(rc == 0 and "--resume" in se, f"--max-steps: {rc} {se!r}")
    rc, so, se = run(base + ["--epochs", "3", "--out", out])
    one_line_error("fresh run over an unfinished one", rc, so, se, 2, ["--resume", "unfinished"])
    rc, so, se = run(base + ["--epochs", "3", "--out", ref, "--seed", "8"])
    one_line_error("fresh run over a finished one", rc, so, se, 2, ["--resume", "finished"])
    check(files(ref) == want, "a refused run changed the finished run's files")
    # Stale temporaries: a dead process's temporaries of simdgan's outputs go,
    # anything else stays.
    stale = os.path.join(tmp, "stale")
    os.makedirs(os.path.join(stale, "samples"))
    dead = subprocess.Popen(["true"])
    dead.wait()
    doomed = [os.path.join(stale, f"G.safetensors.tmp.{dead.pid}"),
              os.path.join(stale, "samples", f"fake_images-3.png.tmp.{dead.pid}")]
    kept = [os.path.join(stale, "budget.csv.tmp.2024"),
            os.path.join(stale, "samples", "photo.png.tmp.1"),
            os.path.join(stale, f"D.safetensors.tmp.{os.getpid()}")]
    for f in doomed + kept:
        open(f, "w").write("x")
    rc, so, se = run(base + ["--epochs", "1", "--out", stale, "--max-steps", "1"])
    check(rc == 0, f"stale temporaries: {se}")
    check(not any(os.path.exists(f) for f in doomed), "a dead run's temporaries were left")
    check(all(os.path.exists(f) for f in kept), "a file that is not a dead run's temporary was removed")
    rc, so, se = run(["train", "--data", data, "--hidden", "64", "--out", out, "--resume"])
    one_line_error("--hidden differs", rc, so, se, 2, ["--hidden 64", "48"])
    rc, so, se = run(["train", "--data", data, "--out", out, "--resume", "--hidden", "256"])
    one_line_error("--hidden given at its default", rc, so, se, 2, ["--hidden 256", "48"])
    rc, so, se = run(base + ["--out", out, "--resume", "--seed", "8"])
    one_line_error("--seed differs", rc, so, se, 2, ["--seed 8", "7"])
    rc, so, se = run(base + ["--out", out, "--resume", "--lr", "0.001"])
    one_line_error("--lr differs", rc, so, se, 2, ["--lr 0.001", "0.0002"])
    other = os.path.join(tmp, "otherdata")
    write_idx(other, 1200, seed=3)
    rc, so, se = run(["train", "--data", other, "--out", out, "--resume"])
    one_line_error("other training files", rc, so, se, 2, ["CRC-32", "same training files"])
    rc, so, se = run(["train", "--data", data, "--out", out, "--resume", "--epochs", "1"])
    one_line_error("--epochs below the state", rc, so, se, 2, ["--epochs 1", "at least 2"])
    # Flags not given come from the state; --epochs raised trains on.
    rc, so, se = run(["train", "--data", data, "--out", out, "--resume", "--epochs", "4",
                      "--log-every", "20"])
    check(rc == 0, f"resume with --epochs 4: {se}")
    longer = os.path.join(tmp, "longer")
    rc, _, se = run(base + ["--epochs", "4", "--out", longer])
    check(rc == 0, f"4-epoch run: {se}")
    for f in ("G.safetensors", "D.safetensors"):
        a = arrays(*read_safetensors(os.path.join(out, f))[::2])
        b = arrays(*read_safetensors(os.path.join(longer, f))[::2])
        check(all((a[k] == b[k]).all() for k in a), f"--epochs raised on resume: {f} differs")

    # Damaged states: one line naming the file, exit 2.
    state = os.path.join(out, "checkpoint.safetensors")
    good = open(state, "rb").read()
    hlen = struct.unpack("<Q", good[:8])[0]

    def damaged(name, blob, needles):
        open(state, "wb").write(blob)
        rc, so, se = run(["train", "--data", data, "--out", out, "--resume"])
        one_line_error(f"damaged state: {name}", rc, so, se, 2, [state] + needles)

    damaged("truncated", good[: len(good) // 2], [])
    flip = bytearray(good)
    flip[8 + hlen + 1000] ^= 0x40
    damaged("flipped byte", bytes(flip), ["CRC-32"])
    damaged("hostile header length", struct.pack("<Q", 1 << 62) + good[8:], [])
    damaged("not JSON", struct.pack("<Q", 16) + b"{\"a\":[1,2,3]]}  " + good[24:], [])
    header = good[8: 8 + hlen].replace(b'"hidden":"48"', b'"hidden":"40"')
    check(header != good[8: 8 + hlen], "the state's header holds hidden 48")
    damaged("shapes against metadata", good[:8] + header + good[8 + hlen:], ["shape"])
    open(state, "wb").write(good)

    # One run per folder.
    out = os.path.join(tmp, "locked")
    p = start(base + ["--epochs", "200", "--out", out])
    lock = os.path.join(out, ".simdgan.lock")
    for _ in range(3000):  # up to a minute: slow under the sanitizers
        if (os.path.exists(lock) and open(lock).read().strip()) or p.poll() is not None:
            break
        time.sleep(0.02)
    rc, so, se = run(base + ["--epochs", "1", "--out", out])
    one_line_error("second run", rc, so, se, 2, [f"pid {p.pid}", "one run per folder"])
    p.send_signal(signal.SIGTERM)
    p.communicate()
    check(p.returncode == 143, f"locked run after SIGTERM: exit {p.returncode}")

    # Divergence: exit 3 naming epoch and step; nothing non-finite on disk.
    out = os.path.join(tmp, "diverge")
    rc, so, se = run(base + ["--epochs", "2", "--out", out, "--lr", "1e30",
                             "--checkpoint-every", "1"])
    one_line_error("--lr 1e30", rc, so, se, 3, ["diverged", "epoch 0, step"])
    check(not os.path.exists(os.path.join(out, "G.safetensors")), "--lr 1e30 wrote G")
    if os.path.exists(os.path.join(out, "checkpoint.safetensors")):
        h, _, blob = read_safetensors(os.path.join(out, "checkpoint.safetensors"))
        import numpy as np
        check(all(np.isfinite(v).all() for v in arrays(h, blob).values()),
              "--lr 1e30: the state holds non-finite values")

    # Outputs checked before training.
    out = os.path.join(tmp, "blocked")
    os.makedirs(os.path.join(out, "G.safetensors"))
    rc, so, se = run(base + ["--epochs", "1", "--out", out])
    one_line_error("folder in the way", rc, so, se, 2, ["G.safetensors", "folder"])
    check(so == "", "folder in the way: trained anyway")
    out = os.path.join(tmp, "samplesfile")
    os.makedirs(out)
    open(os.path.join(out, "samples"), "w").close()
    rc, so, se = run(base + ["--epochs", "1", "--out", out])
    one_line_error("samples is a file", rc, so, se, 2, ["samples"])

    afile = os.path.join(tmp, "afile")
    open(afile, "w").close()
    rc, so, se = run(base + ["--epochs", "1", "--out", afile])
    one_line_error("--out onto a file", rc, so, se, 2, ["--out " + afile, "not a folder"])
    check(se.count(afile) == 1, f"--out onto a file: {se!r} names the file more than once")

    # --dataset must name the files given.
    mnist = os.environ.get("SIMDGAN_DATA")
    if mnist:
        out = os.path.join(tmp, "wrongset")
        rc, so, se = run(["train", "--dataset", "fashion-mnist", "--data", mnist, "--out", out])
        one_line_error("fashion-mnist on MNIST's files", rc, so, se, 2, ["MNIST's files"])
        check(not os.path.exists(out), "fashion-mnist on MNIST's files: created --out")

    # The progress line: on a terminal only, redrawn in place, cleared at the end.
    import pty
    master, slave = pty.openpty()
    out = os.path.join(tmp, "progress")
    p = subprocess.Popen([SIMDGAN] + base + ["--epochs", "2", "--out", out], stdout=subprocess.PIPE,
                         stderr=slave, env=env())
    os.close(slave)
    tty = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        tty += chunk
    p.communicate()
    os.close(master)
    tty = tty.decode(errors="replace")
    check(p.returncode == 0 and "ETA" in tty and "steps/s" in tty and "\r\x1b[K" in tty,
          f"progress line on a terminal: {tty[-300:]!r}")
    check(tty.rstrip().endswith(".safetensors") or "wrote" in tty.splitlines()[-1],
          f"the progress line is not cleared before the last line: {tty[-200:]!r}")
    rc, so, se = run(base + ["--epochs", "1", "--out", os.path.join(tmp, "noprogress")])
    check(rc == 0 and "ETA" not in se and "\r" not in se, f"progress line off a terminal: {se!r}")
    check(all(l.startswith("Epoch [") for l in so.splitlines()), f"stdout lines: {so!r}")

    # A closed stdout does not lose the run.
    out = os.path.join(tmp, "pipe")
    sh = subprocess.run(f"'{SIMDGAN}' {' '.join(base)} --epochs 2 --out '{out}' | head -1",
                        shell=True, capture_output=True, text=True, env=env(), timeout=300)
    check(sh.stdout.startswith("Epoch [0/2]"), f"| head -1: {sh.stdout!r}")
    check(os.path.exists(os.path.join(out, "G.safetensors")), f"| head -1 lost the run: {sh.stderr!r}")

    # A full disk, where a tmpfs can be mounted (root, not in every container).
    mnt = os.path.join(tmp, "mnt")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", mnt],
                      capture_output=True).returncode == 0:
        try:
            rc, so, se = run(base + ["--epochs", "1", "--out", os.path.join(mnt, "o")])
            one_line_error("no room up front", rc, so, se, 2, ["MiB free"])
            subprocess.run(["umount", mnt])
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], check=True)
            out = os.path.join(mnt, "o")
            p = start(base + ["--epochs", "100", "--out", out, "--checkpoint-every", "5"])
            st = os.path.join(out, "checkpoint.safetensors")
            while not os.path.exists(st) and p.poll() is None:
                time.sleep(0.01)
            filler = os.path.join(mnt, "filler")
            subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
            so, se = p.communicate()
            one_line_error("disk full mid-run", p.returncode, so, se, 2,
                           ["No space left", "intact"])
            os.unlink(filler)
            check(not temporaries(out), f"disk full: temporaries left {temporaries(out)}")
            rc, so, se = run(base + ["--epochs", "1", "--out", out, "--resume", "--epochs", "100",
                                     "--max-steps", "1"])
            check(rc == 0, f"disk full: the state left behind does not resume: {se}")
        finally:
            subprocess.run(["umount", mnt])
    else:
        print("full disk: tmpfs cannot be mounted here (not root?); those checks not run")

    bf16_runs(tmp, data, base)
    subprocess.run(["rm", "-rf", tmp])
    return finish("test_runs")


def bf16_runs(tmp, data, base):
    """--precision bf16: the bits do not depend on the thread count or on a
    stop; the state says bf16 and its path, and --resume keeps both."""
    one = [a if a != "2" else "1" for a in base]  # --threads 1
    bf = ["--epochs", "2", "--precision", "bf16"]
    ref = os.path.join(tmp, "bf16")
    rc, _, se = run(one + bf + ["--out", ref])
    check(rc == 0 and "precision bf16: products on the" in se, f"bf16 run: {rc} {se!r}")
    want = files(ref)
    meta = read_safetensors(os.path.join(ref, "checkpoint.safetensors"))[1]
    check(meta.get("precision") == "bf16" and meta.get("bf16_path") not in (None, "none"),
          f"bf16 state metadata: {meta.get('precision')!r} {meta.get('bf16_path')!r}")
    fp32 = os.path.join(tmp, "bf16-fp32")
    rc, _, se = run(one + ["--epochs", "2", "--out", fp32])
    check(rc == 0, f"fp32 run beside bf16: {se}")
    a = arrays(*read_safetensors(os.path.join(ref, "G.safetensors"))[::2])
    b = arrays(*read_safetensors(os.path.join(fp32, "G.safetensors"))[::2])
    check(any((a[k] != b[k]).any() for k in a), "--precision bf16 trained the fp32 bits")
    check(read_safetensors(os.path.join(fp32, "checkpoint.safetensors"))[1].get("precision") ==
          "fp32", "fp32 state metadata lacks precision fp32")
    # Two threads, stopped at step 50 and resumed without --precision: the
    # state's precision and path go on, to the one-thread run's bits.
    out = os.path.join(tmp, "bf16-resumed")
    rc, _, se = run(base + bf + ["--out", out, "--max-steps", "50"])
    check(rc == 0, f"bf16 --max-steps: {se}")
    rc, _, se = run(base[:-4] + ["--out", out, "--resume", "--precision", "fp32"])
    one_line_error("--precision differs", rc, _, se, 2, ["--precision fp32", "bf16"])
    rc, _, se = run(base + ["--out", out, "--resume"])
    check(rc == 0, f"bf16 resume: {se}")
    got = files(out)
    # The state's metadata says how many threads wrote it; its tensors must agree.
    st = [arrays(*read_safetensors(os.path.join(d, "checkpoint.safetensors"))[::2])
          for d in (out, ref)]
    check(all((st[0][k] == st[1][k]).all() for k in st[1]), "bf16: the states' tensors differ")
    got.pop("checkpoint.safetensors"), want.pop("checkpoint.safetensors")
    diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
    check(not diff, f"bf16: 2 threads with a stop differ from 1 thread without in {diff}")
    rc, so, se = run(one + ["--epochs", "1", "--precision", "fp16", "--out", out + "-x"])
    one_line_error("--precision fp16", rc, so, se, 2, ["--precision fp16", "fp32 or bf16"])
    rc, so, se = run(one + ["--out", fp32, "--resume", "--precision", "bf16", "--epochs", "3"])
    one_line_error("bf16 over an fp32 state", rc, so, se, 2, ["--precision bf16", "fp32"])

    # The state's new keys: a state from before them (neither) resumes as
    # fp32; a damaged value is one line naming the file.
    st = os.path.join(fp32, "checkpoint.safetensors")
    good = open(st, "rb").read()
    (hlen,) = struct.unpack("<Q", good[:8])
    keys = b'"precision":"fp32","bf16_path":"none",'
    check(keys in good[8:8 + hlen], "the fp32 state's header lacks precision fp32, bf16_path none")

    def edited(old, new):  # same length, so the header's length stands
        return good.replace(old, new.ljust(len(old)), 1)

    for name, blob, needles in (
            ("precision fp64", edited(b'"fp32"', b'"fp64"'), ["precision", "fp64"]),
            ("fp32 with a bf16 path", edited(b'"bf16_path":"none"', b'"bf16_path":"ref"'),
             ["bf16_path", "ref"])):
        open(st, "wb").write(blob)
        rc, so, se = run(one + ["--out", fp32, "--resume", "--epochs", "3"])
        one_line_error(f"damaged state: {name}", rc, so, se, 2, [st, "damaged"] + needles)
    open(st, "wb").write(edited(keys, b""))
    rc, so, se = run(one + ["--out", fp32, "--resume", "--epochs", "3", "--max-steps", "130"])
    check(rc == 0, f"a state without precision: {se}")
    meta = read_safetensors(st)[1]
    check(meta.get("precision") == "fp32" and meta.get("bf16_path") == "none",
          f"a state without precision resumed as {meta.get('precision')!r}")

    # Grids made during a bf16 run come from fp32 products, as `simdgan
    # sample` makes them from the G the run writes.
    out = os.path.join(tmp, "bf16-fixed-z")
    rc, _, se = run(one + ["--epochs", "1", "--precision", "bf16", "--fixed-z", "--out", out])
    check(rc == 0, f"bf16 --fixed-z: {se}")
    grid = os.path.join(tmp, "bf16-sample.png")
    rc, _, se = run(["sample", "--g", os.path.join(out, "G.safetensors"), "-n", "64", "--seed", "7",
                     "--out", grid])
    check(rc == 0 and open(grid, "rb").read() ==
          open(os.path.join(out, "samples", "fixed_z-1.png"), "rb").read(),
          f"bf16 run: fixed_z-1.png differs from simdgan sample's grid of its G ({se})")


if __name__ == "__main__":
    sys.exit(main())
