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
 * "<name>.gz" and falling back to the extracted "<name>". Validates magic
 * numbers, 28x28 dimensions, a non-zero count, image and label counts against
 * each other, labels in 0..9, the gzip stream, and the payload sizes against
 * the headers (a truncated or overlong file is an error). Returns 0, or -1
 * with a one-line error naming the file and what was expected. On error ds is
 * left empty. */
int sg_mnist_load(sg_dataset *ds, const char *dir, int train);
void sg_dataset_free(sg_dataset *ds);

#endif
