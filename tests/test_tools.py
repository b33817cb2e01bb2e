#!/usr/bin/python3
"""test_tools.py: tools/plot-run and tools/compare-quality.

Usage: test_tools.py SIMDGAN [PROJECT_DIR]

- plot-run on a real short run (`simdgan train --epochs 3 --fixed-z` on a
  synthetic IDX set, a row every step) and on a metrics.csv written here
  with the evaluation columns every epoch: exit 0, a 1600x900 PNG that
  decodes, with the FCD curve's colour in the FCD panel only when the run
  evaluated; the fixed-z contact sheet holds every grid at its own size,
  each grid's pixels unchanged; steps per epoch are read off the rows; a
  row still being written (no newline) is left out.
- plot-run's bad input (no folder, no metrics.csv, an empty file, a wrong
  header, a field that is no number, a short row, half-empty evaluation
  columns, rows that disagree on the steps per epoch, a damaged grid):
  exit 2, one line naming the file, no PNG written.
- compare-quality: its safetensors writer's files pass
  tests/check_safetensors.py's reader and validation bit for bit, with
  their metadata, and simdgan sample loads such a G; its data order is
  DataLoader(shuffle=True)'s for the same seed, drawn on the global
  generator in the same order (z drawn between batches stay the same), and
  its pixel scaling is torchvision's ToTensor + Normalize (where
  torchvision imports); with every run already trained in its workdir and
  a stand-in simdgan answering eval --json, it trains nothing, writes
  quality.md and quality.json with the table, means, spreads and the
  verdict, and by default leaves simdgan-bf16 runs alone; with --frameworks
  simdgan,simdgan-bf16 it scores those two only and judges bf16's FCD and
  score against fp32's spread per seed and for the mean (the verdict
  itself also checked where every seed is inside), and a bf16 run trained
  afresh is asked for with --precision bf16, and an unfinished run whose
  .simdgan.lock is held (a live training) stops the tool, one line, the
  folder left alone; --help works; bad flags
  (--frameworks included: unknown, repeated, empty, bf16 without fp32)
  exit 2 with one line. No PyTorch training runs here.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import types

import numpy as np

try:
    import fcntl
except ImportError:   # Windows: compare-quality cannot see a live run's lock either
    fcntl = None

SIMDGAN = os.path.abspath(sys.argv[1])
PROJECT = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                          os.path.join(os.path.dirname(__file__), ".."))
TESTS = os.path.join(PROJECT, "tests")
PLOT_RUN = os.path.join(PROJECT, "tools", "plot-run")
COMPARE = os.path.join(PROJECT, "tools", "compare-quality")
sys.path.insert(0, TESTS)
from check_png import decode_png  # noqa: E402
from check_safetensors import arrays, read_safetensors, validate  # noqa: E402
from test_cli import write_idx  # noqa: E402
from checks import check, finish, load_tool  # noqa: E402

HEADER = ("epoch,step,global_step,d_loss,g_loss,d_x,d_g_z,ms_per_step,fcd,fcd_floor,"
          "classifier_score,classes_covered,kl_uniform,precision,recall")
FCD_BLUE = (31, 119, 180)   # matplotlib's first colour, the FCD curve's


def run(cmd, env_extra=None):
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr


def read_png(path):
    """(width, height, pixels [height, width, channels] uint8) via decode_png."""
    with open(path, "rb") as f:
        w, h, ch, rows = decode_png(f.read(), path)
    return w, h, np.frombuffer(b"".join(bytes(r) for r in rows), np.uint8).reshape(h, w, ch)


def panel_has(img, x0, x1, y0, y1, rgb, tol=8):
    """Whether any pixel in the box is within tol of rgb."""
    box = img[2][y0:y1, x0:x1, :3].astype(int)
    return bool((np.abs(box - np.array(rgb)).max(axis=2) <= tol).any())


def write_metrics(path, epochs=3, spe=600, every=200, evaluate=False, tail=""):
    """A metrics.csv as simdgan train writes it; evaluation at each epoch's end."""
    lines = [HEADER]
    for e in range(epochs):
        for s in range(every, spe + 1, every):
            g = e * spe + s
            row = "%d,%d,%d,%.6f,%.6f,%.6f,%.6f,%.4f" % (e, s, g, 1.3 - 0.1 * e, 0.7 + 0.3 * e,
                                                        0.6 + 0.1 * e, 0.4 - 0.1 * e, 4.0 + s / 1e3)
            if evaluate and s == spe:
                row += ",%.6f,%.6f,%.6f,%d,%.6f,%.6f,%.6f" % (40.0 / (e + 1), 0.5, 3 + e,
                                                             7 + e, 0.3, 0.5 + 0.1 * e, 0.2 * e)
            else:
                row += ",,,,,,,"
            lines.append(row)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n" + tail)


