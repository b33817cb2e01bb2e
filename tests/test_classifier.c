/* test_classifier.c: the evaluation classifier -- its file checks, its
 * forward pass against a double-precision reference, reproducible training,
 * and the shipped models' accuracy.
 *
 * Usage: test_classifier MODELS_DIR (ctest: the build's copy of models/).
 * Works without data (a synthetic set trains the classifier); with
 * $SIMDGAN_DATA pointing at MNIST it measures the shipped MNIST classifier on
 * the MNIST test set, and with /usr/share/datasets/fashion-mnist present the
 * Fashion-MNIST one on its test set. Scratch files go into a fresh folder
 * under /tmp, removed at the end. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "classifier.h"
#include "cpu.h"
#include "safetensors.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IMG 784
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static char tmp_root[] = "/tmp/simdgan_test_classifier_XXXXXX";
static char tmp_files[8][600];
static int n_tmp;

static const char *tmp_path(const char *name)
{
    char *p = tmp_files[n_tmp++];
    snprintf(p, sizeof tmp_files[0], "%s/%s", tmp_root, name);
    return p;
}

static int read_all(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(*len ? *len : 1);
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    return got == *len ? 0 : -1;
}

/* A learnable synthetic set: class k is a bright 4x4 block at its own place
 * on a noisy background (noise from a fixed hash). */
static void synthetic(sg_dataset *ds, size_t n)
{
    ds->n = n, ds->rows = 28, ds->cols = 28;
    ds->images = malloc(n * IMG);
    ds->labels = malloc(n);
    for (size_t i = 0; i < n; i++) {
        int k = (int)((i * 7 + i / 13) % 10);
        ds->labels[i] = (uint8_t)k;
        for (int p = 0; p < IMG; p++) {
            uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(p * 40503u);
            h = (h ^ (h >> 15)) * 2246822519u;
            ds->images[i * IMG + p] = (uint8_t)((h >> 24) % 96);
        }
        int r0 = 4 + (k / 5) * 12, c0 = 2 + (k % 5) * 5;
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) ds->images[i * IMG + (r0 + r) * 28 + c0 + c] = 255;
    }
}

static void to_float(float *x, const sg_dataset *ds, size_t first, size_t n)
{
    for (size_t j = 0; j < n * IMG; j++)
        x[j] = ((float)ds->images[first * IMG + j] / 255.0f - 0.5f) / 0.5f;
}

/* The forward pass in double from the file's tensors: features [n, H] and
 * probabilities [n, 10]. */
static int reference(const char *path, const float *x, size_t n, double *feat, double *prob)
{
    sg_st_file *f = sg_st_open(path);
    if (!f) return -1;
    int nd;
    int64_t s[SG_ST_MAX_DIMS];
    const float *W0 = sg_st_get(f, "0.weight", &nd, s), *b0 = sg_st_get(f, "0.bias", &nd, s);
    const size_t H = (size_t)s[0];
    const float *W1 = sg_st_get(f, "2.weight", &nd, s), *b1 = sg_st_get(f, "2.bias", &nd, s);
    const float *W2 = sg_st_get(f, "4.weight", &nd, s), *b2 = sg_st_get(f, "4.bias", &nd, s);
    double *h0 = malloc(H * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < H; j++) {
            double a = b0[j];
            for (size_t p = 0; p < IMG; p++) a += (double)W0[j * IMG + p] * x[i * IMG + p];
            h0[j] = a > 0 ? a : 0;
        }
        double *h1 = feat + i * H, z[10], m = -1e300, sum = 0;
        for (size_t j = 0; j < H; j++) {
            double a = b1[j];
            for (size_t p = 0; p < H; p++) a += (double)W1[j * H + p] * h0[p];
            h1[j] = a > 0 ? a : 0;
        }
        for (int j = 0; j < 10; j++) {
            z[j] = b2[j];
            for (size_t p = 0; p < H; p++) z[j] += (double)W2[j * H + p] * h1[p];
            m = z[j] > m ? z[j] : m;
        }
        for (int j = 0; j < 10; j++) sum += exp(z[j] - m);
        for (int j = 0; j < 10; j++) prob[i * 10 + j] = exp(z[j] - m) / sum;
    }
    free(h0);
    sg_st_close(f);
    return 0;
}

