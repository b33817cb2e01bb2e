#!/usr/bin/python3
"""make_fixtures.py: PyTorch parity fixtures for simdgan, as safetensors files.

Runs the PyTorch MNIST GAN tutorial's exact training iteration (yunjey's
pytorch-tutorial, tutorials/03-advanced/generative_adversarial_network/main.py)
with PyTorch on the CPU and stores every input, output, gradient, updated
parameter and Adam moment of the first step, plus the losses of each step and
the final parameters, so that simdgan's C tests can compare tensor by tensor
without torch installed.

One iteration (as in the tutorial):
  D step: out = D(x); d_loss_real = BCE(out, 1); z1 = randn(B, latent);
          out = D(G(z1)); d_loss_fake = BCE(out, 0); d_loss = sum;
          zero both optimizers' grads; d_loss.backward(); d_optimizer.step()
  G step: z2 = randn(B, latent); out = D(G(z2)); g_loss = BCE(out, 1);
          zero both optimizers' grads; g_loss.backward(); g_optimizer.step()
torch.manual_seed(seed) is set once before the models are built (D first,
then G, as in the tutorial); z1 and z2 come from that global generator.
There is no DataLoader here, so z is not the tutorial run's z: it is stored.

Real batch of step s: MNIST training images [(s-1)B, sB) from
DIR/train-images-idx3-ubyte.gz (gzip IDX), scaled like torchvision
(ToTensor: uint8 -> float / 255; Normalize((0.5,), (0.5,))). Without that file
the images are synthesized from a seeded torch.Generator (metadata
"real_source" says which).

Tensor names (all F32): G.init.<k>, D.init.<k> (k = nn.Sequential state_dict
key, e.g. 0.weight); per step s: x_real.s<s>, z1.s<s>, z2.s<s>, d_loss.s<s>,
d_loss_real.s<s>, d_loss_fake.s<s>, g_loss.s<s>, d_x.s<s>, d_g_z.s<s>; step 1
only: G.out.s1, D.out_real.s1, D.out_fake.s1, G.out2.s1, D.out_g.s1,
each forward's layers (LAYERS below: G.h0_z1.s1, G.h1_z1.s1, D.h0_real.s1,
D.h1_real.s1, D.logit_real.s1, ...), D.grad.<k> (D step), G.grad.<k> (G
step), D.step1.<k>, G.step1.<k>, D.adam_m.<k>, D.adam_v.<k>, G.adam_m.<k>,
G.adam_v.<k>; if steps > 1: D.final.<k>, G.final.<k>.

Precision (spec "precision", metadata "precision"; absent: fp32). The same
iteration, from the same seed (so the same init, images and z as step_h32),
with bf16 products in one of two ways:
  bf16      simdgan's `--precision bf16`, emulated: every Linear's forward is
            r(x) r(W)^T + b, its backward-data r(dy) r(W), its weight
            gradient r(dy)^T r(x), r rounding fp32 to bf16 (nearest even) and
            back; the products of bf16 values are exact in fp32 and summed in
            fp32 by the same GEMMs as fp32's. The bias gradient is the column
            sum of the fp32 dy; activations, BCE, Adam, master weights fp32.
  autocast  torch.autocast("cpu", dtype=torch.bfloat16) around each forward
            and its loss, backward outside (as the autocast docs ask):
            besides rounding the operands and the bias, each Linear returns
            bf16 (one rounding of the fp32 sum plus bias), the activations
            run in bf16, and the backward's products return bf16.
Stored tensors are F32 (bf16 values widened exactly).

Usage:
  tools/make_fixtures.py --out tests/fixtures        # writes the five fixtures
  tools/make_fixtures.py --verify tests/fixtures/step_h32.safetensors

--verify re-reads a fixture with a separate reader and reruns every stored step
from the stored init/x/z in PyTorch, in the precision its metadata names, and
requires bitwise-equal results (on the machine and BLAS that wrote it;
elsewhere GEMM rounding may differ).

Needs Debian's python3-torch (1.13); run with /usr/bin/python3.
"""

import os

