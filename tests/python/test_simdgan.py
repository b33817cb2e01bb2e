"""test_simdgan.py: the Python module (python/simdgan) as installed, with pytest.

ctest runs it with PYTHONPATH at the module installed into a scratch prefix
(test_package.py install) and these variables:
  SIMDGAN_TEST_PREFIX   that prefix
  SIMDGAN_TEST_LIBRARY  the installed libsimdgan.so.N
  SIMDGAN_TEST_SOURCE   the source tree (python/ for the pip test)

- The module and its library come from the prefix: _install.py's relative
  paths, with neither SIMDGAN_LIBRARY nor SIMDGAN_MODELS set; the struct
  mirrors simdgan_config (its size, and simdgan train's defaults read back).
- Trainer trains an epoch on synthetic data with a log callback; sample()
  is float32 [n, 28, 28] in [-1, 1], the same for a seed, different across
  seeds, a smaller n the head of a larger one; save() writes G and D, which
  Generator reads back to the same images; an evaluation finds the
  installed classifiers; resume continues, a disagreeing flag is refused;
  the callback stops a run, and its exceptions come back out of fit.
- Bad input: unknown flags (TypeError), bad values, a missing data folder,
  a locked output folder (simdgan.Error, status 2, one line).
- load() reads safetensors by hand (dtypes, metadata) and refuses damaged
  files naming them; with torch, to_torch() loads G and D into the
  tutorial's nn.Sequential modules and the checkpoint's tensors match.
- `pip install --no-build-isolation --no-index ./python` into a venv works
  offline; that module finds the library through SIMDGAN_LIBRARY or the
  dynamic linker's path.
"""
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

for var in ("SIMDGAN_LIBRARY", "SIMDGAN_MODELS", "SIMDGAN_DATA", "SIMDGAN_ISA"):
    os.environ.pop(var, None)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import simdgan  # noqa: E402
from idx_data import write_dataset  # noqa: E402

PREFIX = os.environ["SIMDGAN_TEST_PREFIX"]
LIBRARY = os.environ["SIMDGAN_TEST_LIBRARY"]
SOURCE = os.environ["SIMDGAN_TEST_SOURCE"]
G_SHAPES = {"0.weight": (256, 64), "0.bias": (256,), "2.weight": (256, 256), "2.bias": (256,),
            "4.weight": (784, 256), "4.bias": (784,)}
D_SHAPES = {"0.weight": (256, 784), "0.bias": (256,), "2.weight": (256, 256), "2.bias": (256,),
            "4.weight": (1, 256), "4.bias": (1,)}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    """One trained epoch (2 steps of 100), its log and its saved pair."""
    out = str(tmp_path_factory.mktemp("run"))
    lines = []
    t = simdgan.Trainer(data=data, out=out, threads=1, log_every=1, seed=7, epochs=3)
    status = t.fit(1, on_log=lines.append)
    saved = os.path.join(out, "saved")
    t.save(saved)
    yield {"trainer": t, "status": status, "lines": lines, "out": out, "saved": saved}
    t.close()


def test_installed_module_and_library():
    assert os.path.realpath(simdgan.__file__).startswith(os.path.realpath(PREFIX))
    lib = simdgan._native.library()
    assert os.path.realpath(lib._name) == os.path.realpath(LIBRARY)
    with open(os.path.join(SOURCE, "python", "pyproject.toml"), encoding="utf-8") as f:
        assert 'version = "%s"' % simdgan.version() in f.read()
    assert lib.simdgan_api_version() == simdgan._native.API_VERSION
    assert simdgan.isa() in ("avx512", "avx2", "neon", "ref")
    # The classifiers of this install, for the library inside python3.
    assert os.path.realpath(os.environ["SIMDGAN_MODELS"]) == \
        os.path.realpath(os.path.join(PREFIX, "share", "simdgan", "models"))