/* Forward of c on a few images of ds against the double reference of the
 * file at path; probabilities sum to 1. */
static void check_forward(sg_classifier *c, sg_engine *e, const char *path, const sg_dataset *ds)
{
    const size_t n = 7, H = (size_t)sg_classifier_features_dim(c);
    float *x = malloc(n * IMG * sizeof(float)), *feat = malloc(n * H * sizeof(float));
    float prob[7 * 10];
    double *rf = malloc(n * H * sizeof(double)), rp[7 * 10];
    to_float(x, ds, 3, n);
    sg_classifier_run(c, e, x, n, feat, prob);
    CHECK(reference(path, x, n, rf, rp) == 0, "%s", sg_last_error());
    double df = check_close("features", feat, rf, n * H, 1e-5, 1e-4);
    double dp = check_close("probabilities", prob, rp, n * 10, 1e-6, 1e-4);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < 10; j++) {
            s += prob[i * 10 + j];
            CHECK(prob[i * 10 + j] >= 0.0f && prob[i * 10 + j] <= 1.0f, "probability %g",
                  (double)prob[i * 10 + j]);
        }
        worst = fabs(s - 1.0) > worst ? fabs(s - 1.0) : worst;
    }
    CHECK(worst < 1e-5, "probabilities sum to 1 within %g", worst);
    printf("  forward of %s against double: max diff features %.3g, probabilities %.3g; "
           "|sum - 1| <= %.3g\n", sg_classifier_id(c), df, dp, worst);
    free(x), free(feat), free(rf);
}

/* One error, one line, naming the file and containing `what`. */
static void check_refused(const char *path, const char *what)
{
    sg_classifier *c = sg_classifier_load(path);
    const char *err = sg_last_error();
    CHECK(c == NULL, "%s was accepted", path);
    CHECK(strstr(err, path) && strstr(err, what) && !strchr(err, '\n'),
          "error for %s: '%s', expected one line naming it and saying '%s'", path, err, what);
    sg_classifier_free(c);
}

static void bad_files(const float *junk)
{
    /* The GAN's checkpoints: G's first layer is [256, 64], D's last [1, 256]. */
    static const int64_t g[6][2] = {{256, 64}, {256, 0}, {256, 256}, {256, 0}, {784, 256}, {784, 0}};
    static const int64_t d[6][2] = {{256, 784}, {256, 0}, {256, 256}, {256, 0}, {1, 256}, {1, 0}};
    static const char *const names[6] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
                                         "4.bias"};
    const int64_t (*shapes[2])[2] = {g, d};
    const char *paths[2] = {tmp_path("G.safetensors"), tmp_path("D.safetensors")};
    for (int k = 0; k < 2; k++) {
        sg_st_tensor t[6];
        for (int i = 0; i < 6; i++) {
            t[i].name = names[i], t[i].data = junk, t[i].ndim = i % 2 ? 1 : 2;
            t[i].shape[0] = shapes[k][i][0], t[i].shape[1] = shapes[k][i][1];
        }
        CHECK(sg_st_write(paths[k], t, 6, NULL, 0) == 0, "%s", sg_last_error());
    }
    check_refused(paths[0], "0.weight has shape [256,64]");
    check_refused(paths[1], "4.weight has shape [1,256]");
    check_refused(tmp_path("missing.safetensors"), "missing.safetensors");
    /* A classifier with an extra tensor, and one with a NaN. */
    static float nan_junk[784 * 16];
    memcpy(nan_junk, junk, sizeof nan_junk);
    nan_junk[100] = NAN;
    sg_st_tensor t[7];
    const int64_t c[7][2] = {{16, 784}, {16, 0}, {16, 16}, {16, 0}, {10, 16}, {10, 0}, {3, 0}};
    const char *cn[7] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias", "extra"};
    for (int i = 0; i < 7; i++) {
        t[i].name = cn[i], t[i].data = junk, t[i].ndim = c[i][1] ? 2 : 1;
        t[i].shape[0] = c[i][0], t[i].shape[1] = c[i][1];
    }
    const char *extra = tmp_path("extra.safetensors"), *nan = tmp_path("nan.safetensors");
    CHECK(sg_st_write(extra, t, 7, NULL, 0) == 0, "%s", sg_last_error());
    check_refused(extra, "7 tensors");
    t[0].data = nan_junk;
    CHECK(sg_st_write(nan, t, 6, NULL, 0) == 0, "%s", sg_last_error());
    check_refused(nan, "non-finite");
    /* The same file without the NaN loads. */
    t[0].data = junk;
    CHECK(sg_st_write(nan, t, 6, NULL, 0) == 0, "%s", sg_last_error());
    sg_classifier *ok = sg_classifier_load(nan);
    CHECK(ok && sg_classifier_features_dim(ok) == 16, "a 784-16-16-10 file: %s", sg_last_error());
    sg_classifier_free(ok);
}