# Pin what decides the rounding, so that the fixtures regenerate bit for bit on
# any x86-64 machine with the same Debian packages: one BLAS thread and one ATen
# thread (sums inside GEMMs and reductions then do not depend on the core
# count), OpenBLAS's generic SSE3 "Prescott" kernels (what its DYNAMIC_ARCH
# picked on the machine that wrote the committed files; otherwise it picks by
# CPU model), and ATen's AVX2 elementwise kernels. Autocast's bf16 products run
# in oneDNN, which picks its kernels by ISA: capped at AVX512_CORE_BF16 (its
# brgemm on vdpbf16ps, what wrote the committed autocast fixture), so that an
# AMX machine does not sum in another order; a CPU without AVX512_BF16 gets
# other kernels and possibly other bits. Must be set before torch loads; all
# are recorded in the metadata.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_CORETYPE", "Prescott")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")

import argparse
import contextlib
import ctypes
import ctypes.util
import gzip
import json
import shlex
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

IMAGE_SIZE = 784
LR = 2e-4
DEFAULT_DATA = "/work/shared/data/mnist"
MNIST_TRAIN = "train-images-idx3-ubyte.gz"
SOFT_LIMIT_BYTES = 2 * 1000 * 1000

# The fixtures `--out` writes. sat: D's last-layer bias set to +30 after init,
# and its last-layer weight multiplied by sat_wscale, so that the logits spread
# across the float32 saturation point of the sigmoid (about 16.64): many D
# outputs are exactly 1.0f, the rest are not.
FIXTURES = [
    dict(name="step_h32", latent=64, hidden=32, batch=100, steps=3, seed=1),
    dict(name="step_edge", latent=10, hidden=20, batch=7, steps=2, seed=2),
    dict(name="step_sat", latent=64, hidden=32, batch=100, steps=1, seed=3,
         sat_bias=30.0, sat_wscale=5000.0),
    dict(name="step_bf16_h32", latent=64, hidden=32, batch=100, steps=3, seed=1,
         precision="bf16"),
    dict(name="step_autocast_h32", latent=64, hidden=32, batch=100, steps=3, seed=1,
         precision="autocast"),
]

# What each precision other than fp32 means (the header explains), written
# into the fixture's metadata "precision"; verify() reads the key back.
PRECISIONS = {
    "bf16": "bf16: simdgan's bf16 emulated: each Linear's forward r(x) r(W)^T + b, "
            "backward dx = r(dy) r(W), dW = r(dy)^T r(x), db = sum of fp32 dy; r rounds "
            "to bf16 (nearest even); products exact, fp32 sums (OpenBLAS); activations, "
            "BCE, Adam and master weights fp32",
    "autocast": "autocast: torch.autocast('cpu', dtype=torch.bfloat16) around each "
                "forward and its loss, backward outside; Linear outputs and activations "
                "bf16, BCE fp32; fp32 grads, Adam and master weights",
}


# The layers of each forward of step 1 that the files keep, by module index
# of the nn.Sequential: each hidden Linear's output after its activation, and
# D's logits (before the Sigmoid, whose output is D.out_*), so that a forward
# can be compared layer by layer. Names: <net>.<layer>_<which>.s1, which being
# z1 or z2 for G(z1) and G(z2) (both by the initial G), real or fake for D on
# x and on G(z1) (the initial D), g for the updated D on G(z2).
LAYERS = {"G": {1: "h0", 3: "h1"}, "D": {1: "h0", 3: "h1", 4: "logit"}}


# ---------------------------------------------------------------- safetensors

