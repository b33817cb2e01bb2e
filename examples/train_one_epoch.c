/* train_one_epoch.c: libsimdgan from a program, through its public API only.
 *
 * Trains the tutorial's GAN for one epoch on the IDX files in DATA, printing
 * a line per log interval from the callback, then draws 16 images and writes
 * them as a 4x4 grid, OUT/samples-16.pgm, and the weights as
 * OUT/G.safetensors and OUT/D.safetensors (loadable in PyTorch).
 *
 *     train_one_epoch DATA [OUT [LOG_EVERY]]      (OUT: example-out, LOG_EVERY: 100)
 *
 * Build against an installed simdgan, with pkg-config:
 *     cc train_one_epoch.c $(pkg-config --cflags --libs simdgan) -o train_one_epoch
 * or with CMake (CMakeLists.txt beside this file):
 *     cmake -S . -B build -DCMAKE_PREFIX_PATH=PREFIX && cmake --build build
 *
 * Exit status: simdgan's (0 done, 2 bad input, 3 diverged, 130 stopped). */
#include <stdio.h>
#include <stdlib.h>

#include <simdgan.h>

enum { N = 16, SIDE = 28, COLS = 4 };

static int on_log(void *user, const simdgan_log *l)
{
    int *lines = user;
    ++*lines;
    printf("epoch %d/%d, step %ld/%ld: d_loss %.4f, g_loss %.4f, D(x) %.2f, D(G(z)) %.2f, %.2f ms/step\n",
           l->epoch, l->epochs, l->step, l->steps, l->d_loss, l->g_loss, l->d_x, l->d_g_z,
           l->ms_per_step);
    return 0; /* non-zero would stop the run, its state written */
}

/* images [N, SIDE*SIDE] in [-1, 1] as one binary PGM, COLS images a row. */
static int write_pgm(const char *path, const float *images)
{
    const int w = COLS * SIDE, h = (N / COLS) * SIDE;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    fprintf(f, "P5\n%d %d\n255\n", w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float v = images[((y / SIDE) * COLS + x / SIDE) * SIDE * SIDE + (y % SIDE) * SIDE + x % SIDE];
            fputc((int)((v + 1.0f) * 127.5f + 0.5f), f);
        }
    return fclose(f) ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s DATA [OUT [LOG_EVERY]]\n", argv[0]);
        return 2;
    }
    char path[4096];
    simdgan_config c;
    simdgan_config_init(&c); /* the tutorial's settings */
    c.data = argv[1];
    c.out = argc > 2 ? argv[2] : "example-out";
    c.log_every = argc > 3 ? atoi(argv[3]) : 100;
    c.epochs = 1;
    c.quiet = 1; /* the callback prints the log */
    printf("simdgan %s (API %d), kernels: %s\n", simdgan_version(), simdgan_api_version(),
           simdgan_isa());

    simdgan_trainer *t;
    int rc = simdgan_trainer_open(&c, &t);
    if (rc != SIMDGAN_OK) {
        fprintf(stderr, "train_one_epoch: %s\n", simdgan_last_error());
        return rc;
    }
    int lines = 0;
    static float images[N * SIDE * SIDE];
    if ((rc = simdgan_trainer_fit(t, 1, on_log, &lines)) == SIMDGAN_OK &&
        (rc = simdgan_trainer_sample(t, N, 0, images)) == SIMDGAN_OK)
        rc = simdgan_trainer_save(t, c.out);
    if (rc != SIMDGAN_OK) {
        fprintf(stderr, "train_one_epoch: %s\n", simdgan_last_error());
        simdgan_trainer_close(t);
        return rc;
    }
    printf("%ld steps, %d log lines\n", simdgan_trainer_step(t), lines);
    simdgan_trainer_close(t);

    snprintf(path, sizeof path, "%s/samples-16.pgm", c.out);
    if (write_pgm(path, images) != 0) {
        fprintf(stderr, "train_one_epoch: %s: cannot write it\n", path);
        return 2;
    }
    printf("wrote %s, %s/G.safetensors, %s/D.safetensors\n", path, c.out, c.out);
    return 0;
}
