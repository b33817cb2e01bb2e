#!/usr/bin/env python3
"""check_png.py: decode the grids test_io wrote and compare them pixel by pixel.

Usage: check_png.py DIR   (DIR holds grid_100.png, grid_9.png, grid_3.png, grid_1.png)

An independent reader in plain Python (zlib, struct): signature, chunk CRCs,
IHDR (8-bit, RGB or grey or RGBA, no interlace), the IDAT stream, and all five
scanline filters (simdgan writes filter 0 only; a self-test encodes with each
filter to exercise the others). The expected image is computed here from the
same pattern as tests/test_io.c:

    pixel (k, r, c) = (((7k + 3r + 5c) mod 41) - 20) / 16      in [-1.25, 1.25]

then torchvision's save_image(denorm(x)) in float32: v = clamp((x + 1) / 2,
0, 1); byte = trunc(clamp(v * 255 + 0.5, 0, 255)); grid with nrow 8,
padding 2, pad value 0 (a lone image unpadded). float32 arithmetic is
emulated exactly by rounding each double result to float32 (one +, * or /
of two float32 values rounded to double and then to float32 is correctly
rounded). Where torch and torchvision import, the expected grid is also
built by torchvision.utils.make_grid itself and must agree.
"""
import struct
import sys
import zlib


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def pattern(k, r, c):
    return f32(((k * 7 + r * 3 + c * 5) % 41 - 20) / 16.0)


def to_byte(x):
    v = f32(f32(x + 1.0) / 2.0)
    v = min(max(v, 0.0), 1.0)
    t = f32(f32(v * 255.0) + 0.5)
    return int(min(max(t, 0.0), 255.0))


