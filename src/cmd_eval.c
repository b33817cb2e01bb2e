/* cmd_eval.c: the `simdgan sample` and `simdgan eval` commands (commands.h):
 * flags, a G file and its images, the evaluation's report as a table or as
 * one JSON object. */
#define _POSIX_C_SOURCE 200809L
#include "commands.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "eval.h"
#include "png.h"
#include "sample.h"
#include "train.h"
#include "util.h"

#define IMG_SIDE 28
#define IMG (IMG_SIDE * IMG_SIDE)

static const char usage_sample[] =
    "usage: simdgan sample --g FILE [flags]\n"
    "\n"
    "Draws images from a G: G.safetensors from simdgan train, or the tutorial's\n"
    "nn.Sequential state_dict saved as safetensors from PyTorch (keys 0.weight ...\n"
    "4.bias; the latent and hidden sizes come from the shapes). Writes them as one\n"
    "grid, as torchvision's save_image(denorm(x), nrow=N, padding=2) does.\n"
    "\n"
    "flags:\n"
    "  --g FILE            the G file (required)\n"
    "  -n N                images, 1 to 65536 (64)\n"
    "  --seed S            seed of z (0): a seed always draws the same z, and the\n"
    "                      first images of a larger -n are those of a smaller one\n"
    "  --nrow N            images per grid row (8)\n"
    "  --out FILE          the grid (grid.png; with --each, only when given)\n"
    "  --each DIR          write every image as DIR/NNNNN.png (28x28), from 00000\n"
    "  --interpolate A,B[,C...]\n"
    "                      the latent walk: from the z of seed A (the first image of\n"
    "                      --seed A) to that of seed B in --steps equal steps, ends\n"
    "                      included; one grid row per consecutive pair of seeds\n"
    "  --steps K           images per --interpolate row, 2 to 65536 (8)\n"
    "  --threads N         threads (default: OMP_NUM_THREADS, else physical cores)\n"
    "  --isa NAME          ref, avx2, avx512 or neon (default: best for this CPU)\n"
    "  -h, --help          this text\n";

static const char usage_eval[] =
    "usage: simdgan eval --g FILE [flags]\n"
    "       simdgan eval --real [flags]\n"
    "\n"
    "Measures a G's images in the evaluation classifier's penultimate features\n"
    "(the shipped models/classifier-<dataset>.safetensors; its name and CRC-32,\n"
    "the extractor, are printed with the figures: figures from different\n"
    "extractors are not comparable) against the dataset's test images:\n"
    "\n"
    "  FCD        Frechet classifier distance, the FID recipe with this classifier\n"
    "             as the extractor; lower is better\n"
    "  floor      the same distance between the training and the test set: the\n"
    "             FCD of images as good as real ones\n"
    "  score      classifier score exp(E KL(p(y|x) || p(y))), 1 to 10 (the test\n"
    "             set itself scores 9.62 with the shipped MNIST classifier)\n"
    "  classes    the histogram of predicted classes, the classes predicted at\n"
    "             least once, and the histogram's KL to uniform (mode collapse)\n"
    "  precision  the fraction of generated images inside the test set's k-NN\n"
    "             balls (k = 3); recall: the fraction of test images inside the\n"
    "             generated images' balls (Kynkaanniemi et al. 2019)\n"
    "\n"
    "flags:\n"
    "  --g FILE            the G file (as simdgan sample)\n"
    "  --real              no G: the floor and the test set's score alone\n"
    "  -n N                generated images, 2 to 100000 (10000)\n"
    "  --seed S            seed of z (0): the images of simdgan sample --seed S\n"
    "  --dataset NAME      mnist or fashion-mnist (default: the G file's\n"
    "                      __metadata__ \"dataset\", else mnist)\n"
    "  --data DIR          folder with the four IDX files, .gz or extracted\n"
    "                      (default: $SIMDGAN_DATA, ./data/MNIST/raw, ./data/mnist)\n"
    "  --classifier FILE   this classifier file instead of the shipped one\n"
    "  --json              one JSON object on stdout with every figure\n"
    "  --threads N         threads (default: OMP_NUM_THREADS, else physical cores)\n"
    "  --isa NAME          ref, avx2, avx512 or neon (default: best for this CPU)\n"
    "  -h, --help          this text\n"
    "\n"
    "environment: SIMDGAN_MODELS=DIR  where the shipped classifiers are\n";

