/* png.h: 8-bit RGB PNG output and torchvision's save_image grid. */
#ifndef SIMDGAN_PNG_H
#define SIMDGAN_PNG_H

#include <stdint.h>

/* Writes an 8-bit RGB PNG (zlib-compressed IDAT, CRCs) atomically: to a
 * temporary name, renamed into place when complete. 0, or -1 with error. */
int sg_png_write_rgb(const char *path, const uint8_t *rgb, int width, int height);

/* torchvision.utils.save_image(denorm(x), nrow=8) for B single-channel h x w images
 * in [-1, 1] stored [B, h * w]: denorm clamp((x + 1) / 2, 0, 1), to uint8 as
 * floor(v * 255 + 0.5) clamped to [0, 255], make_grid with nrow 8, padding
 * 2, pad value 0, written as RGB with three equal channels. The grid is
 * ((w + 2) cols + 2) x ((h + 2) rows + 2) with cols = min(8, B),
 * rows = ceil(B / cols); image k at x = (k % cols)(w + 2) + 2,
 * y = (k / cols)(h + 2) + 2. 242 x 392 for 100 MNIST images. A single image
 * (B = 1) is written as it is, h x w with no padding, as make_grid does. */
int sg_save_grid(const char *path, const float *images, int B, int h, int w);
/* The same with nrow images per row (make_grid's nrow, 1..65536): cols =
 * min(nrow, B), rows = ceil(B / cols), the layout above otherwise. */
int sg_save_grid_nrow(const char *path, const float *images, int B, int h, int w, int nrow);

/* The grid's pixel size, for callers that want it without writing. */
void sg_grid_size(int B, int h, int w, int *width, int *height);
void sg_grid_size_nrow(int B, int h, int w, int nrow, int *width, int *height);

#endif
