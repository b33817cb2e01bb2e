/* mnist.h: the MNIST / Fashion-MNIST IDX files, gzip-compressed or extracted.
 *
 * The four files keep their original names (train-images-idx3-ubyte[.gz],
 * train-labels-idx1-ubyte[.gz], t10k-...). Images are IDX3 (magic 0x00000803,
 * n, 28, 28; 16-byte header), labels IDX1 (magic 0x00000801, n; 8-byte
 * header), all big-endian, uint8 payload. */
#ifndef SIMDGAN_MNIST_H
#define SIMDGAN_MNIST_H

#include <stddef.h>
#include <stdint.h>

typedef struct sg_dataset {
    size_t n;          /* number of images                     */
    int rows, cols;    /* 28, 28                               */
    uint8_t *images;   /* [n, rows * cols] row-major pixels    */
    uint8_t *labels;   /* [n]                                  */
    uint32_t crc;      /* CRC-32 (zlib's) of the image payload then the label
                        * payload, headers excluded: the checksum of the
                        * training files that checkpoints record */
    const char *known; /* "mnist" or "fashion-mnist" when the images are that
                        * dataset's published file (size and CRC-32 of its
                        * payload), NULL for any other files */
} sg_dataset;

/* Finds the folder holding the dataset's files. dataset is "mnist" or
 * "fashion-mnist". Order: flag_dir (--data) if not NULL, then $SIMDGAN_DATA,
 * then ./data/MNIST/raw (torchvision's layout; ./data/FashionMNIST/raw for
 * fashion-mnist), then ./data/mnist (./data/fashion-mnist), then for
 * fashion-mnist /usr/share/datasets/fashion-mnist. A folder counts when it
 * holds the training images file, .gz or extracted. With flag_dir or
 * $SIMDGAN_DATA set, only that folder is tried. Writes the folder into out and
 * returns 0, or returns -1 with an error naming every place looked in. */
int sg_data_find(char *out, size_t cap, const char *flag_dir, const char *dataset);

/* Loads the training set (train != 0) or the test set from dir, preferring
 * "<name>.gz" and falling back to the extracted "<name>"; a file is gzip when
 * it starts with the gzip magic, whatever its name. Each name must be a
 * regular file (or a symlink to one): a FIFO, a folder, a broken symlink or a
 * symlink loop is named as such. Both headers are checked before either
 * payload is read: magic numbers, 28x28 dimensions, a count in
 * 1..SG_MNIST_MAX_ITEMS, equal image and label counts. Then exactly the
 * declared payload is allocated and filled; a file with fewer bytes
 * (truncated) or more (overlong: decompression stops a few KiB past the
 * declared size) is an error, as are a gzip member without its complete
 * CRC-32/ISIZE trailer or with wrong ones, anything after the last gzip
 * member, and labels outside 0..9. Fills ds->crc and ds->known (see above);
 * images of one known dataset with labels of the other are an error. Returns
 * 0, or -1 with a one-line error naming the file and what was expected. On
 * error ds is left empty. */
int sg_mnist_load(sg_dataset *ds, const char *dir, int train);
void sg_dataset_free(sg_dataset *ds);

/* The most images (and labels) a file may declare: 784 MB of pixels. */
#define SG_MNIST_MAX_ITEMS 1000000u

/* Whether the loaded files may stand for dataset ("mnist" or
 * "fashion-mnist"), dir being the folder they came from (for the message).
 * 0 when ds->known is dataset or NULL (files that are not a known dataset are
 * accepted); -1 with a one-line error when they are the other known
 * dataset's files or dataset is neither name. */
int sg_dataset_check(const sg_dataset *ds, const char *dataset, const char *dir);

#endif