static int bad(const char *fmt, ...) SG_PRINTF(1, 2);
static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("simdgan: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

/* ---- flags --------------------------------------------------------------- */

typedef struct flag_def {
    const char *name;
    int value;   /* takes a value */
} flag_def;

/* Reads the flag at argv[*i] (and its value, as "--flag value" or
 * "--flag=value") into flag and *val, advancing *i. Returns 0, 1 for -h or
 * --help, or 2 after printing the error. */
static int next_flag(int argc, char **argv, int *i, const flag_def *defs, const char *cmd,
                     char flag[32], const char **val)
{
    const char *arg = argv[*i];
    if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) return 1;
    if (arg[0] != '-') return bad("unexpected argument '%s'; see simdgan %s --help", arg, cmd);
    const char *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const flag_def *d = NULL;
    for (const flag_def *p = defs; p->name && len < 32; p++)
        if (strlen(p->name) == len && !strncmp(arg, p->name, len)) d = p;
    if (!d) return bad("unknown flag '%.*s'; see simdgan %s --help", (int)len, arg, cmd);
    memcpy(flag, arg, len);
    flag[len] = 0;
    *val = NULL;
    if (!d->value) {
        if (eq) return bad("%s takes no value", flag);
        return 0;
    }
    if (eq)
        *val = eq + 1;
    else if (*i + 1 < argc)
        *val = argv[++*i];
    else
        return bad("%s: expected a value", flag);
    return 0;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi)
        return bad("%s %s: expected an integer from %ld to %ld", flag, s, lo, hi);
    *out = v;
    return 0;
}

/* A seed: decimal, 0 to 2^64 - 1. With stop NULL the whole string must be
 * the number; otherwise *stop gets where the digits ended. */
static int parse_seed(const char *s, uint64_t *out, const char **stop)
{
    char *end;
    errno = 0;
    if (!(*s >= '0' && *s <= '9')) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || (!stop && *end)) return -1;
    if (stop) *stop = end;
    *out = (uint64_t)v;
    return 0;
}

/* --interpolate's seeds: two or more, comma-separated. *seeds is malloc'ed. */
static int parse_seeds(const char *s, uint64_t **seeds, size_t *count)
{
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *seeds = sg_xmalloc(cap * sizeof(uint64_t));
    *count = 0;
    const char *p = s;
    for (;;) {
        const char *end;
        if (parse_seed(p, &(*seeds)[*count], &end) != 0 || (*end && *end != ',')) break;
        ++*count;
        if (!*end) {
            if (*count >= 2) return 0;
            break;
        }
        p = end + 1;
    }
    free(*seeds);
    *seeds = NULL;
    return bad("--interpolate %s: expected two or more seeds (integers from 0 to 2^64 - 1) "
               "separated by commas, e.g. 1,2", s);
}

/* The kernel table and threads of --isa and --threads (0: the default). */
static int engine_open(sg_engine *e, const char *isa, int threads)
{
    char why[256];
    const char *nwhy;
    const sg_kernels *k = sg_kernels_select(isa, why, sizeof why);
    if (!k || (threads == 0 && sg_threads_default(&threads, &nwhy) != 0) ||
        sg_engine_init(e, k, threads) != 0)
        return bad("%s", sg_last_error());
    return 0;
}

/* ---- sample -------------------------------------------------------------- */

/* z [pairs * steps, L]: row p * steps + j is (1 - t) z_a + t z_b with
 * t = j / (steps - 1), z_a and z_b the first z of seeds[p] and seeds[p + 1];
 * t = 0 and t = 1 give the seeds' z exactly. */
static void interpolate_z(const sg_kernels *k, float *z, const uint64_t *seeds, size_t pairs,
                          size_t steps, int L)
{
    float *a = sg_xmalloc((size_t)L * sizeof(float)), *b = sg_xmalloc((size_t)L * sizeof(float));
    for (size_t p = 0; p < pairs; p++) {
        sg_sample_z(k, a, 1, L, seeds[p]);
        sg_sample_z(k, b, 1, L, seeds[p + 1]);
        for (size_t j = 0; j < steps; j++) {
            double t = (double)j / (double)(steps - 1);
            float *row = z + (p * steps + j) * (size_t)L;
            for (int i = 0; i < L; i++) row[i] = (float)((1.0 - t) * a[i] + t * b[i]);
        }
    }
    free(a), free(b);
}

