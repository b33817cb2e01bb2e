/* png.c: a minimal PNG writer and torchvision's save_image grid.
 *
 * The PNG is 8-bit RGB, not interlaced, every row with filter type 0 (None),
 * one IDAT chunk compressed by zlib's compress2; chunk CRCs by zlib's crc32.
 * The grid reproduces torchvision 0.14's save_image(denorm(x)) bit for bit:
 * the arithmetic is done in float32 in the same order as PyTorch's
 * ((x + 1) / 2, clamp to [0, 1], * 255, + 0.5, clamp to [0, 255], truncate to
 * uint8), so decoded pixels compare equal to PyTorch's. */
#include "png.h"

#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* PNG limits width and height to 2^31 - 1; we also keep the raw image under
 * zlib's uLong and our size_t. */
#define PNG_MAX_SIDE 0x7fffffff

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* One chunk: length, type, data, CRC over type and data. */
static void write_chunk(FILE *f, const char type[4], const unsigned char *data, size_t len)
{
    unsigned char word[4];
    put_be32(word, (uint32_t)len);
    fwrite(word, 1, 4, f);
    fwrite(type, 1, 4, f);
    if (len) fwrite(data, 1, len, f);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (len) crc = crc32(crc, data, (uInt)len);
    put_be32(word, (uint32_t)crc);
    fwrite(word, 1, 4, f);
}

int sg_png_write_rgb(const char *path, const uint8_t *rgb, int width, int height)
{
    if (width <= 0 || height <= 0 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE)
        return sg_error("%s: image is %dx%d; expected positive width and height", path, width,
                        height);
    size_t row = 1 + 3 * (size_t)width;
    if ((size_t)height > (size_t)0xffffffffu / row)
        return sg_error("%s: image is %dx%d; too large for one IDAT chunk", path, width, height);

    /* Raw scanlines: a filter byte (0) then the row's RGB bytes. [height, row] */
    size_t raw_len = row * (size_t)height;
    unsigned char *raw = sg_xmalloc(raw_len);
    for (int y = 0; y < height; y++) {
        raw[y * row] = 0;
        memcpy(raw + y * row + 1, rgb + (size_t)y * 3 * (size_t)width, 3 * (size_t)width);
    }
    uLongf z_len = compressBound((uLong)raw_len);
    unsigned char *z = sg_xmalloc(z_len);
    int zret = compress2(z, &z_len, raw, (uLong)raw_len, 6);
    free(raw);
    if (zret != Z_OK || z_len > 0x7fffffffu) {
        free(z);
        return sg_error("%s: zlib compression failed (%d)", path, zret);
    }

    sg_outfile o;
    if (sg_out_open(&o, path) != 0) {
        free(z);
        return -1;
    }
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)width);
    put_be32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;   /* bit depth             */
    ihdr[9] = 2;   /* colour type: RGB      */
    ihdr[10] = 0;  /* compression: deflate  */
    ihdr[11] = 0;  /* filter method 0       */
    ihdr[12] = 0;  /* no interlace          */
    fwrite(signature, 1, sizeof signature, o.f);
    write_chunk(o.f, "IHDR", ihdr, sizeof ihdr);
    write_chunk(o.f, "IDAT", z, z_len);
    write_chunk(o.f, "IEND", NULL, 0);
    free(z);
    return sg_out_commit(&o);
}

void sg_grid_size(int B, int h, int w, int *width, int *height)
{
    sg_grid_size_nrow(B, h, w, 8, width, height);
}

void sg_grid_size_nrow(int B, int h, int w, int nrow, int *width, int *height)
{
    if (B == 1) {   /* make_grid returns a lone image as it is, unpadded */
        *width = w;
        *height = h;
        return;
    }
    int cols = B < nrow ? B : nrow;
    int rows = cols > 0 ? (B + cols - 1) / cols : 0;
    *width = (w + 2) * cols + 2;
    *height = (h + 2) * rows + 2;
}

/* One value in [-1, 1] to a byte, in float32 exactly as torchvision does it. */
static uint8_t to_byte(float x)
{
    float v = (x + 1.0f) / 2.0f;
    v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;   /* a NaN stays NaN here ... */
    float t = v * 255.0f + 0.5f;
    if (!(t >= 0.0f)) return 0;                   /* ... and becomes 0 here   */
    if (t > 255.0f) t = 255.0f;
    return (uint8_t)t;
}

int sg_save_grid(const char *path, const float *images, int B, int h, int w)
{
    return sg_save_grid_nrow(path, images, B, h, w, 8);
}

int sg_save_grid_nrow(const char *path, const float *images, int B, int h, int w, int nrow)
{
    if (B <= 0 || h <= 0 || w <= 0 || h > 65536 || w > 65536 || B > 65536)
        return sg_error("%s: grid of %d images of %dx%d; expected 1..65536 images of at most "
                        "65536x65536", path, B, h, w);
    if (nrow < 1 || nrow > 65536)
        return sg_error("%s: grid with %d images per row; expected 1..65536", path, nrow);
    int cols = B < nrow ? B : nrow, rows = (B + cols - 1) / cols, pad = B == 1 ? 0 : 2;
    if ((w + 2LL) * cols + 2 > PNG_MAX_SIDE || (h + 2LL) * rows + 2 > PNG_MAX_SIDE)
        return sg_error("%s: grid of %d images of %dx%d, %d per row, is too large for a PNG",
                        path, B, h, w, nrow);
    int width, height;
    sg_grid_size_nrow(B, h, w, nrow, &width, &height);

    /* [height, width, 3], black padding */
    uint8_t *rgb = sg_xmalloc((size_t)width * (size_t)height * 3);
    memset(rgb, 0, (size_t)width * (size_t)height * 3);
    for (int k = 0; k < B; k++) {
        const float *img = images + (size_t)k * (size_t)h * (size_t)w;   /* [h, w] */
        size_t x0 = (size_t)(k % cols) * (size_t)(w + pad) + (size_t)pad;
        size_t y0 = (size_t)(k / cols) * (size_t)(h + pad) + (size_t)pad;
        for (int r = 0; r < h; r++) {
            uint8_t *dst = rgb + ((y0 + (size_t)r) * (size_t)width + x0) * 3;
            for (int c = 0; c < w; c++) {
                uint8_t b = to_byte(img[(size_t)r * (size_t)w + (size_t)c]);
                dst[3 * c] = dst[3 * c + 1] = dst[3 * c + 2] = b;
            }
        }
    }
    int ret = sg_png_write_rgb(path, rgb, width, height);
    free(rgb);
    return ret;
}