def test_defaults_read_back_through_the_struct():
    d = simdgan.defaults()
    assert d == {"epochs": 200, "batch_size": 100, "lr": 0.0002, "latent": 64, "hidden": 256,
                 "seed": 0, "threads": 0, "data": None, "dataset": "mnist", "out": ".",
                 "log_every": 200, "isa": None, "precision": "fp32", "checkpoint_every": -1, "resume": 0,
                 "max_steps": 0, "eval_every": 0, "eval_n": 10000, "fixed_z": 0, "bind": "auto",
                 "quiet": 0, "handle_signals": 0}


def test_fit_logs_every_step(run):
    assert run["status"] == simdgan.OK
    lines = run["lines"]
    assert [(l.epoch, l.epochs, l.step, l.steps) for l in lines] == [(0, 3, 1, 2), (0, 3, 2, 2)]
    for l in lines:
        assert np.isfinite([l.d_loss, l.g_loss, l.ms_per_step]).all()
        assert 0 < l.d_x < 1 and 0 < l.d_g_z < 1 and l.d_loss > 0 and l.g_loss > 0
    t = run["trainer"]
    assert t.step == 2 and t.steps_per_epoch == 2
    assert os.path.isfile(os.path.join(run["out"], "checkpoint.safetensors"))
    assert os.path.isfile(os.path.join(run["out"], "samples", "fake_images-1.png"))


def test_sample(run):
    t = run["trainer"]
    x = t.sample(16, seed=3)
    assert x.shape == (16, 28, 28) and x.dtype == np.float32
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0
    assert np.array_equal(x, t.sample(16, seed=3))
    assert np.array_equal(x[:4], t.sample(4, seed=3))
    assert not np.array_equal(x, t.sample(16, seed=4))
    with pytest.raises(ValueError):
        t.sample(0)
    with pytest.raises(ValueError):
        t.sample(4, seed=-1)


def test_save_and_generator(run):
    g_path = os.path.join(run["saved"], "G.safetensors")
    g, d = simdgan.load(g_path), simdgan.load(os.path.join(run["saved"], "D.safetensors"))
    assert {k: v.shape for k, v in g.items()} == G_SHAPES
    assert {k: v.shape for k, v in d.items()} == D_SHAPES
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in list(g.values()) + list(d.values()))
    assert simdgan.metadata(g_path)["step"] == "2"
    with simdgan.Generator(g_path) as gen:
        assert gen.latent == 64
        np.testing.assert_allclose(gen.sample(16, 3), run["trainer"].sample(16, 3), atol=1e-6)
    state = simdgan.load(os.path.join(run["out"], "checkpoint.safetensors"))
    for k, v in g.items():
        assert np.array_equal(state["G." + k], v)
        assert state["G." + k + ".exp_avg"].shape == v.shape
    for k, v in d.items():
        assert np.array_equal(state["D." + k], v)


def test_evaluation_finds_the_installed_classifier(tmp_path, data):
    with simdgan.Trainer(data=data, out=str(tmp_path), threads=1, eval_every=1, eval_n=100,
                         epochs=1) as t:
        assert t.fit(1) == simdgan.OK
    with open(tmp_path / "metrics.csv") as f:
        assert "fcd" in f.readline().lower()


def test_resume(tmp_path, data):
    out = str(tmp_path)
    with simdgan.Trainer(data=data, out=out, threads=1, seed=5, epochs=4) as t:
        t.fit(1)
        first = t.sample(4, 0)
    with pytest.raises(simdgan.Error) as e:
        simdgan.Trainer(data=data, out=out, threads=1, seed=6, resume=True)
    assert e.value.status == simdgan.BAD_INPUT and "seed" in str(e.value)
    with simdgan.Trainer(data=data, out=out, threads=1, resume=True) as t:
        assert t.step == 2
        assert np.array_equal(t.sample(4, 0), first)
        assert t.steps(1) == simdgan.OK and t.step == 3