def st_write(path, tensors, metadata):
    """Writes an ordered list of (name, np.float32 array) and a str->str dict.

    Layout: u64 LE header length N; N bytes of JSON padded with spaces to a
    multiple of 8; the raw little-endian data, contiguous in list order."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name, arr in tensors:
        if name in header:
            raise ValueError("duplicate tensor name %s" % name)
        a = np.ascontiguousarray(arr, dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
    return 8 + len(hj) + offset


# ------------------------------------------------------------------ data

def mnist_images(data_dir, count):
    """First `count` training images as uint8 [count, 784], or None."""
    if not data_dir:
        return None
    path = os.path.join(data_dir, MNIST_TRAIN)
    if not os.path.isfile(path):
        return None
    with gzip.open(path, "rb") as f:
        head = f.read(16)
        magic, n, rows, cols = struct.unpack(">IIII", head)
        if magic != 0x803 or rows != 28 or cols != 28:
            raise SystemExit("%s: not an IDX image file (magic %#x, %dx%d)"
                             % (path, magic, rows, cols))
        if n < count:
            raise SystemExit("%s: %d images, need %d" % (path, n, count))
        buf = f.read(count * IMAGE_SIZE)
    return np.frombuffer(buf, dtype=np.uint8).reshape(count, IMAGE_SIZE).copy()


def synthetic_images(count, seed):
    """Deterministic digit-like uint8 images: a dark background with a few
    bright strokes. Uses its own generator: the global torch RNG is untouched."""
    g = torch.Generator().manual_seed(1000003 * (seed + 1))
    img = torch.zeros(count, 28, 28, dtype=torch.uint8)
    for i in range(count):
        for _ in range(3):
            r0, c0 = (int(v) for v in torch.randint(4, 24, (2,), generator=g))
            dr, dc = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
            length = int(torch.randint(5, 14, (1,), generator=g))
            val = int(torch.randint(128, 256, (1,), generator=g))
            for t in range(length):
                r = min(27, max(0, r0 + dr * t))
                c = min(27, max(0, c0 + dc * t))
                img[i, r, c] = val
                if c + 1 < 28:
                    img[i, r, c + 1] = max(int(img[i, r, c + 1]), val // 2)
    return img.reshape(count, IMAGE_SIZE).numpy()


def to_model_input(u8):
    """uint8 [B, 784] -> float32 as torchvision's ToTensor + Normalize(0.5, 0.5)."""
    x = torch.from_numpy(np.ascontiguousarray(u8)).to(dtype=torch.float32).div(255)
    mean = torch.as_tensor((0.5,), dtype=x.dtype)
    std = torch.as_tensor((0.5,), dtype=x.dtype)
    return x.sub_(mean).div_(std)


# ----------------------------------------------------------------- models

def r_bf16(t):
    """fp32 -> bf16 (round to nearest even) -> fp32, exactly."""
    return t.bfloat16().float()


class Bf16Product(torch.autograd.Function):
    """y = r(x) r(W)^T + b with simdgan's bf16 backward: dx = r(dy) r(W),
    dW = r(dy)^T r(x) (each product of bf16 values exact in fp32, summed in
    fp32), db = column sums of the fp32 dy."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        xr, wr = r_bf16(x), r_bf16(weight)
        ctx.save_for_backward(xr, wr)
        return nn.functional.linear(xr, wr, bias)

    @staticmethod
    def backward(ctx, dy):
        xr, wr = ctx.saved_tensors
        dyr = r_bf16(dy)
        dx = dyr.mm(wr) if ctx.needs_input_grad[0] else None
        return dx, dyr.t().mm(xr), dy.sum(0)


class Bf16Linear(nn.Linear):
    """nn.Linear (same parameters, same initialisation, same state_dict keys)
    whose products are simdgan's bf16 ones."""

    def forward(self, x):
        return Bf16Product.apply(x, self.weight, self.bias)


def linear_for(precision):
    return Bf16Linear if precision == "bf16" else nn.Linear


def forward_context(precision):
    """What each forward and its loss run under: autocast or nothing."""
    if precision == "autocast":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def make_d(hidden, linear=nn.Linear):
    return nn.Sequential(
        linear(IMAGE_SIZE, hidden), nn.LeakyReLU(0.2),
        linear(hidden, hidden), nn.LeakyReLU(0.2),
        linear(hidden, 1), nn.Sigmoid())


def make_g(latent, hidden, linear=nn.Linear):
    return nn.Sequential(
        linear(latent, hidden), nn.ReLU(),
        linear(hidden, hidden), nn.ReLU(),
        linear(hidden, IMAGE_SIZE), nn.Tanh())


class LayerTap:
    """Forward hooks on the LAYERS modules of one network: take(which) returns
    the outputs of its last forward as (name, array) pairs. The tutorial's loop
    itself is unchanged."""

    def __init__(self, model, net):
        self.net = net
        self.last = {}
        for index in LAYERS[net]:
            model[index].register_forward_hook(self._hook(index))

    def _hook(self, index):
        def hook(module, inputs, output):
            self.last[index] = f32(output)
        return hook

    def take(self, which):
        return [("%s.%s_%s.s1" % (self.net, name, which), self.last[index])
                for index, name in LAYERS[self.net].items()]