int sg_cmd_sample(int argc, char **argv)
{
    static const flag_def defs[] = {{"--g", 1},    {"-n", 1},          {"--seed", 1},
                                    {"--nrow", 1}, {"--out", 1},       {"--each", 1},
                                    {"--steps", 1}, {"--interpolate", 1}, {"--threads", 1},
                                    {"--isa", 1},  {NULL, 0}};
    const char *gpath = NULL, *out = NULL, *each = NULL, *isa = NULL, *interp = NULL;
    long n = 64, nrow = 8, steps = 8, threads = 0;
    int n_given = 0, nrow_given = 0, steps_given = 0;
    uint64_t seed = 0;
    for (int i = 0; i < argc; i++) {
        char flag[32];
        const char *val;
        int rc = next_flag(argc, argv, &i, defs, "sample", flag, &val);
        if (rc == 1) {
            fputs(usage_sample, stdout);
            return 0;
        }
        if (rc) return rc;
        if (!strcmp(flag, "--g")) {
            gpath = val;
        } else if (!strcmp(flag, "-n")) {
            if (parse_long(flag, val, 1, 65536, &n)) return 2;
            n_given = 1;
        } else if (!strcmp(flag, "--seed")) {
            if (parse_seed(val, &seed, NULL))
                return bad("--seed %s: expected an integer from 0 to 2^64 - 1", val);
        } else if (!strcmp(flag, "--nrow")) {
            if (parse_long(flag, val, 1, 65536, &nrow)) return 2;
            nrow_given = 1;
        } else if (!strcmp(flag, "--out")) {
            if (!*val) return bad("--out: expected a file name");
            out = val;
        } else if (!strcmp(flag, "--each")) {
            if (!*val) return bad("--each: expected a folder");
            each = val;
        } else if (!strcmp(flag, "--steps")) {
            if (parse_long(flag, val, 2, 65536, &steps)) return 2;
            steps_given = 1;
        } else if (!strcmp(flag, "--interpolate")) {
            interp = val;
        } else if (!strcmp(flag, "--threads")) {
            if (parse_long(flag, val, 1, 1024, &threads)) return 2;
        } else {
            isa = val;
        }
    }
    if (!gpath)
        return bad("sample: expected --g FILE (a G.safetensors); see simdgan sample --help");
    uint64_t *seeds = NULL;
    size_t nseeds = 0, count = (size_t)n;
    if (interp) {
        if (n_given) return bad("-n: not with --interpolate, whose rows are --steps images each");
        if (nrow_given) return bad("--nrow: not with --interpolate, whose rows are --steps images");
        if (parse_seeds(interp, &seeds, &nseeds)) return 2;
        count = (nseeds - 1) * (size_t)steps;
        nrow = steps;
        if (count > 65536) {
            free(seeds);
            return bad("--interpolate %s --steps %ld: %zu images; expected at most 65536", interp,
                       steps, count);
        }
    } else if (steps_given) {
        return bad("--steps: only with --interpolate");
    }
    if (!out && !each) out = "grid.png";

    sg_engine e;
    if (engine_open(&e, isa, (int)threads)) {
        free(seeds);
        return 2;
    }
    sg_generator *g = sg_generator_load(gpath, &e, SG_GEN_ROWS);
    int rc = g ? 0 : bad("%s", sg_last_error());
    char path[4200];
    if (rc == 0 && each && sg_mkdir(each) != 0) rc = bad("--each %s: %s", each, sg_last_error());
    if (rc == 0) {
        int L = sg_generator_latent(g);
        float *z = sg_xmalloc(count * (size_t)L * sizeof(float));
        float *x = sg_xmalloc(count * IMG * sizeof(float));
        if (seeds)
            interpolate_z(e.k, z, seeds, nseeds - 1, (size_t)steps, L);
        else
            sg_sample_z(e.k, z, count, L, seed);
        sg_generator_run(g, z, count, x);
        if (out && sg_save_grid_nrow(out, x, (int)count, IMG_SIDE, IMG_SIDE, (int)nrow) != 0)
            rc = bad("%s", sg_last_error());
        for (size_t i = 0; rc == 0 && each && i < count; i++) {
            char name[32];
            snprintf(name, sizeof name, "%05zu.png", i);
            if (sg_join(path, sizeof path, each, name) != 0 ||
                sg_save_grid(path, x + i * IMG, 1, IMG_SIDE, IMG_SIDE) != 0)
                rc = bad("%s", sg_last_error());
        }
        if (rc == 0)
            fprintf(stderr, "simdgan: %zu images of %s (latent %d, hidden %d), %s; "
                            "wrote %s%s%s%s\n",
                    count, gpath, L, sg_generator_hidden(g),
                    seeds ? "latent walk" : "z from --seed",
                    out ? out : "", out && each ? " and " : "", each ? each : "",
                    each ? "/NNNNN.png" : "");
        free(z), free(x);
    }
    sg_generator_free(g);
    sg_engine_free(&e);
    free(seeds);
    return rc;
}