def test_precision(tmp_path, data):
    """precision="bf16" trains other bits than fp32 and is kept on resume;
    the defaults themselves open a trainer."""
    defaults = dict(simdgan.defaults(), data=data, threads=1, seed=5, epochs=4)
    grids = {}
    for p in ("fp32", "bf16"):
        with simdgan.Trainer(**dict(defaults, out=str(tmp_path / p), precision=p)) as t:
            t.fit(1)
            grids[p] = t.sample(4, 0)
    assert not np.array_equal(grids["fp32"], grids["bf16"])
    with pytest.raises(simdgan.Error) as e:
        simdgan.Trainer(data=data, out=str(tmp_path / "bf16"), threads=1, resume=True,
                        precision="fp32")
    assert e.value.status == simdgan.BAD_INPUT and "precision" in str(e.value)
    with simdgan.Trainer(data=data, out=str(tmp_path / "bf16"), threads=1, resume=True) as t:
        assert np.array_equal(t.sample(4, 0), grids["bf16"])
    with pytest.raises(simdgan.Error) as e:
        simdgan.Trainer(data=data, out=str(tmp_path / "x"), precision="fp16")
    assert e.value.status == simdgan.BAD_INPUT and "fp16" in str(e.value)


def test_callback_stops_and_raises(tmp_path, data):
    with simdgan.Trainer(data=data, out=str(tmp_path / "a"), threads=1, log_every=1) as t:
        assert t.fit(1, on_log=lambda line: True) == simdgan.STOPPED
        assert t.step == 1
    with simdgan.Trainer(data=data, out=str(tmp_path / "b"), threads=1, log_every=1) as t:
        def boom(line):
            raise RuntimeError("from the callback")
        with pytest.raises(RuntimeError, match="from the callback"):
            t.fit(1, on_log=boom)
        assert t.step == 1


def test_bad_input(tmp_path, data):
    with pytest.raises(TypeError, match="epochz"):
        simdgan.Trainer(epochz=1)
    missing = str(tmp_path / "nothing-here")
    with pytest.raises(simdgan.Error) as e:
        simdgan.Trainer(data=missing, out=str(tmp_path / "o1"))
    assert e.value.status == simdgan.BAD_INPUT and missing in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(simdgan.Error) as e:
        simdgan.Trainer(data=data, out=str(tmp_path / "o2"), batch_size=0)
    assert e.value.status == simdgan.BAD_INPUT
    with pytest.raises(simdgan.Error):
        simdgan.Trainer(data=data, out=str(tmp_path / "o3"), bind="sometimes")
    out = str(tmp_path / "locked")
    with simdgan.Trainer(data=data, out=out, threads=1):
        with pytest.raises(simdgan.Error) as e:
            simdgan.Trainer(data=data, out=out, threads=1)
        assert e.value.status == simdgan.BAD_INPUT
    t = simdgan.Trainer(data=data, out=str(tmp_path / "closed"), threads=1)
    t.close()
    with pytest.raises(ValueError, match="closed"):
        t.sample(1)
    with pytest.raises(simdgan.Error):
        simdgan.Generator(str(tmp_path / "no.safetensors"))


def write_safetensors(path, tensors, meta=None, header_extra=None):
    header, body = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    if meta is not None:
        header["__metadata__"] = meta
    header.update(header_extra or {})
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + body)


def test_load_by_hand(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    b = np.array([1e300, -2.5], dtype=np.float64)
    c = np.array([[-(2 ** 40)], [7]], dtype=np.int64)
    bf = np.array([1.0, -2.0, 0.15625], dtype=np.float32)
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {
        "a": ("F32", [2, 3], a.tobytes()), "b": ("F64", [2], b.tobytes()),
        "c": ("I64", [2, 1], c.tobytes()), "u": ("U8", [3], bytes([0, 128, 255])),
        "bf": ("BF16", [3], (bf.view(np.uint32) >> 16).astype("<u2").tobytes()),
        "empty": ("F32", [0, 4], b"")}, meta={"step": "9"})
    t = simdgan.load(path)
    assert list(t) == ["a", "b", "c", "u", "bf", "empty"]
    assert np.array_equal(t["a"], a) and np.array_equal(t["b"], b) and np.array_equal(t["c"], c)
    assert t["u"].tolist() == [0, 128, 255] and t["empty"].shape == (0, 4)
    assert np.array_equal(t["bf"], bf) and t["bf"].dtype == np.float32
    assert t["a"].flags.writeable
    assert simdgan.metadata(path) == {"step": "9"}