def sd(model, prefix):
    return [("%s.%s" % (prefix, k), v.detach().clone().numpy())
            for k, v in model.state_dict().items()]


def grads(model, prefix):
    return [("%s.%s" % (prefix, k), p.grad.detach().clone().numpy())
            for k, p in model.named_parameters()]


def adam_state(model, opt, prefix):
    out = []
    for key, field in (("adam_m", "exp_avg"), ("adam_v", "exp_avg_sq")):
        for k, p in model.named_parameters():
            out.append(("%s.%s.%s" % (prefix, key, k),
                        opt.state[p][field].detach().clone().numpy()))
    return out


def scalar(t):
    return t.detach().reshape(1).clone().numpy()


def f32(t):
    """A copy of t as float32 numpy (bf16 widens exactly; fp32 is copied)."""
    return t.detach().float().numpy().copy()


def onednn_info():
    """oneDNN's version, its ISA cap and whether the CPU has AVX512_BF16
    (what decides autocast's bf16 products)."""
    version = "unknown"
    for line in torch.__config__.show().splitlines():
        if "MKL-DNN" in line or "oneDNN" in line:
            version = line.strip(" -")
    bf16 = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), None)
        if flags is not None:
            bf16 = "yes" if "avx512_bf16" in flags else "no"
    except OSError:
        pass
    return "%s, ONEDNN_MAX_CPU_ISA=%s, CPU avx512_bf16 %s" % (
        version, os.environ.get("ONEDNN_MAX_CPU_ISA", "(unset)"), bf16)


def cpu_info():
    cap = "unknown"
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage" in line:
            cap = line.split(":", 1)[1].strip()
    blas = "unknown"
    for lib in ("libopenblas.so.0", ctypes.util.find_library("openblas")):
        if not lib:
            continue
        try:
            ob = ctypes.CDLL(lib)
            ob.openblas_get_config.restype = ctypes.c_char_p
            ob.openblas_get_corename.restype = ctypes.c_char_p
            blas = "OpenBLAS %s, core %s" % (ob.openblas_get_config().decode(),
                                             ob.openblas_get_corename().decode())
            break
        except (OSError, AttributeError):
            continue
    return cap, blas


# --------------------------------------------------------------- generate

