#!/usr/bin/python3
"""test_eval.py: `simdgan sample` and `simdgan eval`, and the evaluation's
figures against numpy and scipy.

Usage: test_eval.py SIMDGAN EVAL_OUT TESTS_DIR [--data]

- EVAL_OUT (written by test_eval): for every case in cases.json, the FCD
  that simdgan computed from the features <name>_a.f32 and <name>_b.f32 must
  match numpy/scipy on the same features to 1e-6 relative, both the
  symmetric-eigendecomposition recipe (scipy.linalg.eigh) and, where both
  covariances are well conditioned, pytorch-fid's sqrtm(S1 S2) recipe
  (scipy.linalg.sqrtm); precision and recall (k-NN balls, k = 3) must match
  a brute-force numpy computation up to the rows within rounding of a
  ball's edge.
- sample: the grid has torchvision's size and tile order for --nrow (each
  tile is the matching --each image; where torchvision imports, make_grid
  of the --each images with the same nrow gives the grid pixel for pixel);
  the first images of a larger -n are a smaller -n's; the same command
  gives the same bytes; --interpolate's rows start and end at the seeds'
  images; a G saved from PyTorch with the tutorial's keys (any key order, no
  metadata) loads.
- Bad input to sample and eval (no G, a D, garbage, a missing file, values
  out of range, conflicting flags): exit 2, one line naming the flag or
  file, nothing written.
- With --data and $SIMDGAN_DATA (the shipped classifier from $SIMDGAN_MODELS): eval
  --real reports a small positive floor and a test-set score above 9.5; a G
  trained for 20 epochs has a far lower FCD, a higher score and precision
  than a G whose output is noise; the JSON carries every figure and the
  extractor, the table the extractor beside the figures.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import scipy.linalg

SIMDGAN = os.path.abspath(sys.argv[1])
EVAL_OUT = os.path.abspath(sys.argv[2])
TESTS = os.path.abspath(sys.argv[3])
DATA = "--data" in sys.argv[4:]
sys.path.insert(0, TESTS)
from check_png import decode_png  # noqa: E402
from checks import check, finish  # noqa: E402

# Epochs of the G that must beat the noise G. The tutorial's G (seed 0)
# draws one speckled blob for its first ten epochs or so (mode collapse: FCD
# 800-950 with the MNIST classifier, worse than noise's ~780) and digit-like
# shapes of every class by epoch 20 (FCD ~400, score ~3.9).
TRAINED_EPOCHS = 20




def run(args, cwd=None, data=False):
    env = dict(os.environ)
    if not data:
        env.pop("SIMDGAN_DATA", None)
    p = subprocess.run([SIMDGAN] + args, capture_output=True, text=True, env=env, cwd=cwd,
                       timeout=900)
    return p.returncode, p.stdout, p.stderr


# ---- the figures against numpy and scipy ----------------------------------

def fcd_eigh(mu1, s1, mu2, s2):
    """The recipe simdgan implements, in numpy/scipy."""
    w, v = scipy.linalg.eigh(s1)
    s1h = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = s1h @ s2 @ s1h
    ev = scipy.linalg.eigvalsh((m + m.T) / 2)
    d = mu1 - mu2
    return d @ d + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum()


def fcd_sqrtm(mu1, s1, mu2, s2):
    """pytorch-fid's calculate_frechet_distance."""
    covmean, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
    covmean = covmean.real
    d = mu1 - mu2
    return d @ d + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def sq_dists(a, b):
    """[len(a), len(b)] squared distances in float64, exact formula."""
    out = np.empty((len(a), len(b)))
    for i in range(0, len(a), 256):
        out[i:i + 256] = ((a[i:i + 256, None, :] - b[None, :, :]) ** 2).sum(-1)
    return out


def knn_radii(f, k):
    d = sq_dists(f, f)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def coverage(a, b, radii_b):
    """(rows of a inside some ball of b, rows within rounding of an edge)."""
    d = sq_dists(a, b)
    inside = (d <= radii_b[None, :]).any(1)
    near = (np.abs(d - radii_b[None, :]) <= 1e-4 * radii_b[None, :]).any(1)
    return int(inside.sum()), int(near.sum())