/* ---- eval ---------------------------------------------------------------- */

static json_t *real_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static void print_json(const sg_eval_result *r, const char *dataset, const char *gpath,
                       uint64_t seed)
{
    json_t *o = json_object();
    json_object_set_new(o, "extractor", json_string(r->extractor));
    json_object_set_new(o, "dataset", json_string(dataset));
    json_object_set_new(o, "n_train", json_integer((json_int_t)r->n_train));
    json_object_set_new(o, "n_test", json_integer((json_int_t)r->n_test));
    json_object_set_new(o, "fcd_floor", real_or_null(r->fcd_floor));
    json_object_set_new(o, "score_test", real_or_null(r->score_test));
    if (gpath) {
        json_t *hist = json_array();
        for (int c = 0; c < SG_CLASSES; c++)
            json_array_append_new(hist, json_integer((json_int_t)r->hist[c]));
        json_object_set_new(o, "g", json_string(gpath));
        json_object_set_new(o, "n", json_integer((json_int_t)r->n));
        json_object_set_new(o, "seed", json_integer((json_int_t)seed));
        json_object_set_new(o, "fcd", real_or_null(r->fcd));
        json_object_set_new(o, "score", real_or_null(r->score));
        json_object_set_new(o, "hist", hist);
        json_object_set_new(o, "covered", json_integer(r->covered));
        json_object_set_new(o, "kl_uniform", real_or_null(r->kl_uniform));
        json_object_set_new(o, "k", json_integer(SG_EVAL_K));
        json_object_set_new(o, "precision", real_or_null(r->precision));
        json_object_set_new(o, "recall", real_or_null(r->recall));
    }
    json_dumpf(o, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    fputc('\n', stdout);
    json_decref(o);
}

static void print_table(const sg_eval_result *r, const char *dataset, const char *gpath,
                        uint64_t seed)
{
    if (gpath)
        printf("%zu images of %s (seed %llu) against the %zu %s test images\n", r->n, gpath,
               (unsigned long long)seed, r->n_test, dataset);
    else
        printf("the %zu %s training images against the %zu test images\n", r->n_train, dataset,
               r->n_test);
    printf("extractor: %s\n\n", r->extractor);
    if (gpath) printf("  FCD                       %10.4f\n", r->fcd);
    printf("  FCD floor (train, test)   %10.4f\n", r->fcd_floor);
    if (gpath) printf("  classifier score          %10.4f   (at most 10)\n", r->score);
    printf("  classifier score, test    %10.4f\n", r->score_test);
    if (!gpath) return;
    printf("  classes covered           %10d   of %d\n", r->covered, SG_CLASSES);
    printf("  KL(classes || uniform)    %10.4f   nats\n", r->kl_uniform);
    if (isfinite(r->precision)) {
        printf("  precision (k = %d)         %10.4f\n", SG_EVAL_K, r->precision);
        printf("  recall (k = %d)            %10.4f\n", SG_EVAL_K, r->recall);
    } else {
        printf("  precision, recall               n/a   (fewer than %d images)\n", SG_EVAL_K + 1);
    }
    printf("  classes  ");
    for (int c = 0; c < SG_CLASSES; c++) printf(" %d: %zu", c, r->hist[c]);
    printf("\n");
}

int sg_cmd_eval(int argc, char **argv)
{
    static const flag_def defs[] = {{"--g", 1},      {"--real", 0},    {"-n", 1},
                                    {"--seed", 1},   {"--dataset", 1}, {"--data", 1},
                                    {"--classifier", 1}, {"--json", 0}, {"--threads", 1},
                                    {"--isa", 1},    {NULL, 0}};
    const char *gpath = NULL, *dataset = NULL, *data = NULL, *cpath = NULL, *isa = NULL;
    long n = 10000, threads = 0;
    int real = 0, json = 0, n_given = 0;
    uint64_t seed = 0;
    for (int i = 0; i < argc; i++) {
        char flag[32];
        const char *val;
        int rc = next_flag(argc, argv, &i, defs, "eval", flag, &val);
        if (rc == 1) {
            fputs(usage_eval, stdout);
            return 0;
        }
        if (rc) return rc;
        if (!strcmp(flag, "--g")) {
            gpath = val;
        } else if (!strcmp(flag, "--real")) {
            real = 1;
        } else if (!strcmp(flag, "-n")) {
            if (parse_long(flag, val, 2, 100000, &n)) return 2;
            n_given = 1;
        } else if (!strcmp(flag, "--seed")) {
            if (parse_seed(val, &seed, NULL))
                return bad("--seed %s: expected an integer from 0 to 2^64 - 1", val);
        } else if (!strcmp(flag, "--dataset")) {
            if (strcmp(val, "mnist") && strcmp(val, "fashion-mnist"))
                return bad("--dataset %s: expected mnist or fashion-mnist", val);
            dataset = val;
        } else if (!strcmp(flag, "--data")) {
            data = val;
        } else if (!strcmp(flag, "--classifier")) {
            cpath = val;
        } else if (!strcmp(flag, "--json")) {
            json = 1;
        } else if (!strcmp(flag, "--threads")) {
            if (parse_long(flag, val, 1, 1024, &threads)) return 2;
        } else {
            isa = val;
        }
    }
    if (sg_eval_available() != 0) return bad("%s", sg_last_error());
    if (real && gpath) return bad("--real: not with --g (--real measures the data alone)");
    if (real && n_given) return bad("-n: not with --real");
    if (!real && !gpath)
        return bad("eval: expected --g FILE (a G.safetensors) or --real; see simdgan eval --help");

    sg_engine e;
    if (engine_open(&e, isa, (int)threads)) return 2;
    sg_generator *g = NULL;
    if (gpath) {   /* a bad G is refused before the data and classifier are read */
        g = sg_generator_load(gpath, &e, SG_GEN_ROWS);
        if (!g) {
            sg_engine_free(&e);
            return bad("%s", sg_last_error());
        }
        const char *ds = sg_generator_dataset(g);
        if (!dataset && ds) {
            if (strcmp(ds, "mnist") && strcmp(ds, "fashion-mnist")) {
                bad("%s: __metadata__ dataset \"%s\"; expected mnist or fashion-mnist (or give "
                    "--dataset)", gpath, ds);
                sg_generator_free(g);
                sg_engine_free(&e);
                return 2;
            }
            dataset = ds;
        }
    }
    if (!dataset) dataset = "mnist";
    char dataset_name[16];
    snprintf(dataset_name, sizeof dataset_name, "%s", dataset);   /* outlives g */

    int rc = 0;
    sg_evaluator *ev = sg_eval_open_with(cpath, dataset_name, data, &e);
    sg_eval_result r;
    if (!ev) {
        rc = bad("%s", sg_last_error());
    } else if (g) {
        int L = sg_generator_latent(g);
        float *z = sg_xmalloc((size_t)n * (size_t)L * sizeof(float));
        float *x = sg_xmalloc((size_t)n * IMG * sizeof(float));
        sg_sample_z(e.k, z, (size_t)n, L, seed);
        sg_generator_run(g, z, (size_t)n, x);
        if (sg_eval_images(ev, x, (size_t)n, &r) != 0) rc = bad("%s", sg_last_error());
        free(z), free(x);
    } else {
        sg_eval_real(ev, &r);
    }
    if (rc == 0) {
        if (json)
            print_json(&r, dataset_name, gpath, seed);
        else
            print_table(&r, dataset_name, gpath, seed);
    }
    sg_eval_close(ev);
    sg_generator_free(g);
    sg_engine_free(&e);
    return rc;
}