# ---- plot-run -------------------------------------------------------------------

def test_plot_real_run(tmp):
    data, out = os.path.join(tmp, "data"), os.path.join(tmp, "run")
    write_idx(data, 200)
    rc, _, se = run([SIMDGAN, "train", "--epochs", "3", "--fixed-z", "--data", data, "--out", out,
                     "--log-every", "1", "--threads", "1"])
    check(rc == 0, "simdgan train --fixed-z: exit %d (%s)" % (rc, se.strip()))
    if rc != 0:
        return
    rc, so, se = run([sys.executable, PLOT_RUN, out])
    check(rc == 0 and se == "", "plot-run on a real run: exit %d, stderr %r" % (rc, se))
    check("(2 steps per epoch)" in so, "plot-run: steps per epoch not 2: %r" % so)
    img = read_png(os.path.join(out, "run.png"))
    check(img[:2] == (1600, 900), "run.png is %dx%d, expected 1600x900" % img[:2])
    # No evaluation: nothing of the FCD curve's colour in the FCD panel
    # (bottom left), while the losses panel (top left) has it.
    check(not panel_has(img, 60, 520, 480, 860, FCD_BLUE),
          "run.png: the FCD panel has a curve without evaluation")
    check(panel_has(img, 60, 520, 40, 420, FCD_BLUE), "run.png: no d_loss curve")

    sheet = read_png(os.path.join(out, "fixed_z.png"))
    check(sheet[:2] == (3 * (242 + 16) + 16, 242 + 56 + 16),
          "fixed_z.png is %dx%d; expected three 242x242 grids side by side" % sheet[:2])
    # Each grid drawn at its own size, pixel for pixel (axes at x = 16 +
    # i * 258, y = 56 from the top).
    for i in range(3):
        grid = read_png(os.path.join(out, "samples", "fixed_z-%d.png" % (i + 1)))
        x0 = 16 + i * 258
        same = np.array_equal(sheet[2][56:56 + 242, x0:x0 + 242, :3], grid[2])
        check(same, "fixed_z.png: grid of epoch %d is not shown pixel for pixel" % (i + 1))
    check("epochs 1, 2, 3" in so, "plot-run did not name the epochs shown: %r" % so)
    try:
        import PIL  # noqa: F401
        with open(os.path.join(out, "fixed_z.gif"), "rb") as f:
            check(f.read(6) == b"GIF89a", "fixed_z.gif is not a GIF")
    except ImportError:
        check(not os.path.exists(os.path.join(out, "fixed_z.gif")), "a GIF without Pillow")

    # --out and --sheet elsewhere; --columns 2 picks the first and last.
    other = os.path.join(tmp, "elsewhere.png")
    rc, so, se = run([sys.executable, PLOT_RUN, out, "--out", other, "--sheet",
                      os.path.join(tmp, "sheet.png"), "--columns", "2"])
    check(rc == 0 and os.path.isfile(other), "plot-run --out: exit %d %r" % (rc, se))
    check("epochs 1, 3" in so, "--columns 2 did not pick the first and last epoch: %r" % so)


def test_plot_evaluated(tmp, mod):
    out = os.path.join(tmp, "evaluated")
    os.makedirs(out)
    write_metrics(os.path.join(out, "metrics.csv"), evaluate=True,
                  tail="3,200,2000,0.1,")   # a row being written
    rows, spe = mod.read_metrics(os.path.join(out, "metrics.csv"))
    check(spe == 600, "steps per epoch %d, expected 600" % spe)
    check(len(rows) == 9, "%d rows, expected 9 (the unfinished row left out)" % len(rows))
    check(sum(r["fcd"] is not None for r in rows) == 3, "expected 3 evaluated rows")
    check(rows[2]["classes_covered"] == 7 and rows[2]["fcd"] == 40.0, "row 3: %r" % rows[2])
    rc, so, se = run([sys.executable, PLOT_RUN, out])
    check(rc == 0 and se == "", "plot-run with evaluation: exit %d %r" % (rc, se))
    check("no contact sheet" in so, "plot-run without fixed_z grids: %r" % so)
    img = read_png(os.path.join(out, "run.png"))
    check(img[:2] == (1600, 900), "run.png is %dx%d" % img[:2])
    check(panel_has(img, 60, 520, 480, 860, FCD_BLUE), "run.png: no FCD curve with evaluation")
    picked = mod.pick(list(range(1, 21)), 8)
    check(len(picked) == 8 and picked[0] == 1 and picked[-1] == 20 and picked == sorted(picked),
          "pick(1..20, 8) = %r" % picked)