def check_fixtures():
    with open(os.path.join(EVAL_OUT, "cases.json")) as f:
        cases = json.load(f)
    check(len(cases) >= 4, "cases.json holds %d cases" % len(cases))
    for c in cases:
        H, name = c["H"], c["name"]
        a = np.fromfile(os.path.join(EVAL_OUT, c["a"]), "<f4").reshape(c["n_a"], H)
        b = np.fromfile(os.path.join(EVAL_OUT, c["b"]), "<f4").reshape(c["n_b"], H)
        a, b = a.astype(np.float64), b.astype(np.float64)
        mu1, mu2 = a.mean(0), b.mean(0)
        s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
        ref = fcd_eigh(mu1, s1, mu2, s2)
        check(abs(c["fcd"] - ref) <= 1e-6 * abs(ref),
              "%s: FCD %.12g, scipy eigh %.12g" % (name, c["fcd"], ref))
        w1, w2 = np.linalg.eigvalsh(s1), np.linalg.eigvalsh(s2)
        conditioned = w1.min() > 1e-8 * w1.max() and w2.min() > 1e-8 * w2.max()
        if conditioned:
            ref2 = fcd_sqrtm(mu1, s1, mu2, s2)
            check(abs(c["fcd"] - ref2) <= 1e-6 * abs(ref2),
                  "%s: FCD %.12g, scipy sqrtm %.12g" % (name, c["fcd"], ref2))
        k = c["k"]
        ra, rb = knn_radii(a, k), knn_radii(b, k)
        inside, near = coverage(a, b, rb)
        check(abs(c["precision"] * len(a) - inside) <= near + 1e-9,
              "%s: precision %.6f, numpy %d of %d (%d ambiguous)" % (name, c["precision"], inside,
                                                                    len(a), near))
        inside, near = coverage(b, a, ra)
        check(abs(c["recall"] * len(b) - inside) <= near + 1e-9,
              "%s: recall %.6f, numpy %d of %d (%d ambiguous)" % (name, c["recall"], inside,
                                                                 len(b), near))
        print("case %-16s FCD %.10g (eigh %.10g%s), precision %.4f, recall %.4f"
              % (name, c["fcd"], ref, ", sqrtm %.10g" % ref2 if conditioned else "",
                 c["precision"], c["recall"]))


# ---- G files ---------------------------------------------------------------

def write_safetensors(path, tensors, meta=None):
    """tensors: list of (name, array) in file order."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [off, off + arr.nbytes]}
        blobs.append(arr.tobytes())
        off += arr.nbytes
    if meta is not None:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def pytorch_g(latent, hidden):
    """The tutorial's G as PyTorch saves it: (key, array) in state_dict order."""
    try:
        import torch
        import torch.nn as nn
        torch.manual_seed(0)
        g = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                          nn.ReLU(), nn.Linear(hidden, 784), nn.Tanh())
        return [(k, v.detach().numpy()) for k, v in g.state_dict().items()], True
    except ImportError:
        rng = np.random.default_rng(0)
        shapes = [("0.weight", (hidden, latent)), ("0.bias", (hidden,)),
                  ("2.weight", (hidden, hidden)), ("2.bias", (hidden,)),
                  ("4.weight", (784, hidden)), ("4.bias", (784,))]
        return [(k, rng.uniform(-0.2, 0.2, s)) for k, s in shapes], False


def noise_g(path, latent=64, hidden=256):
    """A G whose output is noise: random weights, the last layer scaled so
    that the tanh's input is about unit Gaussian, i.e. grey images of
    independent pixel noise."""
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((hidden, latent))
    w2 = rng.standard_normal((hidden, hidden)) / 16
    h = np.maximum(np.maximum(rng.standard_normal((1000, latent)) @ w1.T, 0) @ w2.T, 0)
    w4 = rng.standard_normal((784, hidden)) / np.sqrt((h ** 2).sum(1).mean())
    write_safetensors(path, [("0.weight", w1), ("0.bias", np.zeros(hidden)), ("2.weight", w2),
                             ("2.bias", np.zeros(hidden)), ("4.weight", w4),
                             ("4.bias", np.zeros(784))], {"dataset": "mnist"})


def read_png(path):
    with open(path, "rb") as f:
        w, h, ch, rows = decode_png(f.read(), path)
    return np.array([list(r) for r in rows], dtype=np.uint8).reshape(h, w, ch)


# ---- sample ----------------------------------------------------------------

