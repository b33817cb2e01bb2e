"""_safetensors.py: the safetensors format read with numpy alone (Debian has
no python3-safetensors).

A file is 8 bytes of little-endian header length N, N bytes of JSON (each
tensor's dtype, shape and [begin, end) byte offsets into the data after the
header, plus an optional "__metadata__" of strings), then the data. Every
offset and size is checked against the file before an array is made.
"""
import json
import os

import numpy as np

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
_MAX_HEADER = 100 << 20


def _bad(path, what, expected):
    return ValueError("simdgan: %s: %s; expected %s" % (path, what, expected))


def read(path):
    """(tensors, metadata) of a safetensors file: {name: ndarray} in the
    file's order, each owning a writable copy of its bytes (BF16 widened to
    float32), and the __metadata__ strings ({} when absent)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = bytearray(f.read())
    if len(data) < 8:
        raise _bad(path, "%d bytes" % len(data), "8 bytes of header length, a JSON header, data")
    n = int.from_bytes(data[:8], "little")
    if n > len(data) - 8 or n > _MAX_HEADER:
        raise _bad(path, "header length %d in a file of %d bytes" % (n, len(data)),
                   "a header inside the file")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _bad(path, "header is not JSON (%s)" % e, "a JSON object") from None
    if not isinstance(header, dict):
        raise _bad(path, "header is a %s" % type(header).__name__, "a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict):
        raise _bad(path, "__metadata__ is not an object", "a JSON object of strings")
    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, t in header.items():
        try:
            dtype, shape, (begin, end) = t["dtype"], list(t["shape"]), t["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise _bad(path, "tensor %s: %r" % (name, t), "dtype, shape and data_offsets") from None
        if dtype not in _DTYPES:
            raise _bad(path, "tensor %s: dtype %r" % (name, dtype), "one of " + ", ".join(_DTYPES))
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise _bad(path, "tensor %s: shape %r" % (name, shape), "non-negative integers")
        np_dtype = np.dtype(_DTYPES[dtype])
        size = int(np.prod(shape, dtype=np.int64)) * np_dtype.itemsize
        if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= len(body)
                and end - begin == size):
            raise _bad(path, "tensor %s: data_offsets [%r, %r] for %s %r in %d bytes of data"
                       % (name, begin, end, dtype, shape, len(body)),
                       "%d bytes inside the data" % size)
        a = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(shape).copy()
        if dtype == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        tensors[name] = a
    return tensors, meta