def expect_plot_error(tmp, name, content, needle, folder=True, grid=None):
    out = os.path.join(tmp, "bad-" + name)
    if folder:
        os.makedirs(os.path.join(out, "samples"))
    if content is not None:
        with open(os.path.join(out, "metrics.csv"), "w") as f:
            f.write(content)
    if grid is not None:
        with open(os.path.join(out, "samples", "fixed_z-1.png"), "wb") as f:
            f.write(grid)
    rc, so, se = run([sys.executable, PLOT_RUN, out])
    lines = [l for l in se.splitlines() if l.strip()]
    check(rc == 2, "plot-run %s: exit %d, expected 2 (%r)" % (name, rc, se))
    check(len(lines) == 1 and lines[0].startswith("plot-run: "),
          "plot-run %s: expected one line on stderr, got %r" % (name, lines))
    check(needle in se, "plot-run %s: %r does not mention %r" % (name, se.strip(), needle))
    if grid is None:
        check(not os.path.exists(os.path.join(out, "run.png")), "plot-run %s: wrote run.png" % name)


def test_plot_errors(tmp):
    good = "%s\n0,200,200,1,1,0.5,0.5,4,,,,,,,\n" % HEADER
    expect_plot_error(tmp, "nofolder", None, "no such folder", folder=False)
    expect_plot_error(tmp, "nometrics", None, "metrics.csv: no such file")
    expect_plot_error(tmp, "empty", "", "metrics.csv: empty")
    expect_plot_error(tmp, "header", "epoch,step,loss\n0,1,2\n", "header lacks")
    expect_plot_error(tmp, "nan-text", good + "0,400,400,abc,1,0.5,0.5,4,,,,,,,\n",
                      "line 3: d_loss is 'abc', not a number")
    expect_plot_error(tmp, "short", good + "0,400,400,1,1\n", "line 3 has 5 fields")
    expect_plot_error(tmp, "half-eval", good + "0,600,600,1,1,0.5,0.5,4,3.0,,,,,,\n",
                      "partly empty")
    expect_plot_error(tmp, "spe", good + "1,200,800,1,1,.5,.5,4,,,,,,,\n2,200,1000,1,1,.5,.5,4"
                      ",,,,,,,\n", "disagree on the steps per epoch")
    expect_plot_error(tmp, "onlyheader", HEADER + "\n", "no rows yet")
    expect_plot_error(tmp, "badgrid", good, "fixed_z-1.png: not a readable PNG",
                      grid=b"\x89PNG\r\n\x1a\nnot really")


# ---- compare-quality -------------------------------------------------------------

def test_safetensors_writer(tmp, cq):
    rng = np.random.default_rng(5)
    shapes = {"0.weight": [256, 64], "0.bias": [256], "2.weight": [256, 256], "2.bias": [256],
              "4.weight": [784, 256], "4.bias": [784]}
    want = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    want["0.bias"][:3] = [np.float32(-0.0), np.float32(1e-45), np.float32(3.4e38)]
    path = os.path.join(tmp, "G.safetensors")
    meta = {"format": "pt", "producer": "test", "epochs": 3, "dataset": "mnist"}
    cq.write_safetensors(path, want, meta)
    header, got_meta, data = read_safetensors(path)
    validate(path, header, data)
    got = arrays(header, data)
    check(list(header) == list(shapes), "key order %r" % list(header))
    check(all(got[k].shape == want[k].shape and got[k].tobytes() == want[k].tobytes()
              for k in shapes), "safetensors writer: tensors do not round-trip bit for bit")
    check(got_meta == {"format": "pt", "producer": "test", "epochs": "3", "dataset": "mnist"},
          "metadata %r" % got_meta)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
    check(n % 8 == 0, "header length %d not a multiple of 8" % n)
    check(not os.path.exists(path + ".tmp"), "writer left its temporary file")
    # An empty tensor and no metadata are valid too.
    cq.write_safetensors(os.path.join(tmp, "e.safetensors"), {"x": np.zeros((0, 3), np.float32)})
    h, m, d = read_safetensors(os.path.join(tmp, "e.safetensors"))
    validate("e", h, d)
    check(m == {} and h["x"]["shape"] == [0, 3] and d == b"", "empty tensor: %r %r" % (h, d))
    # simdgan's own G loader takes it.
    rc, _, se = run([SIMDGAN, "sample", "--g", path, "--out", os.path.join(tmp, "g.png"),
                     "--threads", "1"])
    check(rc == 0 and os.path.isfile(os.path.join(tmp, "g.png")),
          "simdgan sample on the writer's G: exit %d %r" % (rc, se))