def generate(spec, out_dir, data_dir, argv):
    latent, hidden, B, steps, seed = (spec[k] for k in
                                      ("latent", "hidden", "batch", "steps", "seed"))
    precision = spec.get("precision", "fp32")
    linear, fwd = linear_for(precision), forward_context(precision)
    torch.manual_seed(seed)
    D = make_d(hidden, linear)           # the tutorial builds D first
    G = make_g(latent, hidden, linear)
    mods = []
    if "sat_bias" in spec:
        with torch.no_grad():
            D[4].weight.mul_(spec["sat_wscale"])
            D[4].bias.fill_(spec["sat_bias"])
        mods.append("after init, D.4.weight *= %g and D.4.bias = %g (sigmoid saturation)"
                    % (spec["sat_wscale"], spec["sat_bias"]))

    u8 = mnist_images(data_dir, B * steps)
    if u8 is not None:
        real_source = "MNIST %s images [0, %d), first B per step in order" % (
            os.path.join(os.path.abspath(data_dir), MNIST_TRAIN), B * steps)
    else:
        u8 = synthetic_images(B * steps, seed)
        real_source = "synthetic (make_fixtures.synthetic_images, seed %d)" % seed

    criterion = nn.BCELoss()
    d_opt = torch.optim.Adam(D.parameters(), lr=LR)
    g_opt = torch.optim.Adam(G.parameters(), lr=LR)
    d_tap, g_tap = LayerTap(D, "D"), LayerTap(G, "G")

    def reset_grad():
        d_opt.zero_grad()
        g_opt.zero_grad()

    tensors = sd(G, "G.init") + sd(D, "D.init")
    losses = []
    sat = {}
    for s in range(1, steps + 1):
        layers = []  # this step's LAYERS outputs, kept for step 1
        images = to_model_input(u8[(s - 1) * B:s * B])
        real_labels = torch.ones(B, 1)
        fake_labels = torch.zeros(B, 1)

        with fwd():
            outputs = D(images)
            layers += d_tap.take("real")
            d_loss_real = criterion(outputs, real_labels)
            real_score = outputs
            z1 = torch.randn(B, latent)
            fake_images = G(z1)
            layers += g_tap.take("z1")
            outputs = D(fake_images)
            layers += d_tap.take("fake")
            d_loss_fake = criterion(outputs, fake_labels)
            fake_score = outputs
            d_loss = d_loss_real + d_loss_fake
        reset_grad()
        d_loss.backward()
        d_grads = grads(D, "D.grad")
        d_opt.step()

        with fwd():
            z2 = torch.randn(B, latent)
            fake_images2 = G(z2)
            layers += g_tap.take("z2")
            outputs_g = D(fake_images2)
            layers += d_tap.take("g")
            g_loss = criterion(outputs_g, real_labels)
        reset_grad()
        g_loss.backward()
        g_grads = grads(G, "G.grad")
        g_opt.step()

        tensors += [
            ("x_real.s%d" % s, images.numpy().copy()),
            ("z1.s%d" % s, z1.numpy().copy()),
            ("z2.s%d" % s, z2.numpy().copy()),
            ("d_loss.s%d" % s, scalar(d_loss)),
            ("d_loss_real.s%d" % s, scalar(d_loss_real)),
            ("d_loss_fake.s%d" % s, scalar(d_loss_fake)),
            ("g_loss.s%d" % s, scalar(g_loss)),
            ("d_x.s%d" % s, scalar(real_score.float().mean())),
            ("d_g_z.s%d" % s, scalar(fake_score.float().mean())),
        ]
        losses.append((float(d_loss), float(g_loss),
                       float(real_score.float().mean()), float(fake_score.float().mean())))
        if s == 1:
            for key, t in (("D.out_real.s1", real_score), ("D.out_fake.s1", fake_score),
                           ("D.out_g.s1", outputs_g)):
                v = f32(t)
                sat[key] = (int((v == 1.0).sum()), int((v == 0.0).sum()), v.size)
            tensors += [
                ("G.out.s1", f32(fake_images)),
                ("D.out_real.s1", f32(real_score)),
                ("D.out_fake.s1", f32(fake_score)),
                ("G.out2.s1", f32(fake_images2)),
                ("D.out_g.s1", f32(outputs_g)),
            ]
            tensors += layers
            tensors += d_grads + g_grads
            tensors += sd(D, "D.step1") + sd(G, "G.step1")
            tensors += adam_state(D, d_opt, "D") + adam_state(G, g_opt, "G")
    if steps > 1:
        tensors += sd(D, "D.final") + sd(G, "G.final")

    cap, blas = cpu_info()
    note = "tools/make_fixtures.py " + " ".join(shlex.quote(a) for a in argv)
    if mods:
        note += "; " + "; ".join(mods)
    meta = {
        "latent": latent, "hidden": hidden, "batch": B, "steps": steps,
        "lr": repr(LR), "seed": seed, "torch_version": torch.__version__,
        "real_source": real_source, "note": note,
        "cpu_capability": cap, "blas": blas,
    }
    if "sat_bias" in spec:
        meta["d_last_bias"] = repr(spec["sat_bias"])
        meta["d_last_weight_scale"] = repr(spec["sat_wscale"])
    if precision != "fp32":
        meta["precision"] = PRECISIONS[precision]
    if precision == "autocast":
        meta["onednn"] = onednn_info()
    path = os.path.join(out_dir, spec["name"] + ".safetensors")
    size = st_write(path, tensors, meta)
    return path, size, losses, sat, len(tensors)


# ----------------------------------------------------------------- verify
# Deliberately shares no code with the writer above except the model builders
# and the precision's pieces (Bf16Linear, forward_context): its own reader, and
# the tutorial's loop transcribed again.

