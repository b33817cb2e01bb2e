#!/usr/bin/python3
"""test_cli.py: the simdgan command as a user meets it.

Usage: test_cli.py SIMDGAN [TESTS_DIR]

- Every bad input (unknown flag, value out of range, missing, truncated or
  malformed data file, image/label count mismatch, unwritable output folder,
  bad environment overrides) exits with status 2, prints one line naming the
  flag or file and what was expected, and leaves no output behind (the
  output folder is not even created).
- A short run on a small synthetic IDX data set prints log lines in the
  tutorial's format and writes both PNGs and both checkpoints, with no
  temporary files left.
- A seed gives the same checkpoint bytes with --threads 1, 2 and 3; the fused
  and unfused kernels give the same bits after 20 training steps.
- With $SIMDGAN_DATA set: `simdgan train --epochs 1` on MNIST prints the three
  log lines and its outputs pass the independent PNG and safetensors readers.
"""
import gzip
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

SIMDGAN = os.path.abspath(sys.argv[1])
TESTS = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(__file__))
sys.path.insert(0, TESTS)
from check_png import decode_png  # noqa: E402
from check_safetensors import arrays, read_safetensors  # noqa: E402
from checks import check, finish  # noqa: E402

LOG_RE = re.compile(r"^Epoch \[(\d+)/(\d+)\], Step \[(\d+)/(\d+)\], d_loss: \d+\.\d{4}, "
                    r"g_loss: \d+\.\d{4}, D\(x\): \d\.\d{2}, D\(G\(z\)\): \d\.\d{2}$")




def run(args, env_extra=None, cwd=None):
    env = dict(os.environ)
    env.pop("SIMDGAN_DATA", None)
    env.pop("SIMDGAN_ISA", None)
    env.pop("SIMDGAN_FUSION", None)
    env.update(env_extra or {})
    p = subprocess.run([SIMDGAN] + args, capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=600)
    return p.returncode, p.stdout, p.stderr


def write_idx(folder, n_images, n_labels=None, magic=0x803, dims=(28, 28), truncate=0,
              gz=True, seed=1):
    """Synthetic MNIST-format files: image k is a bright bar whose place
    depends on k, so the set has some structure to learn."""
    os.makedirs(folder, exist_ok=True)
    n_labels = n_images if n_labels is None else n_labels
    px = bytearray()
    for k in range(n_images):
        img = bytearray(dims[0] * dims[1])
        r = (k * 7 + seed) % dims[0]
        for c in range(dims[1]):
            img[r * dims[1] + c] = 255
            img[c % dims[0] * dims[1] + (k % dims[1])] = 128
        px += img
    images = struct.pack(">IIII", magic, n_images, *dims) + bytes(px)
    labels = struct.pack(">II", 0x801, n_labels) + bytes(k % 10 for k in range(n_labels))
    if truncate:
        images = images[:-truncate]
    opener = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    with opener(os.path.join(folder, "train-images-idx3-ubyte" + suffix), "wb") as f:
        f.write(images)
    with opener(os.path.join(folder, "train-labels-idx1-ubyte" + suffix), "wb") as f:
        f.write(labels)


def listing(folder):
    out = []
    for root, _, files in os.walk(folder):
        out += [os.path.relpath(os.path.join(root, f), folder) for f in files]
    return sorted(out)


def expect_error(name, args, needles, env=None, out=None):
    rc, so, se = run(args, env)
    lines = [l for l in se.splitlines() if l.strip()]
    check(rc == 2, f"{name}: exit status {rc}, expected 2 (stderr: {se!r})")
    check(len(lines) == 1, f"{name}: expected one line on stderr, got {lines!r}")
    for n in needles:
        check(n in se, f"{name}: stderr {se.strip()!r} does not mention {n!r}")
    check(so == "", f"{name}: printed on stdout: {so!r}")
    if out is not None:
        check(not os.path.exists(out), f"{name}: created the output folder {out}")


def check_sample(path):
    """A 100-image grid: 242x392 RGB, grey (three equal channels), black
    padding, the last row's four empty cells black."""
    with open(path, "rb") as f:
        width, height, channels, rows = decode_png(f.read(), path)
    check((width, height, channels) == (242, 392, 3), f"{path}: {width}x{height}x{channels}")
    grey = all(r[i] == r[i + 1] == r[i + 2] for r in rows for i in range(0, len(r), 3))
    check(grey, f"{path}: channels differ")
    pad = [rows[y][3 * x] for y in range(height) for x in range(width)
           if x % 30 < 2 or y % 30 < 2 or (y >= 362 and x >= 122)]
    check(max(pad) == 0, f"{path}: padding or empty cells are not black")
    ink = [rows[y][3 * x] for y in range(2, 30) for x in range(2, 30)]
    check(max(ink) > 0, f"{path}: the first image is blank")