def check_sample(tmp):
    tensors, from_torch = pytorch_g(16, 32)
    g = os.path.join(tmp, "G.safetensors")
    write_safetensors(g, tensors)
    g_sorted = os.path.join(tmp, "G_sorted.safetensors")   # the safetensors package's order
    write_safetensors(g_sorted, sorted(tensors), {"format": "pt"})
    print("G from %s" % ("torch.nn.Sequential" if from_torch else "numpy (no torch)"))

    rc, so, se = run(["sample", "--g", g, "-n", "20", "--nrow", "6", "--seed", "5", "--out",
                      "grid.png", "--each", "each"], cwd=tmp)
    check(rc == 0, "sample -n 20 --nrow 6: rc %d, %s" % (rc, se.strip()))
    if rc != 0:
        return
    grid = read_png(os.path.join(tmp, "grid.png"))
    check(grid.shape == (4 * 30 + 2, 6 * 30 + 2, 3),
          "grid of 20 with nrow 6 is %r; expected (122, 182, 3)" % (grid.shape,))
    each = [read_png(os.path.join(tmp, "each", "%05d.png" % k)) for k in range(20)]
    check(all(e.shape == (28, 28, 3) for e in each), "--each images are not 28x28 RGB")
    check(not os.path.exists(os.path.join(tmp, "each", "00020.png")), "--each wrote a 21st image")
    mask = np.ones(grid.shape[:2], bool)
    for k, e in enumerate(each):
        x0, y0 = (k % 6) * 30 + 2, (k // 6) * 30 + 2
        check((grid[y0:y0 + 28, x0:x0 + 28] == e).all(), "tile %d differs from each/%05d.png"
              % (k, k))
        mask[y0:y0 + 28, x0:x0 + 28] = False
    check((grid[mask] == 0).all(), "padding and empty cells are not black")
    check((grid[..., 0] == grid[..., 1]).all() and (grid[..., 0] == grid[..., 2]).all(),
          "grid channels differ")
    check(len({e.tobytes() for e in each}) == 20, "the 20 images are not all different")
    try:
        import torch
        from torchvision.utils import make_grid
        t = torch.tensor(np.stack([e[..., 0] for e in each]), dtype=torch.float32)[:, None] / 255
        tv = make_grid(t, nrow=6, padding=2, pad_value=0)
        tv = tv.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to(torch.uint8).numpy()
        check(tv.shape == grid.shape and (tv == grid).all(),
              "torchvision's make_grid(nrow=6) of the --each images differs from the grid")
    except ImportError:
        print("torchvision not found: grid checked against the layout only")

    # Prefix, reproducibility, defaults, a lone image, the sorted-key file.
    rc, so, se = run(["sample", "--g", g, "-n", "1", "--seed", "5", "--out", "one.png"], cwd=tmp)
    one = read_png(os.path.join(tmp, "one.png")) if rc == 0 else None
    check(rc == 0 and one.shape == (28, 28, 3) and (one == each[0]).all(),
          "sample -n 1 --seed 5 is not the first image of -n 20 --seed 5 (rc %d %s)" % (rc, se))
    rc, so, se = run(["sample", "--g", g_sorted, "-n", "20", "--nrow", "6", "--seed", "5",
                      "--out", "again.png"], cwd=tmp)
    check(rc == 0 and open(os.path.join(tmp, "again.png"), "rb").read()
          == open(os.path.join(tmp, "grid.png"), "rb").read(),
          "the same G with sorted keys and the same seed gave other bytes (rc %d %s)" % (rc, se))
    rc, so, se = run(["sample", "--g", g], cwd=tmp)
    check(rc == 0 and read_png(os.path.join(tmp, "grid.png")).shape == (242, 242, 3),
          "sample's default: 64 images in a 242x242 grid.png (rc %d %s)" % (rc, se))
    rc, so, se = run(["sample", "--g", g, "--seed", "6", "-n", "20", "--nrow", "6", "--out",
                      "other.png"], cwd=tmp)
    check(rc == 0 and (read_png(os.path.join(tmp, "other.png")) != grid).any(),
          "another seed gave the same grid")

    # The latent walk: rows start and end at the seeds' first images.
    rc, so, se = run(["sample", "--g", g, "--interpolate", "3,4,5", "--steps", "4", "--out",
                      "walk.png", "--each", "walk"], cwd=tmp)
    check(rc == 0, "--interpolate 3,4,5 --steps 4: rc %d %s" % (rc, se))
    if rc == 0:
        walk = read_png(os.path.join(tmp, "walk.png"))
        check(walk.shape == (2 * 30 + 2, 4 * 30 + 2, 3), "walk grid is %r; expected (62, 122, 3)"
              % (walk.shape,))
        tiles = [read_png(os.path.join(tmp, "walk", "%05d.png" % k)) for k in range(8)]
        ends = {}
        for s in (3, 4, 5):
            rc, so, se = run(["sample", "--g", g, "-n", "1", "--seed", str(s), "--out",
                              "s%d.png" % s], cwd=tmp)
            ends[s] = read_png(os.path.join(tmp, "s%d.png" % s))
        check((tiles[0] == ends[3]).all() and (tiles[3] == ends[4]).all()
              and (tiles[4] == ends[4]).all() and (tiles[7] == ends[5]).all(),
              "the walk's rows do not start and end at the seeds' images")
        check((tiles[1] != tiles[0]).any() and (tiles[1] != tiles[3]).any(),
              "the walk's inner image equals an end")


def one_line_error(rc, so, se, needle, what):
    lines = se.strip().splitlines()
    check(rc == 2 and so == "" and len(lines) == 1 and lines[0].startswith("simdgan: ")
          and needle in lines[0],
          "%s: rc %d, stdout %r, stderr %r; expected exit 2 and one line with %r"
          % (what, rc, so[:200], se[:300], needle))


def check_bad_input(tmp):
    bad = os.path.join(tmp, "bad")
    os.mkdir(bad)
    tensors, _ = pytorch_g(16, 32)
    g = os.path.join(bad, "G.safetensors")
    write_safetensors(g, tensors)
    d = os.path.join(bad, "D.safetensors")
    rng = np.random.default_rng(2)
    write_safetensors(d, [("0.weight", rng.standard_normal((32, 784))), ("0.bias", np.zeros(32)),
                          ("2.weight", rng.standard_normal((32, 32))), ("2.bias", np.zeros(32)),
                          ("4.weight", rng.standard_normal((1, 32))), ("4.bias", np.zeros(1))])
    garbage = os.path.join(bad, "garbage.safetensors")
    with open(garbage, "wb") as f:
        f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    bogus = os.path.join(bad, "bogus_meta.safetensors")
    write_safetensors(bogus, tensors, {"dataset": "cifar10"})
    missing = os.path.join(bad, "missing.safetensors")
    cases = [
        (["sample"], "--g", "sample without --g"),
        (["sample", "--g", missing], missing, "a missing G"),
        (["sample", "--g", d], "expected a G", "a D given as G"),
        (["sample", "--g", garbage], garbage, "a garbage file"),
        (["sample", "--g", g, "-n", "0"], "-n 0", "-n 0"),
        (["sample", "--g", g, "-n", "70000"], "-n 70000", "-n 70000"),
        (["sample", "--g", g, "-n", "x"], "-n x", "-n x"),
        (["sample", "--g", g, "--nrow", "0"], "--nrow 0", "--nrow 0"),
        (["sample", "--g", g, "--seed", "-1"], "--seed -1", "--seed -1"),
        (["sample", "--g", g, "--steps", "4"], "--steps", "--steps without --interpolate"),
        (["sample", "--g", g, "--interpolate", "1"], "--interpolate 1", "one seed"),
        (["sample", "--g", g, "--interpolate", "1,x"], "--interpolate 1,x", "a bad seed"),
        (["sample", "--g", g, "--interpolate", "1,2", "-n", "4"], "-n", "-n with --interpolate"),
        (["sample", "--g", g, "--interpolate", "1,2", "--steps", "1"], "--steps 1", "--steps 1"),
        (["sample", "--g", g, "--bogus"], "--bogus", "an unknown flag"),
        (["sample", "--g", g, "--out", os.path.join(bad, "no", "such", "grid.png")], "grid.png",
         "an unwritable --out"),
        (["sample", "--g"], "--g", "--g without a value"),
        (["eval"], "--real", "eval without --g"),
        (["eval", "--real", "--g", g], "--real", "--real with --g"),
        (["eval", "--g", d], "expected a G", "eval of a D"),
        (["eval", "--g", g, "--dataset", "cifar10"], "--dataset cifar10", "an unknown dataset"),
        (["eval", "--g", bogus], "cifar10", "a G whose metadata names another dataset"),
        (["eval", "--g", g, "-n", "1"], "-n 1", "eval -n 1"),
        (["eval", "--g", g, "--data", os.path.join(bad, "nodata")], "nodata", "a missing --data"),
        (["eval", "--real", "--json=1"], "--json", "a value for a switch"),
    ]
    for args, needle, what in cases:
        rc, so, se = run(args, cwd=bad)
        one_line_error(rc, so, se, needle, what)
    left = sorted(set(os.listdir(bad)) - {"G.safetensors", "D.safetensors", "garbage.safetensors",
                                          "bogus_meta.safetensors"})
    check(left == [], "bad input left files behind: %r" % left)
    for cmd in ("sample", "eval"):
        rc, so, se = run([cmd, "--help"])
        check(rc == 0 and so.startswith("usage: simdgan %s" % cmd), "%s --help" % cmd)
    rc, so, se = run(["--help"])
    check(rc == 0 and "  sample" in so and "  eval" in so and "  classifier" in so,
          "simdgan --help does not list sample, eval and classifier")


# ---- eval on MNIST -----------------------------------------------------------

def eval_json(args, cwd):
    rc, so, se = run(["eval", "--json"] + args, cwd=cwd, data=True)
    check(rc == 0, "eval %s: rc %d %s" % (" ".join(args), rc, se.strip()))
    if rc != 0:
        return None
    try:
        return json.loads(so)
    except ValueError:
        check(False, "eval --json printed no JSON: %r" % so[:300])
        return None


def check_eval(tmp):
    if not DATA or not os.environ.get("SIMDGAN_DATA"):
        print("skip eval on MNIST: %s" % ("SIMDGAN_DATA is not set" if DATA else "no --data"))
        return
    real = eval_json(["--real"], tmp)
    if real is None:
        return
    print("extractor %s: floor (train vs test) %.4f, test-set score %.4f"
          % (real["extractor"], real["fcd_floor"], real["score_test"]))
    check("crc32" in real["extractor"], "extractor %r names no checksum" % real["extractor"])
    check(real["n_train"] == 60000 and real["n_test"] == 10000, "MNIST sizes %r" % real)
    check(0 < real["fcd_floor"] < 5, "floor %r: expected small and positive" % real["fcd_floor"])
    check(real["score_test"] > 9.5, "test-set score %r; expected above 9.5" % real["score_test"])

    out = os.path.join(tmp, "trained")
    rc, so, se = run(["train", "--epochs", str(TRAINED_EPOCHS), "--log-every", "0", "--out", out],
                     cwd=tmp, data=True)
    check(rc == 0, "train --epochs %d: rc %d %s" % (TRAINED_EPOCHS, rc, se.strip()))
    noise = os.path.join(tmp, "noise.safetensors")
    noise_g(noise)
    trained = eval_json(["--g", os.path.join(out, "G.safetensors")], tmp) if rc == 0 else None
    bad = eval_json(["--g", noise], tmp)
    if trained is None or bad is None:
        return
    for name, r in (("trained", trained), ("noise", bad)):
        print("%-7s G: FCD %.4f, score %.4f, covered %d, KL %.4f, precision %.4f, recall %.4f"
              % (name, r["fcd"], r["score"], r["covered"], r["kl_uniform"], r["precision"],
                 r["recall"]))
        keys = {"extractor", "dataset", "n", "seed", "fcd", "fcd_floor", "score", "score_test",
                "hist", "covered", "kl_uniform", "precision", "recall", "k"}
        check(keys <= set(r), "%s: JSON lacks %r" % (name, keys - set(r)))
        check(r["extractor"] == real["extractor"] and r["dataset"] == "mnist",
              "%s: extractor %r dataset %r" % (name, r["extractor"], r["dataset"]))
        check(r["fcd_floor"] == real["fcd_floor"], "%s: the floor changed" % name)
        check(r["n"] == 10000 and sum(r["hist"]) == 10000 and len(r["hist"]) == 10,
              "%s: n %r, hist %r" % (name, r["n"], r["hist"]))
        check(1 <= r["score"] <= 10 and 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1,
              "%s: figures out of range" % name)
    check(bad["fcd"] > 1.5 * trained["fcd"], "noise G's FCD %.4f is not far above the trained "
          "G's %.4f" % (bad["fcd"], trained["fcd"]))
    check(trained["fcd"] > real["fcd_floor"], "a %d-epoch G's FCD %.4f is below the floor %.4f"
          % (TRAINED_EPOCHS, trained["fcd"], real["fcd_floor"]))
    check(trained["score"] > bad["score"] + 1, "trained G's score %.4f, noise G's %.4f"
          % (trained["score"], bad["score"]))
    check(trained["precision"] > bad["precision"], "trained G's precision %.4f, noise G's %.4f"
          % (trained["precision"], bad["precision"]))
    # The table: the extractor with the figures.
    rc, so, se = run(["eval", "--g", noise, "-n", "500"], cwd=tmp, data=True)
    check(rc == 0 and "extractor: " + real["extractor"] in so and "FCD" in so
          and "precision" in so, "eval's table: rc %d %r %s" % (rc, so[:500], se))


def main():
    check_fixtures()
    with tempfile.TemporaryDirectory(prefix="simdgan_test_eval_") as tmp:
        check_sample(tmp)
        check_bad_input(tmp)
        check_eval(tmp)
    return finish("test_eval.py")


if __name__ == "__main__":
    sys.exit(main())