def st_read(path):
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("%s: too short" % path)
    (n,) = struct.unpack_from("<Q", raw, 0)
    if n % 8 or 8 + n > len(raw):
        raise ValueError("%s: bad header length %d" % (path, n))
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = memoryview(raw)[8 + n:]
    out = {}
    end = 0
    for name, e in header.items():
        b, e2 = e["data_offsets"]
        if e["dtype"] != "F32" or b != end:
            raise ValueError("%s: %s: dtype %s, offsets %s (expected start %d)"
                             % (path, name, e["dtype"], e["data_offsets"], end))
        count = int(np.prod(e["shape"])) if e["shape"] else 1
        if e2 - b != 4 * count:
            raise ValueError("%s: %s: %d bytes for shape %s" % (path, name, e2 - b, e["shape"]))
        out[name] = np.frombuffer(data[b:e2], dtype="<f4").reshape(e["shape"])
        end = e2
    if end != len(data):
        raise ValueError("%s: %d data bytes, entries cover %d" % (path, len(data), end))
    return meta, out


def load(model, t, prefix):
    model.load_state_dict({k: torch.from_numpy(t["%s.%s" % (prefix, k)].copy())
                           for k in model.state_dict()})


def walk(model, x, net, which, got):
    """model(x), module by module (as nn.Sequential runs it), keeping the
    LAYERS outputs in got under their fixture names."""
    for index, module in enumerate(model):
        x = module(x)
        if index in LAYERS[net]:
            got["%s.%s_%s.s1" % (net, LAYERS[net][index], which)] = x
    return x


def verify(path):
    meta, t = st_read(path)
    latent, hidden, B, steps = (int(meta[k]) for k in ("latent", "hidden", "batch", "steps"))
    precision = meta.get("precision", "fp32").split(":")[0]
    if precision != "fp32" and meta["precision"] != PRECISIONS.get(precision):
        raise ValueError("%s: unknown precision %r" % (path, meta["precision"]))
    linear, fwd = linear_for(precision), forward_context(precision)
    D = make_d(hidden, linear)
    G = make_g(latent, hidden, linear)
    load(D, t, "D.init")
    load(G, t, "G.init")
    criterion = nn.BCELoss()
    d_optimizer = torch.optim.Adam(D.parameters(), lr=float(meta["lr"]))
    g_optimizer = torch.optim.Adam(G.parameters(), lr=float(meta["lr"]))
    got = {}
    for s in range(1, steps + 1):
        images = torch.from_numpy(t["x_real.s%d" % s].copy())
        real_labels = torch.ones(B, 1)
        fake_labels = torch.zeros(B, 1)
        layers = {}
        with fwd():
            outputs = walk(D, images, "D", "real", layers)
            d_loss_real = criterion(outputs, real_labels)
            real_score = outputs
            z = torch.from_numpy(t["z1.s%d" % s].copy())
            fake_images = walk(G, z, "G", "z1", layers)
            outputs = walk(D, fake_images, "D", "fake", layers)
            d_loss_fake = criterion(outputs, fake_labels)
            fake_score = outputs
            d_loss = d_loss_real + d_loss_fake
        d_optimizer.zero_grad()
        g_optimizer.zero_grad()
        d_loss.backward()
        if s == 1:
            for k, p in D.named_parameters():
                got["D.grad." + k] = p.grad.clone()
        d_optimizer.step()
        with fwd():
            z = torch.from_numpy(t["z2.s%d" % s].copy())
            fake_images2 = walk(G, z, "G", "z2", layers)
            outputs_g = walk(D, fake_images2, "D", "g", layers)
            g_loss = criterion(outputs_g, real_labels)
        d_optimizer.zero_grad()
        g_optimizer.zero_grad()
        g_loss.backward()
        g_optimizer.step()
        got["d_loss.s%d" % s] = d_loss.reshape(1)
        got["g_loss.s%d" % s] = g_loss.reshape(1)
        got["d_x.s%d" % s] = real_score.float().mean().reshape(1)
        got["d_g_z.s%d" % s] = fake_score.float().mean().reshape(1)
        if s == 1:
            got.update({"G.out.s1": fake_images, "D.out_real.s1": real_score,
                        "D.out_fake.s1": fake_score, "G.out2.s1": fake_images2,
                        "D.out_g.s1": outputs_g})
            got.update(layers)
            for k, p in G.named_parameters():
                got["G.grad." + k] = p.grad.clone()
            for name, model, opt in (("D", D, d_optimizer), ("G", G, g_optimizer)):
                for k, p in model.named_parameters():
                    got["%s.step1.%s" % (name, k)] = p.detach().clone()
                    got["%s.adam_m.%s" % (name, k)] = opt.state[p]["exp_avg"].clone()
                    got["%s.adam_v.%s" % (name, k)] = opt.state[p]["exp_avg_sq"].clone()
    if steps > 1:
        for name, model in (("D", D), ("G", G)):
            for k, p in model.named_parameters():
                got["%s.final.%s" % (name, k)] = p.detach().clone()

    bad = 0
    for name in sorted(got):
        mine = got[name].detach().float().numpy()
        ref = t[name]
        if mine.shape != ref.shape or mine.tobytes() != np.ascontiguousarray(ref).tobytes():
            diff = float(np.max(np.abs(mine.astype(np.float64) - ref))) if mine.shape == ref.shape else -1
            print("  MISMATCH %-22s max |diff| %.3g" % (name, diff))
            bad += 1
    print("verify %s (%s): %d tensors rerun, %d bitwise equal; losses %s" % (
        path, precision, len(got), len(got) - bad,
        ", ".join("s%d d %.9g g %.9g" % (s, float(t["d_loss.s%d" % s][0]),
                                         float(t["g_loss.s%d" % s][0]))
                  for s in range(1, steps + 1))))
    return bad == 0


