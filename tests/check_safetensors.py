#!/usr/bin/env python3
"""check_safetensors.py: an independent reader for simdgan's safetensors files.

Usage: check_safetensors.py FILE [--model G|D] [--latent 64] [--hidden 256] [--pattern]

Plain Python (struct, json, numpy; Debian has no python3-safetensors). It
checks what a PyTorch user's loader relies on: the u64 little-endian header
length, the JSON header padded to a multiple of 8, every entry F32 with a
shape matching its byte count, offsets contiguous, non-overlapping and
covering the data exactly, __metadata__ a map of strings to strings.

--model G|D   the tensors must be exactly the tutorial's nn.Sequential keys
              and shapes (G: Linear(latent, hidden) ReLU Linear(hidden,
              hidden) ReLU Linear(hidden, 784) Tanh; D: Linear(784, hidden)
              LeakyReLU(0.2) Linear(hidden, hidden) LeakyReLU(0.2)
              Linear(hidden, 1) Sigmoid). Where torch imports, they are read
              with torch.frombuffer, loaded into that nn.Sequential with
              load_state_dict(strict=True) and run forward on a fixed batch;
              the output is compared with a numpy forward pass.
--pattern     the values must be tests/test_io.c's formula: tensor t (in
              nn.Sequential key order), flat element i =
              (((7i + 13t) mod 97) - 48) / 256.
Exit status 0 when every check passes, 1 with one line per failure.
"""
import argparse
import json
import struct
import sys

import numpy as np

KEYS = ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]


class Invalid(Exception):
    pass


def read_safetensors(path):
    """(header dict without __metadata__, metadata dict, data bytes)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise Invalid("%s: %d bytes; expected at least 8" % (path, len(blob)))
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise Invalid("%s: header length %d exceeds the file" % (path, n))
    if n % 8:
        raise Invalid("%s: header length %d is not a multiple of 8" % (path, n))
    raw = blob[8:8 + n]
    text = raw.decode("utf-8")
    if text.rstrip(" ") != text.rstrip():
        raise Invalid("%s: header padded with something other than spaces" % path)
    header = json.loads(text, object_pairs_hook=_no_duplicates)
    if not isinstance(header, dict):
        raise Invalid("%s: header is not a JSON object" % path)
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise Invalid("%s: __metadata__ is not a map of strings to strings" % path)
    return header, meta, blob[8 + n:]


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Invalid("duplicate key in header: %r" % keys)
    return dict(pairs)


def validate(path, header, data):
    """Entries F32, shapes matching byte counts, offsets tiling the data."""
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise Invalid("%s: entry %s has fields %r" % (path, name, e))
        if e["dtype"] != "F32":
            raise Invalid("%s: %s has dtype %s; expected F32" % (path, name, e["dtype"]))
        shape, (b, end) = e["shape"], e["data_offsets"]
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise Invalid("%s: %s has shape %r" % (path, name, shape))
        if end - b != 4 * int(np.prod(shape, dtype=np.int64)):
            raise Invalid("%s: %s: %d bytes for shape %r" % (path, name, end - b, shape))
        spans.append((b, end, name))
    at = 0
    for b, end, name in sorted(spans):
        if b != at:
            raise Invalid("%s: %s starts at %d; expected %d (contiguous)" % (path, name, b, at))
        at = end
    if at != len(data):
        raise Invalid("%s: tensors cover %d of %d data bytes" % (path, at, len(data)))
    order = [name for _, _, name in sorted(spans)]
    if order != list(header):
        print("%s: note: data order %r differs from key order" % (path, order))


def arrays(header, data):
    """name -> numpy float32 array (copies, little-endian)."""
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").astype(np.float32).reshape(e["shape"])
    return out


def model_shapes(model, latent, hidden):
    if model == "G":
        dims = [(latent, hidden), (hidden, hidden), (hidden, 784)]
    else:
        dims = [(784, hidden), (hidden, hidden), (hidden, 1)]
    shapes = {}
    for layer, (i, o) in zip((0, 2, 4), dims):
        shapes["%d.weight" % layer] = [o, i]
        shapes["%d.bias" % layer] = [o]
    return shapes


def numpy_forward(model, w, x):
    h = x
    for layer in (0, 2, 4):
        h = h @ w["%d.weight" % layer].T + w["%d.bias" % layer]
        if layer < 4:
            h = np.maximum(h, 0) if model == "G" else np.where(h > 0, h, np.float32(0.2) * h)
    return np.tanh(h) if model == "G" else 1 / (1 + np.exp(-h))


def torch_check(path, model, header, data, w, latent, hidden):
    """load_state_dict(strict=True) into the tutorial's nn.Sequential, forward."""
    try:
        import torch
        import torch.nn as nn
    except ImportError:
        print("%s: torch not importable; skipped loading into nn.Sequential" % path)
        return
    buf = bytearray(data)   # frombuffer wants a writable buffer
    state = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        if sys.byteorder == "little":
            t = torch.frombuffer(buf, dtype=torch.float32, count=(end - b) // 4, offset=b)
        else:                   # the file is little-endian: let numpy swap
            t = torch.from_numpy(w[name].copy())
        state[name] = t.reshape(e["shape"])
    if model == "G":
        net = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                            nn.ReLU(), nn.Linear(hidden, 784), nn.Tanh())
        x = torch.linspace(-2, 2, 5 * latent).reshape(5, latent)
    else:
        net = nn.Sequential(nn.Linear(784, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                            nn.LeakyReLU(0.2), nn.Linear(hidden, 1), nn.Sigmoid())
        x = torch.linspace(-1, 1, 5 * 784).reshape(5, 784)
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        y = net(x).numpy()
    ref = numpy_forward(model, w, x.numpy().astype(np.float64))
    diff = float(np.max(np.abs(y - ref)))
    if not np.all(np.isfinite(y)) or diff > 1e-4:
        raise Invalid("%s: torch forward differs from numpy by %g" % (path, diff))
    print("%s: loaded into nn.Sequential (strict), forward %s, max |torch - numpy| %.2g"
          % (path, "x".join(map(str, y.shape)), diff))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--model", choices=["G", "D"])
    ap.add_argument("--latent", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--pattern", action="store_true",
                    help="values must follow tests/test_io.c's formula")
    args = ap.parse_args(argv[1:])
    path = args.file
    try:
        header, meta, data = read_safetensors(path)
        validate(path, header, data)
        w = arrays(header, data)
        print("%s: %d tensors, %d data bytes, metadata %r" % (path, len(header), len(data), meta))
        if args.model:
            shapes = model_shapes(args.model, args.latent, args.hidden)
            got = {k: e["shape"] for k, e in header.items()}
            if got != shapes:
                raise Invalid("%s: shapes %r; expected %r for %s" % (path, got, shapes, args.model))
        if args.pattern:
            for t, name in enumerate(KEYS if args.model else list(header)):
                i = np.arange(w[name].size, dtype=np.int64)
                expect = (((i * 7 + t * 13) % 97) - 48).astype(np.float32) / np.float32(256)
                if not np.array_equal(w[name].reshape(-1), expect):
                    raise Invalid("%s: %s does not follow the test pattern" % (path, name))
            print("%s: values follow the test pattern exactly" % path)
        if args.model:
            torch_check(path, args.model, header, data, w, args.latent, args.hidden)
    except (OSError, ValueError, KeyError, TypeError, Invalid) as e:
        msg = str(e)
        print(msg if msg.startswith(path) else "%s: %s" % (path, msg), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