def test_tutorial_data(cq):
    try:
        import torch
        from torch.utils.data import DataLoader, TensorDataset
    except ImportError:
        print("note: no PyTorch; data order not checked")
        return
    n, B = 250, 50

    def loader_run():
        torch.manual_seed(7)
        torch.randn(3)   # as model init would
        seen = []
        for _ in range(2):
            for (batch,) in DataLoader(TensorDataset(torch.arange(n)), batch_size=B, shuffle=True):
                seen.append((batch.tolist(), torch.randn(2).tolist()))
        return seen

    def tool_run():
        torch.manual_seed(7)
        torch.randn(3)
        seen = []
        for _ in range(2):
            perm = cq.epoch_order(n)
            for i in range(n // B):
                seen.append((perm[i * B:(i + 1) * B].tolist(), torch.randn(2).tolist()))
        return seen

    a, b = loader_run(), tool_run()
    check(a == b, "compare-quality's data order or z differ from DataLoader(shuffle=True)'s")
    px = np.random.default_rng(2).integers(0, 256, size=(6, 784), dtype=np.uint8)
    px[0, :3] = [0, 128, 255]
    x = cq.scale_images(px)
    check(x.dtype == torch.float32 and float(x[0, 0]) == -1.0 and float(x[0, 2]) == 1.0,
          "scale_images: %r" % x[0, :3])
    try:
        from PIL import Image
        from torchvision import transforms
    except ImportError:
        print("note: no torchvision; pixel scaling checked against the formula only")
        ref = torch.from_numpy(((px.astype(np.float32) / 255 - 0.5) / 0.5))
    else:
        t = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean=[0.5], std=[0.5])])
        ref = torch.stack([t(Image.fromarray(p.reshape(28, 28), mode="L")).reshape(784)
                           for p in px])
    check(torch.equal(x, ref), "scale_images differs from ToTensor + Normalize")


FAKE_SIMDGAN = r"""#!/usr/bin/python3
import json, os, sys
with open(os.environ["FAKE_LOG"], "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\n")
if sys.argv[1] == "--version":
    print("simdgan 0.0-fake"); sys.exit(0)
if sys.argv[1] != "eval":
    sys.exit(9)
g = sys.argv[sys.argv.index("--g") + 1]
fw = os.path.basename(os.path.dirname(g)).rsplit("-e", 1)[0]
seed = int(g.split("-s")[-1].split("/")[0])
fcd = {"pytorch": [10.0, 12.0, 14.0], "simdgan": [11.0, 13.5, 20.0],
       "simdgan-bf16": [12.0, 21.0, 15.0]}[fw][seed]
score = {"pytorch": [8.0, 8.5, 9.0], "simdgan": [9.2, 9.4, 9.6],
         "simdgan-bf16": [9.3, 9.5, 9.7]}[fw][seed]
print(json.dumps({"extractor": "fake-1234", "dataset": "mnist", "fcd_floor": 0.5,
                  "g": g, "n": 500, "seed": 0, "fcd": fcd, "score": score, "covered": 10,
                  "kl_uniform": 0.01, "precision": 0.7, "recall": 0.4}, indent=2))
"""