# ------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", metavar="DIR", help="write the fixtures into DIR")
    ap.add_argument("--data", metavar="DIR", default=None,
                    help="folder with %s (default %s if present, else synthetic images)"
                    % (MNIST_TRAIN, DEFAULT_DATA))
    ap.add_argument("--only", metavar="NAME", action="append",
                    choices=[f["name"] for f in FIXTURES], help="write only this fixture")
    ap.add_argument("--no-verify", action="store_true",
                    help="do not rerun the written fixtures")
    ap.add_argument("--verify", metavar="FILE", nargs="+",
                    help="rerun FILE's stored steps in PyTorch and compare bitwise")
    args = ap.parse_args()
    if not args.out and not args.verify:
        ap.error("give --out DIR or --verify FILE")

    torch.set_num_threads(1)
    ok = True
    if args.out:
        data_dir = args.data
        if data_dir is None and os.path.isfile(os.path.join(DEFAULT_DATA, MNIST_TRAIN)):
            data_dir = DEFAULT_DATA
        os.makedirs(args.out, exist_ok=True)
        total = 0
        written = []
        for spec in FIXTURES:
            if args.only and spec["name"] not in args.only:
                continue
            path, size, losses, sat, ntens = generate(spec, args.out, data_dir, sys.argv[1:])
            total += size
            written.append(path)
            print("%s: %d bytes (%.2f MB), %d tensors, latent %d hidden %d batch %d steps %d seed %d"
                  % (path, size, size / 1e6, ntens, spec["latent"], spec["hidden"],
                     spec["batch"], spec["steps"], spec["seed"]))
            for s, (dl, gl, dx, dgz) in enumerate(losses, 1):
                print("  step %d: d_loss %.9g  g_loss %.9g  D(x) %.6f  D(G(z)) %.6f"
                      % (s, dl, gl, dx, dgz))
            for key, (ones, zeros, n) in sat.items():
                print("  %-14s %3d of %3d exactly 1.0f, %d exactly 0.0f" % (key, ones, n, zeros))
            if size > SOFT_LIMIT_BYTES:
                print("  warning: larger than %.1f MB" % (SOFT_LIMIT_BYTES / 1e6))
            if "sat_bias" in spec:
                n_ones = sum(v[0] for v in sat.values())
                n_all = sum(v[2] for v in sat.values())
                if n_ones == 0 or n_ones == n_all:
                    print("  error: want some but not all D outputs saturated, got %d of %d"
                          % (n_ones, n_all))
                    ok = False
        print("total %d bytes (%.2f MB)" % (total, total / 1e6))
        if not args.no_verify:
            for path in written:
                ok = verify(path) and ok
    for path in args.verify or []:
        ok = verify(path) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