/* One short training run at 1 and 2 threads: the same file bytes; the
 * saved file loads back to the same outputs; it learned the synthetic set. */
static void training(const sg_kernels *k, const sg_dataset *ds)
{
    sg_classifier_opts o;
    sg_classifier_opts_default(&o);
    o.epochs = 1, o.hidden = 64, o.seed = 7;
    const char *path[2] = {tmp_path("c1.safetensors"), tmp_path("c2.safetensors")};
    unsigned char *bytes[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    sg_classifier *kept = NULL;
    sg_engine e[2];
    for (int t = 0; t < 2; t++) {
        CHECK(sg_engine_init(&e[t], k, t + 1) == 0, "%s", sg_last_error());
        sg_classifier *c = sg_classifier_train(&o, &e[t], ds, ds, NULL);
        CHECK(c != NULL, "training: %s", sg_last_error());
        if (!c) return;
        CHECK(sg_classifier_features_dim(c) == 64, "features_dim %d", sg_classifier_features_dim(c));
        CHECK(sg_classifier_save(c, path[t]) == 0, "%s", sg_last_error());
        CHECK(read_all(path[t], &bytes[t], &len[t]) == 0, "cannot read %s", path[t]);
        if (t == 0) kept = c;
        else sg_classifier_free(c);
    }
    CHECK(len[0] == len[1] && len[0] > 0 && memcmp(bytes[0], bytes[1], len[0]) == 0,
          "1 and 2 threads wrote different files (%zu and %zu bytes)", len[0], len[1]);
    double acc = sg_classifier_accuracy(kept, &e[1], ds);
    CHECK(acc > 0.5, "accuracy %.4f on the synthetic set after one epoch; expected > 0.5", acc);
    printf("  one epoch on %zu synthetic images: accuracy %.4f, same %zu bytes at 1 and 2 "
           "threads\n", ds->n, acc, len[0]);

    /* Saved and loaded: the same outputs bit for bit, at either thread count. */
    sg_classifier *back = sg_classifier_load(path[0]);
    CHECK(back != NULL, "%s", sg_last_error());
    if (back) {
        const size_t n = 600, H = 64; /* more than one forward chunk */
        float *x = malloc(n * IMG * sizeof(float));
        float *f[3], *p[3];
        to_float(x, ds, 0, n);
        for (int i = 0; i < 3; i++) {
            f[i] = malloc(n * H * sizeof(float)), p[i] = malloc(n * 10 * sizeof(float));
            sg_classifier_run(i ? back : kept, &e[i == 2], x, n, f[i], p[i]);
        }
        for (int i = 1; i < 3; i++)
            CHECK(!memcmp(f[0], f[i], n * H * sizeof(float)) &&
                      !memcmp(p[0], p[i], n * 10 * sizeof(float)),
                  "loaded classifier (%d threads) differs from the trained one", i);
        const char *id = sg_classifier_id(back), *crc = strstr(id, " (crc32 ");
        CHECK(!strncmp(id, "simdgan-mlp784-64-64-10-mnist (crc32 ", 37) && crc &&
                  strlen(crc) == 8 + 8 + 1 && crc[16] == ')',
              "id '%s'", id);
        check_forward(back, &e[1], path[0], ds);
        for (int i = 0; i < 3; i++) free(f[i]), free(p[i]);
        free(x);
    }
    sg_classifier_free(back);
    sg_classifier_free(kept);
    sg_engine_free(&e[0]), sg_engine_free(&e[1]);
    free(bytes[0]), free(bytes[1]);
}

/* The shipped classifier of a dataset on its test set, when the data is here. */
static void shipped(const char *dataset, const char *dir, double floor, sg_engine *e)
{
    sg_classifier *c = sg_classifier_shipped(dataset);
    CHECK(c != NULL, "shipped %s: %s", dataset, sg_last_error());
    if (!c) return;
    CHECK(sg_classifier_features_dim(c) == 256, "features_dim %d", sg_classifier_features_dim(c));
    char path[4200];
    snprintf(path, sizeof path, "%s/classifier-%s.safetensors", getenv("SIMDGAN_MODELS"), dataset);
    sg_st_file *f = sg_st_open(path);
    const char *meta = f ? sg_st_meta(f, "test_accuracy") : NULL;
    double recorded = meta ? atof(meta) : -1.0;
    CHECK(f && meta && !strcmp(sg_st_meta(f, "dataset"), dataset), "%s: metadata", path);
    sg_st_close(f);
    sg_dataset test = {0};
    if (!dir || sg_mnist_load(&test, dir, 0) != 0) {
        printf("  skipped %s accuracy: no test set (%s)\n", dataset,
               dir ? sg_last_error() : "set SIMDGAN_DATA to the MNIST folder");
        sg_classifier_free(c);
        return;
    }
    double acc = sg_classifier_accuracy(c, e, &test);
    CHECK(acc >= floor, "%s: accuracy %.4f on the %s test set; expected >= %.3f",
          sg_classifier_id(c), acc, dataset, floor);
    /* Another ISA may round a borderline image differently, not ten of them. */
    CHECK(fabs(acc - recorded) <= 1e-3, "%s: accuracy %.4f, its metadata says %.4f",
          sg_classifier_id(c), acc, recorded);
    printf("  %s: accuracy %.4f on the %s test set (%zu images; recorded %.4f; floor %.3f)\n",
           sg_classifier_id(c), acc, dataset, test.n, recorded, floor);
    check_forward(c, e, path, &test);
    sg_dataset_free(&test);
    sg_classifier_free(c);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_classifier MODELS_DIR\n");
        return 2;
    }
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    char why[256];
    const sg_kernels *k = sg_kernels_select(NULL, why, sizeof why);
    if (!k) {
        fprintf(stderr, "test_classifier: %s\n", sg_last_error());
        return 1;
    }
    printf("test_classifier: %s kernels\n", k->isa);

    static float junk[784 * 256];
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) junk[i] = (float)((int)(i % 97) - 48) / 512.0f;
    bad_files(junk);

    sg_dataset syn;
    synthetic(&syn, 3000);
    training(k, &syn);
    free(syn.images), free(syn.labels);

    /* Lookup: an unknown dataset, then a folder with nothing in it. */
    CHECK(sg_classifier_shipped("cifar") == NULL && strstr(sg_last_error(), "cifar"), "cifar: %s",
          sg_last_error());
    setenv("SIMDGAN_MODELS", tmp_root, 1);
    CHECK(sg_classifier_shipped("mnist") == NULL && strstr(sg_last_error(), tmp_root) &&
              strstr(sg_last_error(), "classifier-mnist.safetensors: not found"),
          "empty SIMDGAN_MODELS: %s", sg_last_error());

    setenv("SIMDGAN_MODELS", argv[1], 1);
    sg_engine e;
    CHECK(sg_engine_init(&e, k, 2) == 0, "%s", sg_last_error());
    const char *mnist = getenv("SIMDGAN_DATA");
    shipped("mnist", mnist && *mnist ? mnist : NULL, 0.985, &e);
    shipped("fashion-mnist", access(FASHION_DIR, R_OK) == 0 ? FASHION_DIR : NULL, 0.89, &e);
    sg_engine_free(&e);

    for (int i = 0; i < n_tmp; i++) unlink(tmp_files[i]);
    rmdir(tmp_root);
    return check_finish("test_classifier");
}