@pytest.mark.parametrize("damage", ["short", "length", "json", "offsets", "size", "dtype", "shape"])
def test_load_refuses_damaged_files(tmp_path, damage):
    path = tmp_path / ("%s.safetensors" % damage)
    raw = np.zeros(4, np.float32).tobytes()
    if damage == "short":
        path.write_bytes(b"\x01\x00")
    elif damage == "length":
        path.write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    elif damage == "json":
        path.write_bytes(struct.pack("<Q", 5) + b"{nope")
    else:
        tensor = {"offsets": ("F32", [4], raw), "size": ("F32", [5], raw),
                  "dtype": ("F128", [4], raw), "shape": ("F32", [-4], raw)}[damage]
        write_safetensors(path, {"x": tensor})
        if damage == "offsets":
            data = path.read_bytes()
            path.write_bytes(data[:-4])
    with pytest.raises(ValueError, match=str(path)):
        simdgan.load(path)


def tutorial_modules():
    nn = pytest.importorskip("torch").nn
    G = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                      nn.Linear(256, 784), nn.Tanh())
    D = nn.Sequential(nn.Linear(784, 256), nn.LeakyReLU(0.2), nn.Linear(256, 256),
                      nn.LeakyReLU(0.2), nn.Linear(256, 1), nn.Sigmoid())
    return G, D


def test_to_torch_loads_the_tutorials_modules(run):
    G, D = tutorial_modules()
    import torch
    g_sd = simdgan.to_torch(os.path.join(run["saved"], "G.safetensors"))
    G.load_state_dict(g_sd)  # strict: every key and shape
    D.load_state_dict(simdgan.to_torch(os.path.join(run["saved"], "D.safetensors")))
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in g_sd.values())
    with torch.no_grad():
        x = G(torch.randn(8, 64))
        p = D(x)
    assert x.shape == (8, 784) and x.abs().max() <= 1
    assert p.shape == (8, 1) and ((p > 0) & (p < 1)).all()
    state = simdgan.to_torch(os.path.join(run["out"], "checkpoint.safetensors"))
    assert torch.equal(state["G.4.weight"], G[4].weight.data)
    assert torch.equal(state["D.0.bias"], D[0].bias.data)


def test_pip_install_offline(tmp_path, run):
    venv, src = tmp_path / "venv", tmp_path / "python"
    shutil.copytree(os.path.join(SOURCE, "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SIMDGAN_MODELS")}
    p = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                        "--disable-pip-version-check", "--no-cache-dir", str(src)],
                       capture_output=True, text=True, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    g_path = os.path.join(run["saved"], "G.safetensors")
    script = ("import simdgan, os\n"
              "assert not os.path.exists(os.path.join(os.path.dirname(simdgan.__file__), '_install.py'))\n"
              "print(simdgan.__file__)\n"
              "print(simdgan._native.library()._name)\n"
              "print(simdgan.Generator(%r).sample(3, 1).shape)\n" % g_path)
    libdir = os.path.dirname(LIBRARY)
    for how, extra in (("SIMDGAN_LIBRARY", {"SIMDGAN_LIBRARY": LIBRARY}),
                       ("LD_LIBRARY_PATH", {"LD_LIBRARY_PATH": libdir})):
        p = subprocess.run([py, "-c", script], capture_output=True, text=True,
                           env=dict(env, **extra), cwd=tmp_path)
        assert p.returncode == 0, how + ": " + p.stderr
        module, lib, shape = p.stdout.splitlines()
        assert module.startswith(str(venv)), how
        assert os.path.realpath(lib if os.path.isabs(lib) else os.path.join(libdir, lib)) == \
            os.path.realpath(LIBRARY), how
        assert shape == "(3, 28, 28)", how