def grid_layout(B, h=28, w=28):
    """(width, height, [(k, x0, y0)]) as torchvision's make_grid places images."""
    if B == 1:
        return w, h, [(0, 0, 0)]
    cols = min(8, B)
    rows = (B + cols - 1) // cols
    cells = [(k, (k % cols) * (w + 2) + 2, (k // cols) * (h + 2) + 2) for k in range(B)]
    return (w + 2) * cols + 2, (h + 2) * rows + 2, cells


def expected_grid(B, h=28, w=28):
    """Rows of grey bytes, [height][width]."""
    width, height, cells = grid_layout(B, h, w)
    img = [[0] * width for _ in range(height)]
    for k, x0, y0 in cells:
        for r in range(h):
            row = img[y0 + r]
            for c in range(w):
                row[x0 + c] = to_byte(pattern(k, r, c))
    return img


def torchvision_grid(B, h=28, w=28):
    """The same grid through torchvision itself, or None without torch."""
    try:
        import torch
        from torchvision.utils import make_grid
    except ImportError:
        return None
    x = torch.tensor([[[pattern(k, r, c) for c in range(w)] for r in range(h)]
                      for k in range(B)], dtype=torch.float32).reshape(B, 1, h, w)
    out = ((x + 1) / 2).clamp(0, 1)             # the tutorial's denorm
    grid = make_grid(out, nrow=8, padding=2, pad_value=0)
    nd = grid.mul(255).add_(0.5).clamp_(0, 255).permute(1, 2, 0).to("cpu", torch.uint8)
    return nd.numpy()


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def unfilter(raw, width, height, bpp):
    """Undo the per-row filters; returns a list of bytearrays."""
    stride = width * bpp
    if len(raw) != height * (stride + 1):
        raise ValueError("IDAT holds %d bytes; expected %d" % (len(raw), height * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(height):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            elif ftype == 4:
                pred = paeth(a, b, c)
            else:
                raise ValueError("row %d has filter type %d; expected 0..4" % (y, ftype))
            line[i] = (line[i] + pred) & 0xFF
        rows.append(line)
        prev = line
    return rows


def decode_png(data, name="png"):
    """(width, height, channels, rows) from PNG bytes; raises ValueError."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: no PNG signature" % name)
    pos, ihdr, idat, ended = 8, None, b"", False
    while pos < len(data):
        if pos + 8 > len(data):
            raise ValueError("%s: truncated chunk header at byte %d" % (name, pos))
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError("%s: truncated %r chunk" % (name, ctype))
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise ValueError("%s: bad CRC in %r chunk" % (name, ctype))
        if ctype == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif ctype == b"IDAT":
            idat += body
        elif ctype == b"IEND":
            ended = True
            pos += 12 + length
            break
        pos += 12 + length
    if ihdr is None or not ended or pos != len(data):
        raise ValueError("%s: missing IHDR or IEND, or bytes after IEND" % name)
    width, height, depth, color, comp, filt, interlace = ihdr
    channels = {0: 1, 2: 3, 6: 4}.get(color)
    if depth != 8 or channels is None or comp or filt or interlace:
        raise ValueError("%s: IHDR %r; expected 8-bit grey/RGB/RGBA, no interlace" % (name, ihdr))
    rows = unfilter(zlib.decompress(idat), width, height, channels)
    return width, height, channels, rows


def encode_png(rows, width, height, filters):
    """A small RGB encoder using the given filter type per row (self-test only)."""
    bpp, stride, out, prev = 3, width * 3, bytearray(), bytearray(width * 3)
    for y, line in enumerate(rows):
        f = filters[y % len(filters)]
        out.append(f)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
            out.append((line[i] - pred) & 0xFF)
        prev = line

    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(out)))
            + chunk(b"IEND", b""))


def self_test():
    """Round-trip an image through every filter type."""
    width, height = 13, 7
    rows = [bytearray((x * 37 + y * 91 + (x * y) % 17) & 0xFF for x in range(width * 3))
            for y in range(height)]
    for filters in ([0], [1], [2], [3], [4], [0, 1, 2, 3, 4]):
        w, h, ch, got = decode_png(encode_png(rows, width, height, filters), "self-test")
        if (w, h, ch) != (width, height, 3) or got != rows:
            raise AssertionError("self-test: filters %r do not round-trip" % filters)


def check_grid(path, B):
    with open(path, "rb") as f:
        width, height, channels, rows = decode_png(f.read(), path)
    exp = expected_grid(B)
    ew, eh = len(exp[0]), len(exp)
    if (width, height, channels) != (ew, eh, 3):
        return ["%s: %dx%d with %d channels; expected %dx%d RGB"
                % (path, width, height, channels, ew, eh)]
    errors = []
    for y in range(height):
        for x in range(width):
            px = tuple(rows[y][3 * x:3 * x + 3])
            if px != (exp[y][x],) * 3:
                errors.append("%s: pixel (%d, %d) is %r; expected %r"
                              % (path, x, y, px, (exp[y][x],) * 3))
                if len(errors) >= 5:
                    return errors
    tv = torchvision_grid(B)
    if tv is None:
        print("%s: torchvision not importable; checked against the Python model only" % path)
    else:
        flat = [tuple(int(v) for v in tv[y][x])
                for y in range(tv.shape[0]) for x in range(tv.shape[1])]
        mine = [(exp[y][x],) * 3 for y in range(eh) for x in range(ew)]
        if tv.shape[:2] != (eh, ew) or flat != mine:
            errors.append("%s: the Python model disagrees with torchvision.utils.make_grid" % path)
    return errors


def main(argv):
    if len(argv) != 2:
        print("usage: check_png.py DIR", file=sys.stderr)
        return 2
    self_test()
    errors = []
    for B in (100, 9, 3, 1):
        path = "%s/grid_%d.png" % (argv[1], B)
        try:
            errs = check_grid(path, B)
        except (OSError, ValueError, zlib.error) as e:
            errs = ["%s: %s" % (path, e)]
        errors += errs
        if not errs:
            print("%s: %d images, every pixel as expected" % (path, B))
    for e in errors:
        print(e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