def fake_runs(tmp, cq, work, frameworks):
    """The stand-in simdgan, a tiny IDX set, and finished runs of frameworks
    over seeds 0-2 in work (as the tool leaves them); (fake, data)."""
    fake = os.path.join(tmp, "fake-simdgan")
    if not os.path.isfile(fake):
        with open(fake, "w") as f:
            f.write(FAKE_SIMDGAN)
        os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
    data = os.path.join(tmp, "cq-data")
    if not os.path.isdir(data):
        write_idx(data, 10)
    for fw in frameworks:
        for s in (0, 1, 2):
            d = os.path.join(work, "%s-e4-s%d" % (fw, s))
            os.makedirs(d)
            cq.write_safetensors(os.path.join(d, "G.safetensors"), {"x": np.zeros(2, np.float32)})
            with open(os.path.join(d, "done.json"), "w") as f:
                json.dump({"framework": fw, "seed": s, "wall_s": 100.0 + s}, f)
    return fake, data


def test_compare_flow(tmp, cq):
    work = os.path.join(tmp, "work")
    fake, data = fake_runs(tmp, cq, work, ("pytorch", "simdgan", "simdgan-bf16"))
    log = os.path.join(tmp, "fake.log")
    cmd = [sys.executable, COMPARE, "--epochs", "4", "--seeds", "0,1,2", "--data", data,
           "--simdgan", fake, "--workdir", work, "--threads", "1", "--eval-n", "500"]
    rc, so, se = run(cmd, {"FAKE_LOG": log})
    check(rc == 0, "compare-quality on trained runs: exit %d %r" % (rc, se))
    with open(log) as f:
        calls = f.read().splitlines()
    check(not any(c.startswith("train") for c in calls), "trained again: %r" % calls)
    check(sum(c.startswith("eval") for c in calls) == 6, "expected 6 evaluations: %r" % calls)
    check(not any("simdgan-bf16" in c for c in calls), "default frameworks ran bf16: %r" % calls)
    check(all("--json" in c and "-n 500" in c for c in calls if c.startswith("eval")),
          "eval flags: %r" % calls)
    md_path, js_path = os.path.join(work, "quality.md"), os.path.join(work, "quality.json")
    md = open(md_path).read() if os.path.isfile(md_path) else ""
    check(md and md in so, "quality.md missing or not printed")
    check(md.startswith("# Quality after 4 epochs: PyTorch ") and
          md.splitlines()[0].endswith(" against simdgan 0.0-fake"), "title: %r" % md[:120])
    check("simdgan-bf16" not in md, "default frameworks reported bf16:\n" + md)
    check("| simdgan | 2 | 20.000 | 9.600 | 10 | 0.700 | 0.400 | 102 |" in md,
          "no simdgan seed 2 row in:\n" + md)
    check("| pytorch | min-max | 10.000-14.000 | 8.000-9.000 |" in md, "no PyTorch spread row")
    check("FCD: simdgan's mean 14.833 (seeds 11.000-20.000) is OUTSIDE PyTorch's spread "
          "10.000-14.000; 2 of 3 simdgan seeds inside it." in md, "FCD verdict wrong:\n" + md)
    check("classifier score: simdgan's mean 9.400 (seeds 9.200-9.600) is OUTSIDE PyTorch's "
          "spread 8.000-9.000; 0 of 3 simdgan seeds inside it; the ranges do not overlap" in md,
          "score verdict wrong:\n" + md)
    js = json.load(open(js_path)) if os.path.isfile(js_path) else {}
    check(js.get("extractor") == "fake-1234" and len(js.get("runs", [])) == 6,
          "quality.json: %r" % js)
    check(js.get("summary", {}).get("pytorch", {}).get("fcd", {}).get("mean") == 12.0,
          "quality.json summary")
    check(js.get("frameworks") == ["pytorch", "simdgan"] and
          js.get("bf16_within_fp32_spread") == {}, "quality.json frameworks: %r" % js)
    # Cached: a second run evaluates nothing.
    os.remove(log)
    rc, so2, _ = run(cmd, {"FAKE_LOG": log})
    with open(log) as f:
        calls = f.read().splitlines()
    check(rc == 0 and not any(c.startswith("eval") for c in calls), "evaluated again: %r" % calls)
    # An incomplete run (no done.json) is trained afresh: the fake refuses,
    # so the tool stops with one line naming the run and its log.
    os.remove(os.path.join(work, "simdgan-e4-s1", "done.json"))
    rc, _, se = run(cmd, {"FAKE_LOG": log})
    check(rc == 2 and "simdgan seed 1: training failed" in se and len(se.splitlines()) == 1,
          "incomplete run: exit %d %r" % (rc, se))
    check(not os.path.exists(os.path.join(work, "simdgan-e4-s1", "G.safetensors")),
          "the incomplete run's folder was not cleared")
    # A run still training (its lock held, as simdgan train holds it) is left alone.
    if fcntl is None:
        print("note: no fcntl; the live-run check not tested")
        return
    live = os.path.join(work, "simdgan-e4-s1")
    with open(os.path.join(live, "metrics.csv"), "w") as f:
        f.write(HEADER + "\n")
    with open(os.path.join(live, ".simdgan.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        rc, _, se = run(cmd, {"FAKE_LOG": log})
    check(rc == 2 and "simdgan seed 1:" in se and ".simdgan.lock" in se
          and len(se.splitlines()) == 1 and os.path.isfile(os.path.join(live, "metrics.csv")),
          "a live run: exit %d %r" % (rc, se))


def test_compare_bf16(tmp, cq):
    work = os.path.join(tmp, "work-bf16")
    fake, data = fake_runs(tmp, cq, work, ("simdgan", "simdgan-bf16"))
    log = os.path.join(tmp, "fake-bf16.log")
    # Order in the list does not matter; PyTorch is neither trained nor scored.
    cmd = [sys.executable, COMPARE, "--epochs", "4", "--seeds", "0,1,2", "--data", data,
           "--simdgan", fake, "--workdir", work, "--threads", "1", "--eval-n", "500",
           "--frameworks", "simdgan-bf16, simdgan"]
    rc, so, se = run(cmd, {"FAKE_LOG": log})
    check(rc == 0, "compare-quality --frameworks simdgan-bf16,simdgan: exit %d %r" % (rc, se))
    with open(log) as f:
        calls = f.read().splitlines()
    evals = [c for c in calls if c.startswith("eval")]
    check(not any(c.startswith("train") for c in calls), "trained again: %r" % calls)
    check(len(evals) == 6 and sum("simdgan-bf16-e4-s" in c for c in evals) == 3,
          "expected 3 fp32 and 3 bf16 evaluations: %r" % calls)
    md_path = os.path.join(work, "quality.md")
    md = open(md_path).read() if os.path.isfile(md_path) else ""
    check(md.startswith("# Quality after 4 epochs: simdgan 0.0-fake (fp32 and bf16)\n"),
          "bf16 title: %r" % md[:120])
    check("| pytorch |" not in md and "PyTorch's spread" not in md,
          "PyTorch reported without running:\n" + md)
    check("| simdgan-bf16 | 1 | 21.000 | 9.500 | 10 | 0.700 | 0.400 | 101 |" in md,
          "no bf16 seed 1 row in:\n" + md)
    check("| simdgan-bf16 | min-max | 12.000-21.000 | 9.300-9.700 |" in md, "no bf16 spread row")
    check("- FCD: simdgan-bf16's mean 16.000 (seeds 12.000-21.000) is within simdgan fp32's "
          "spread 11.000-20.000; per seed: 0 12.000 within, 1 21.000 OUTSIDE, 2 15.000 within "
          "(2 of 3 inside)." in md, "bf16 FCD verdict wrong:\n" + md)
    check("- classifier score: simdgan-bf16's mean 9.500 (seeds 9.300-9.700) is within simdgan "
          "fp32's spread 9.200-9.600; per seed: 0 9.300 within, 1 9.500 within, 2 9.700 OUTSIDE "
          "(2 of 3 inside)." in md, "bf16 score verdict wrong:\n" + md)
    check("spread): NOT met." in md, "bf16 overall verdict wrong:\n" + md)
    js_path = os.path.join(work, "quality.json")
    js = json.load(open(js_path)) if os.path.isfile(js_path) else {}
    v = js.get("bf16_within_fp32_spread", {}).get("fcd", {})
    check(js.get("frameworks") == ["simdgan", "simdgan-bf16"] and len(js.get("runs", [])) == 6
          and v.get("fp32_min") == 11.0 and v.get("fp32_max") == 20.0
          and v.get("mean_within") is True and v.get("seeds_within") == 2
          and [p["within"] for p in v.get("per_seed", [])] == [True, False, True]
          and js.get("within_pytorch_spread") == {}, "quality.json bf16 verdict: %r" % js)
    # The verdict where every seed and the mean are inside, and one outside.
    runs = [{"framework": fw, "seed": s, "fcd": f, "score": 9.0}
            for fw, vals in (("simdgan", (10.0, 12.0, 14.0)), ("simdgan-bf16", (10.0, 13.0, 14.0)))
            for s, f in enumerate(vals)]
    summary = cq.summarize(runs)
    got = cq.bf16_verdict(runs, summary)
    check(got["fcd"]["mean_within"] and got["fcd"]["seeds_within"] == 3 and
          got["score"]["seeds_within"] == 3, "bf16 verdict, all inside: %r" % got)
    a = types.SimpleNamespace(epochs=20, eval_n=500, eval_seed=0, threads=1,
                              frameworks=["simdgan", "simdgan-bf16"])
    text = cq.markdown(a, runs, summary, {}, got, "x", 0.5, None, "simdgan 1")
    check("spread): met." in text, "bf16 verdict met:\n" + text)
    runs[-1]["fcd"] = 9.5   # below fp32's best: better, yet outside the spread
    got = cq.bf16_verdict(runs, cq.summarize(runs))
    check(got["fcd"]["seeds_within"] == 2 and got["fcd"]["mean_within"] and
          not got["fcd"]["per_seed"][2]["within"], "bf16 verdict, one below: %r" % got)
    # A bf16 run trained afresh is asked for with --precision bf16 (the fake
    # refuses to train: one line naming the run).
    os.remove(os.path.join(work, "simdgan-bf16-e4-s2", "done.json"))
    os.remove(log)
    rc, _, se = run(cmd, {"FAKE_LOG": log})
    with open(log) as f:
        trains = [c for c in f.read().splitlines() if c.startswith("train")]
    check(len(trains) == 1 and trains[0].endswith("--precision bf16") and "--seed 2" in trains[0]
          and "simdgan-bf16-e4-s2" in trains[0], "bf16 training command: %r" % trains)
    check(rc == 2 and "simdgan-bf16 seed 2: training failed" in se and len(se.splitlines()) == 1,
          "incomplete bf16 run: exit %d %r" % (rc, se))


def test_compare_cli(tmp):
    rc, so, se = run([sys.executable, COMPARE, "--help"])
    check(rc == 0 and all(w in so for w in ("--epochs", "--seeds", "--workdir", "--threads",
                                            "--simdgan", "quality.md", "--frameworks",
                                            "simdgan-bf16", "--precision bf16")),
          "compare-quality --help: exit %d %r" % (rc, so[:200]))
    rc, so, _ = run([sys.executable, PLOT_RUN, "--help"])
    check(rc == 0 and "metrics.csv" in so, "plot-run --help: exit %d" % rc)
    for name, args, needle in [("seeds", ["--seeds", "0,x"], "--seeds"),
                               ("dup-seeds", ["--seeds", "1,1"], "--seeds"),
                               ("epochs", ["--epochs", "0"], "--epochs"),
                               ("fw-unknown", ["--frameworks", "pytorch,tensorflow"],
                                "--frameworks"),
                               ("fw-dup", ["--frameworks", "simdgan,simdgan"], "--frameworks"),
                               ("fw-empty", ["--frameworks", ""], "--frameworks"),
                               ("fw-trailing", ["--frameworks", "simdgan,"], "--frameworks"),
                               ("fw-bf16-alone", ["--frameworks", "pytorch,simdgan-bf16"],
                                "expected simdgan beside it"),
                               ("simdgan", ["--simdgan", os.path.join(tmp, "none")], "--simdgan"),
                               ("data", ["--simdgan", SIMDGAN, "--data", tmp], "train-images")]:
        rc, so, se = run([sys.executable, COMPARE, "--workdir", os.path.join(tmp, "w-" + name)]
                         + args)
        lines = [l for l in se.splitlines() if l.strip()]
        check(rc == 2 and len(lines) == 1 and needle in se,
              "compare-quality %s: exit %d, stderr %r" % (name, rc, se))
        check(not os.path.exists(os.path.join(tmp, "w-" + name)),
              "compare-quality %s: created its workdir" % name)


def main():
    tmp = tempfile.mkdtemp(prefix="simdgan-tools-")
    try:
        plot = load_tool(PLOT_RUN, "plot_run")
        cq = load_tool(COMPARE, "compare_quality")
        test_plot_real_run(tmp)
        test_plot_evaluated(tmp, plot)
        test_plot_errors(tmp)
        test_safetensors_writer(tmp, cq)
        test_tutorial_data(cq)
        test_compare_flow(tmp, cq)
        test_compare_bf16(tmp, cq)
        test_compare_cli(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return finish("test_tools")


if __name__ == "__main__":
    sys.exit(main())