def main():
    tmp = tempfile.mkdtemp(prefix="simdgan-cli-")
    try:
        good = os.path.join(tmp, "good")
        write_idx(good, 600)
        out = os.path.join(tmp, "out")
        base = ["train", "--data", good, "--out", out, "--epochs", "1", "--log-every", "0"]

        # Flags.
        expect_error("unknown flag", base + ["--epoch", "3"], ["--epoch", "unknown flag"], out=out)
        expect_error("batch 0", base + ["--batch-size", "0"], ["--batch-size 0", "integer"], out=out)
        expect_error("negative epochs", base + ["--epochs", "-1"], ["--epochs -1"], out=out)
        for lr in ["0", "-1", "nan", "inf", "abc", "1e-4x"]:
            expect_error(f"lr {lr}", base + ["--lr", lr], [f"--lr {lr}", "finite positive"], out=out)
        expect_error("threads 0", base + ["--threads", "0"], ["--threads 0"], out=out)
        expect_error("dataset", base + ["--dataset", "cifar10"], ["--dataset cifar10", "mnist"], out=out)
        expect_error("missing value", base + ["--hidden"], ["--hidden", "expected a value"], out=out)
        expect_error("stray argument", base + ["extra"], ["extra"], out=out)
        expect_error("unknown command", ["trian"], ["trian", "train"])
        expect_error("batch larger than data", base + ["--batch-size", "601"],
                     ["--batch-size 601", "600"], out=out)

        # Data files.
        missing = os.path.join(tmp, "nowhere")
        expect_error("missing folder", ["train", "--data", missing, "--out", out], [missing], out=out)
        cases = {
            "truncated": dict(truncate=100),
            "wrong magic": dict(magic=0x804),
            "wrong dims": dict(dims=(27, 28)),
            "count mismatch": dict(n_labels=599),
        }
        needles = {
            "truncated": ["train-images-idx3-ubyte", "truncated"],
            "wrong magic": ["train-images-idx3-ubyte", "magic"],
            "wrong dims": ["train-images-idx3-ubyte", "28"],
            "count mismatch": ["599", "600"],
        }
        for name, kw in cases.items():
            for gz in (True, False):
                d = os.path.join(tmp, name.replace(" ", "_") + ("_gz" if gz else "_raw"))
                write_idx(d, 600, gz=gz, **kw)
                expect_error(f"{name} ({'gz' if gz else 'raw'})",
                             ["train", "--data", d, "--out", out], needles[name], out=out)
        nolabels = os.path.join(tmp, "nolabels")
        write_idx(nolabels, 600)
        os.remove(os.path.join(nolabels, "train-labels-idx1-ubyte.gz"))
        expect_error("missing labels", ["train", "--data", nolabels, "--out", out],
                     ["train-labels-idx1-ubyte"], out=out)
        corrupt = os.path.join(tmp, "corrupt")
        write_idx(corrupt, 600)
        p = os.path.join(corrupt, "train-images-idx3-ubyte.gz")
        blob = bytearray(open(p, "rb").read())
        blob[len(blob) // 2] ^= 0xFF
        open(p, "wb").write(bytes(blob))
        expect_error("corrupt gzip", ["train", "--data", corrupt, "--out", out],
                     ["train-images-idx3-ubyte.gz"], out=out)

        # Output folder: below a regular file, so that even root cannot write.
        afile = os.path.join(tmp, "afile")
        open(afile, "w").close()
        expect_error("unwritable out", ["train", "--data", good, "--out", afile + "/sub"],
                     ["--out", afile + "/sub"])
        expect_error("out is a file", ["train", "--data", good, "--out", afile], ["--out", afile])

        # Environment.
        expect_error("SIMDGAN_ISA", base, ["SIMDGAN_ISA", "bogus"], env={"SIMDGAN_ISA": "bogus"},
                     out=out)
        expect_error("SIMDGAN_FUSION", base, ["SIMDGAN_FUSION"], env={"SIMDGAN_FUSION": "2"}, out=out)

        # Help.
        for args in (["--help"], ["train", "--help"], ["info"]):
            rc, so, se = run(args)
            check(rc == 0 and so, f"{' '.join(args)}: exit {rc}, stdout {so[:80]!r}")
        rc, so, _ = run(["train", "--help"])
        for flag in ["--epochs", "--batch-size", "--lr", "--latent", "--hidden", "--seed",
                     "--threads", "--data", "--out", "--log-every", "--dataset"]:
            check(flag in so, f"train --help does not document {flag}")

        # A short run: 600 images, batch 100 -> 6 steps, a log line every 3.
        rc, so, se = run(["train", "--data", good, "--out", out, "--epochs", "2", "--log-every",
                          "3", "--hidden", "32", "--seed", "5"])
        check(rc == 0, f"short run failed: {se}")
        lines = so.splitlines()
        check(len(lines) == 4 and all(LOG_RE.match(l) for l in lines), f"log lines: {lines}")
        check(lines[0].startswith("Epoch [0/2], Step [3/6]") and
              lines[3].startswith("Epoch [1/2], Step [6/6]"), f"log lines: {lines}")
        check(listing(out) == [".simdgan.lock", "D.safetensors", "G.safetensors",
                               "checkpoint.safetensors", "metrics.csv",
                               "samples/fake_images-1.png", "samples/fake_images-2.png",
                               "samples/real_images.png"],
              f"outputs: {listing(out)}")

        # Determinism: the same bytes at 1, 2 and 3 threads.
        blobs = {}
        for nth in (1, 2, 3):
            o = os.path.join(tmp, f"t{nth}")
            rc, _, se = run(["train", "--data", good, "--out", o, "--epochs", "2", "--hidden",
                             "48", "--batch-size", "30", "--log-every", "0", "--seed", "9",
                             "--threads", str(nth)])
            check(rc == 0, f"--threads {nth}: {se}")
            blobs[nth] = [open(os.path.join(o, f), "rb").read()
                          for f in ("G.safetensors", "D.safetensors")]
        check(blobs[1] == blobs[2] == blobs[3], "checkpoints differ between 1, 2 and 3 threads")

        # Fused against unfused: the fused epilogues, sigmoid+BCE and Adam
        # compute what the separate passes do, operation for operation: the
        # same bits after 20 steps.
        params = {}
        for fusion in ("1", "0"):
            o = os.path.join(tmp, "fusion" + fusion)
            rc, _, se = run(["train", "--data", good, "--out", o, "--epochs", "1", "--hidden",
                             "48", "--batch-size", "30", "--log-every", "0", "--seed", "9"],
                            {"SIMDGAN_FUSION": fusion})
            check(rc == 0, f"SIMDGAN_FUSION={fusion}: {se}")
            params[fusion] = {}
            for f in ("G", "D"):
                header, _, blob = read_safetensors(os.path.join(o, f + ".safetensors"))
                params[fusion].update({f + k: v for k, v in arrays(header, blob).items()})
        worst = max(float(abs(params["1"][k] - params["0"][k]).max()) for k in params["1"])
        print(f"fused vs unfused after 20 steps: max parameter difference {worst:.3g}")
        check(worst == 0.0, f"fused and unfused differ by {worst}")

        # The real thing, one epoch of MNIST.
        data = os.environ.get("SIMDGAN_DATA")
        if data:
            o = os.path.join(tmp, "mnist")
            rc, so, se = run(["train", "--epochs", "1", "--out", o], {"SIMDGAN_DATA": data})
            check(rc == 0, f"MNIST epoch failed: {se}")
            lines = so.splitlines()
            check(len(lines) == 3 and all(LOG_RE.match(l) for l in lines) and
                  [l.split(",")[1] for l in lines] ==
                  [" Step [200/600]", " Step [400/600]", " Step [600/600]"],
                  f"MNIST log lines: {lines}")
            print("\n".join(lines))
            print(se.strip().splitlines()[-1])
            py = sys.executable
            for model in ("G", "D"):
                r = subprocess.run([py, os.path.join(TESTS, "check_safetensors.py"),
                                    os.path.join(o, model + ".safetensors"), "--model", model],
                                   capture_output=True, text=True)
                check(r.returncode == 0, f"{model}.safetensors: {r.stdout}{r.stderr}")
            for png in ("real_images.png", "fake_images-1.png"):
                check_sample(os.path.join(o, "samples", png))
        else:
            print("skip the MNIST epoch: SIMDGAN_DATA is not set")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("test_cli")


if __name__ == "__main__":
    sys.exit(main())
