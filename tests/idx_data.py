"""idx_data.py: small synthetic data sets in MNIST's IDX format, for the
package and Python module tests (test_package.py, python/test_simdgan.py).

Image k is a bright row whose place depends on k plus a grey column, so the
set has some structure; labels are k % 10. simdgan reads it as an
unrecognised MNIST-shaped set.
"""
import gzip
import os
import struct


def write_idx(folder, n, prefix="train"):
    """folder/{prefix}-images-idx3-ubyte.gz and ...-labels-idx1-ubyte.gz, n images."""
    os.makedirs(folder, exist_ok=True)
    px = bytearray(n * 784)
    for k in range(n):
        base = k * 784
        r = (k * 7 + 1) % 28
        px[base + r * 28:base + r * 28 + 28] = b"\xff" * 28
        for c in range(28):
            if c != r:
                px[base + c * 28 + k % 28] = 128
    with gzip.open(os.path.join(folder, prefix + "-images-idx3-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(px))
    with gzip.open(os.path.join(folder, prefix + "-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(k % 10 for k in range(n)))


def write_dataset(folder, n_train=200, n_test=100):
    """The four files: a training set and a test set (for evaluations)."""
    write_idx(folder, n_train, "train")
    write_idx(folder, n_test, "t10k")
    return folder
