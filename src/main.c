/* main.c: the simdgan command.
 *
 *   simdgan train [flags]   train the tutorial's GAN (the default command)
 *   simdgan info            ISA, cores, caches, blocking, threads
 *   simdgan --help | --version
 *
 * Bad input (an unknown flag, a value out of range, a missing or malformed
 * data file, an unwritable output folder) prints one line naming the flag or
 * file and what was expected, and exits with status 2. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "commands.h"
#include "cpu.h"
#include "gemm.h"
#include "hw.h"
#include "platform.h"
#include "simdgan.h"
#include "trace.h"
#include "train.h"
#include "util.h"

static const char usage_main[] =
    "usage: simdgan <command> [flags]\n"
    "\n"
    "simdgan trains the PyTorch MNIST GAN tutorial's model on the CPU, with the\n"
    "tutorial's semantics, using SIMD kernels chosen at run time.\n"
    "\n"
    "commands:\n"
    "  train     train G and D (see simdgan train --help); the default command\n"
    "  info      print the ISA chosen and why, cores, caches, blocking, threads\n"
    "  sample    draw images from a G into a grid (see simdgan sample --help)\n"
    "  eval      score a G against the test set: FCD, classifier score, classes,\n"
    "            precision and recall (see simdgan eval --help)\n"
    "  classifier  train the evaluation classifier (see simdgan classifier --help)\n"
    "\n"
    "flags:\n"
    "  -h, --help     this text\n"
    "  --version      print the version\n"
    "\n"
    "environment:\n"
    "  SIMDGAN_ISA=ref|avx2|avx512|neon   use this kernel table\n"
    "  SIMDGAN_BF16=amx|avx512bf16|bfmmla|ref  the path of bf16 products\n"
    "  SIMDGAN_FUSION=0                   use the unfused kernels\n"
    "  SIMDGAN_MC, SIMDGAN_KC, SIMDGAN_NC cache blocking override\n"
    "  SIMDGAN_DATA=DIR                   where the MNIST files are\n"
    "  SIMDGAN_MODELS=DIR                 where the evaluation classifiers are\n"
    "  OMP_NUM_THREADS=N                  default thread count\n";

static const char usage_train[] =
    "usage: simdgan train [flags]\n"
    "\n"
    "Trains the tutorial's GAN: G = Linear(latent,hidden) ReLU Linear(hidden,hidden)\n"
    "ReLU Linear(hidden,784) Tanh; D = Linear(784,hidden) LeakyReLU(0.2)\n"
    "Linear(hidden,hidden) LeakyReLU(0.2) Linear(hidden,1) Sigmoid; BCE loss, Adam.\n"
    "Writes OUT/samples/real_images.png after the first epoch,\n"
    "OUT/samples/fake_images-N.png after every epoch, and OUT/G.safetensors,\n"
    "OUT/D.safetensors (nn.Sequential state_dict keys) at the end.\n"
    "\n"
    "flags (defaults are the tutorial's):\n"
    "  --epochs N          epochs over the training set (200)\n"
    "  --batch-size N      images per batch (100)\n"
    "  --lr X              Adam learning rate for G and D (0.0002)\n"
    "  --latent N          size of z (64)\n"
    "  --hidden N          hidden layer width (256)\n"
    "  --seed N            seed of init, shuffles and z (0)\n"
    "  --threads N         threads (default: OMP_NUM_THREADS, else the physical cores,\n"
    "                      fewer while another program makes fewer faster)\n"
    "  --bind POLICY       bind thread i to core i: auto (the default: when 2 or more\n"
    "                      threads run), always, or never\n"
    "  --data DIR          folder with the four IDX files, .gz or extracted\n"
    "                      (default: $SIMDGAN_DATA, ./data/MNIST/raw, ./data/mnist)\n"
    "  --dataset NAME      mnist or fashion-mnist (mnist); fashion-mnist also looks\n"
    "                      in /usr/share/datasets/fashion-mnist\n"
    "  --out DIR           output folder (.)\n"
    "  --log-every N       steps between log lines, 0 for none (200)\n"
    "  --isa NAME          ref, avx2, avx512 or neon (default: best for this CPU)\n"
    "  --precision P       fp32 (the default) or bf16: every product's operands\n"
    "                      rounded to bf16 (AMX, AVX512_BF16, Arm BF16, else fp32\n"
    "                      FMAs; $SIMDGAN_BF16 picks one), fp32 accumulation, fp32\n"
    "                      master weights, Adam and checkpoints\n"
    "  --checkpoint-every N  write the training state OUT/checkpoint.safetensors\n"
    "                      every N steps (default: at the end of every epoch; 0: off)\n"
    "  --resume            continue the run whose state is in --out; flags not given\n"
    "                      are taken from the state, flags given must agree with it\n"
    "                      (--epochs may be raised to train longer)\n"
    "  --max-steps N       stop cleanly after N steps in all, writing the state\n"
    "  --eval-every N      every N epochs, evaluate G on a fixed set of z against the\n"
    "                      test set (as simdgan eval: FCD, classifier score, classes,\n"
    "                      precision, recall), print it and log it (0: never, the default)\n"
    "  --eval-n N          images each evaluation generates (10000)\n"
    "  --fixed-z           also write OUT/samples/fixed_z-N.png every epoch: G on one\n"
    "                      set of 64 z drawn at the start (simdgan sample --seed SEED's)\n"
    "  --trace FILE        write a timeline of the first steps to FILE as Chrome\n"
    "                      trace-event JSON (Perfetto, chrome://tracing): per thread\n"
    "                      and phase (packing, kernels, epilogues, loss, Adam,\n"
    "                      barrier waits); tools/step-breakdown sums it\n"
    "  --trace-steps N     steps the trace records, 1 to 1000 (20)\n"
    "  -h, --help          this text\n"
    "\n"
    "Every run logs OUT/metrics.csv (a row per log interval and evaluation). On a\n"
    "terminal, stderr shows a progress line (epoch, step, steps/s, ETA).\n"
    "One run per --out folder (a lock). SIGINT or SIGTERM finishes the step, writes\n"
    "the state and exits 130 or 143; a second SIGINT exits at once, keeping the last\n"
    "complete state.\n"
    "\n"
    "exit status: 0 done, 2 bad input (flag, data, output folder, state, disk full),\n"
    "3 training diverged (the last good state is kept), 130 SIGINT, 143 SIGTERM\n";

static int bad(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "simdgan: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 2;
}

/* Integer flag in [lo, hi]. */
static int parse_int(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "simdgan: %s %s: expected an integer from %ld to %ld\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_train(int argc, char **argv)
{
    simdgan_config c;
    simdgan_config_init(&c);
    c.handle_signals = 1;
    const char *trace = NULL;
    long trace_steps = 20;
    int trace_steps_given = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i], *val = NULL;
        char flag[64];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            fputs(usage_train, stdout);
            return 0;
        }
        if (strncmp(arg, "--", 2) != 0)
            return bad("unexpected argument '%s'%s; see simdgan train --help", arg, "");
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof flag) return bad("unknown flag '%s'%s; see simdgan train --help", arg, "");
        memcpy(flag, arg, len);
        flag[len] = 0;
        if (!strcmp(flag, "--resume") || !strcmp(flag, "--fixed-z")) {
            if (eq) return bad("%s takes no value%s", flag, "");
            if (flag[2] == 'r') c.resume = 1;
            else c.fixed_z = 1;
            continue;
        }
        static const char *const known[] = {"--epochs", "--batch-size", "--lr", "--latent",
                                            "--hidden", "--seed", "--threads", "--data",
                                            "--out", "--log-every", "--dataset", "--isa",
                                            "--checkpoint-every", "--max-steps", "--eval-every",
                                            "--eval-n", "--bind", "--trace", "--trace-steps",
                                            "--precision"};
        static const unsigned given[] = {
            SIMDGAN_SET_EPOCHS, SIMDGAN_SET_BATCH_SIZE, SIMDGAN_SET_LR, SIMDGAN_SET_LATENT,
            SIMDGAN_SET_HIDDEN, SIMDGAN_SET_SEED, 0, 0, 0, 0, SIMDGAN_SET_DATASET, SIMDGAN_SET_ISA,
            0, 0, 0, 0, 0, 0, 0, SIMDGAN_SET_PRECISION};
        int found = 0;
        for (size_t k = 0; k < sizeof known / sizeof *known; k++)
            if (!strcmp(flag, known[k])) found = 1, c.fields_set |= given[k];
        if (!found) return bad("unknown flag '%s'%s; see simdgan train --help", flag, "");
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return bad("%s: expected a value%s", flag, "");
        long v;
        if (!strcmp(flag, "--epochs")) {
            if (parse_int(flag, val, 0, 1000000, &v)) return 2;
            c.epochs = (int)v;
        } else if (!strcmp(flag, "--batch-size")) {
            if (parse_int(flag, val, 1, 60000, &v)) return 2;
            c.batch_size = (int)v;
        } else if (!strcmp(flag, "--latent")) {
            if (parse_int(flag, val, 1, 4096, &v)) return 2;
            c.latent = (int)v;
        } else if (!strcmp(flag, "--hidden")) {
            if (parse_int(flag, val, 1, 8192, &v)) return 2;
            c.hidden = (int)v;
        } else if (!strcmp(flag, "--threads")) {
            if (parse_int(flag, val, 1, 1024, &v)) return 2;
            c.threads = (int)v;
        } else if (!strcmp(flag, "--log-every")) {
            if (parse_int(flag, val, 0, INT_MAX, &v)) return 2;
            c.log_every = (int)v;
        } else if (!strcmp(flag, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(val, &end, 10);
            if (!*val || *end || errno || val[0] == '-')
                return bad("%s %s: expected a non-negative integer below 2^64", flag, val);
            c.seed = (uint64_t)s;
        } else if (!strcmp(flag, "--lr")) {
            char *end;
            errno = 0;
            double lr = strtod(val, &end);
            if (!*val || *end || errno || !isfinite(lr) || !(lr > 0.0))
                return bad("%s %s: expected a finite positive number", flag, val);
            c.lr = lr;
        } else if (!strcmp(flag, "--dataset")) {
            if (strcmp(val, "mnist") && strcmp(val, "fashion-mnist"))
                return bad("%s %s: expected mnist or fashion-mnist", flag, val);
            c.dataset = val;
        } else if (!strcmp(flag, "--data")) {
            c.data = val;
        } else if (!strcmp(flag, "--out")) {
            if (!*val) return bad("%s: expected a folder%s", flag, "");
            c.out = val;
        } else if (!strcmp(flag, "--isa")) {
            c.isa = val;
        } else if (!strcmp(flag, "--precision")) {
            if (strcmp(val, "fp32") && strcmp(val, "bf16"))
                return bad("%s %s: expected fp32 or bf16", flag, val);
            c.precision = val;
        } else if (!strcmp(flag, "--checkpoint-every")) {
            if (parse_int(flag, val, 0, LONG_MAX, &v)) return 2;
            c.checkpoint_every = v;
        } else if (!strcmp(flag, "--max-steps")) {
            if (parse_int(flag, val, 1, LONG_MAX, &v)) return 2;
            c.max_steps = v;
        } else if (!strcmp(flag, "--eval-every")) {
            if (parse_int(flag, val, 0, 1000000, &v)) return 2;
            c.eval_every = (int)v;
        } else if (!strcmp(flag, "--bind")) {
            if (strcmp(val, "never") && strcmp(val, "always") && strcmp(val, "auto"))
                return bad("%s %s: expected never, always or auto", flag, val);
            c.bind = val;
        } else if (!strcmp(flag, "--eval-n")) {
            if (parse_int(flag, val, 4, 1000000, &v)) return 2;
            c.eval_n = v;
        } else if (!strcmp(flag, "--trace")) {
            if (!*val) return bad("%s: expected a file to write%s", flag, "");
            trace = val;
        } else if (!strcmp(flag, "--trace-steps")) {
            if (parse_int(flag, val, 1, 1000, &v)) return 2;
            trace_steps = v;
            trace_steps_given = 1;
        }
    }
    if (trace_steps_given && !trace)
        return bad("--trace-steps: given without --trace%s; expected --trace FILE too", "", "");
    /* The trace is opened (its path probed, its buffers allocated for as
     * many threads as the run may use) before anything else runs, and
     * written after the run however it ended: done, stopped, failed. */
    if (trace) {
        int nth = c.threads;
        const char *why;
        if (nth == 0 && sg_threads_default(&nth, &why) != 0) {
            fprintf(stderr, "simdgan: %s\n", sg_last_error());
            return 2;
        }
        if (sg_trace_open(trace, (int)trace_steps, nth) != 0) {
            fprintf(stderr, "simdgan: %s\n", sg_last_error());
            return 2;
        }
    }
    int rc = simdgan_train(&c);
    if (rc != SIMDGAN_OK) fprintf(stderr, "simdgan: %s\n", simdgan_last_error());
    if (trace && sg_trace_close() != 0) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        if (rc == SIMDGAN_OK) rc = 2;
    } else if (trace && sg_trace_dropped()) {
        fprintf(stderr, "simdgan: %s: %llu events did not fit in the trace's buffers and are "
                        "missing from it (fewer --trace-steps keep them all)\n",
                trace, (unsigned long long)sg_trace_dropped());
    }
    return rc;
}

static void print_size(const char *what, size_t bytes)
{
    if (bytes >= 1024 * 1024)
        printf("  %-4s %zu MiB\n", what, bytes / (1024 * 1024));
    else
        printf("  %-4s %zu KiB\n", what, bytes / 1024);
}

static int cmd_info(int argc, char **argv)
{
    if (argc > 0 && (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help"))) {
        puts("usage: simdgan info\n\nPrints the CPU, the ISA chosen and why, the kernel tables built in,\n"
             "the bf16 path of --precision bf16 and why, cores and caches (hwloc), the\n"
             "cache blocking and the default threads.");
        return 0;
    }
    if (argc > 0) return bad("info: unexpected argument '%s'%s", argv[0], "");
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    char why[256];
    const sg_kernels *k = sg_kernels_select(NULL, why, sizeof why);
    if (!k) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        return 2;
    }
    const sg_hw *hw = sg_hw_get();
    printf("simdgan %s\n", SIMDGAN_VERSION);
    printf("cpu: %s\n", ci.brand[0] ? ci.brand : "unknown");
    printf("isa: %s (%s)\n", k->isa, why);
    printf("kernel tables built in:");
    for (const sg_kernels *const *t = sg_kernels_built(); *t; t++)
        printf(" %s%s", (*t)->isa, sg_kernels_runnable(*t, &ci) ? "" : " (not runnable here)");
    printf("\nmicro-kernel: %s (MR %d, NR %d)\n", k->ukr_name, k->mr, k->nr);
    char bwhy[256], feat[256];
    const sg_bf16_kernels *bk = sg_bf16_select(NULL, bwhy, sizeof bwhy);
    sg_cpu_bf16_features(&ci, feat, sizeof feat);
    if (bk)
        printf("bf16 (--precision bf16): %s, %s (%s)\n", bk->path, bk->ukr_name, bwhy);
    else
        printf("bf16 (--precision bf16): none: %s\n", sg_last_error());
    printf("bf16 paths built in:");
    for (const sg_bf16_kernels *const *t = sg_bf16_built(); *t; t++)
        printf(" %s%s", (*t)->path, sg_bf16_runnable(*t, &ci) ? "" : " (not runnable here)");
    printf("\nbf16 features: %s\n", feat);
    sg_blocking b;
    if (sg_blocking_init(&b, k, hw) != 0) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        return 2;
    }
    printf("blocking: MC %d, KC %d, NC %d (from %s)\n", b.mc, b.kc, b.nc, b.source);
    printf("topology (%s): %d cores, %d hardware threads\n", hw->source, hw->cores, hw->pus);
    print_size("L1d", hw->l1d);
    print_size("L2", hw->l2);
    print_size("L3", hw->l3);
    printf("  L3 shared by %d cores\n", hw->l3_cores);
    int nth;
    const char *nwhy;
    if (sg_threads_default(&nth, &nwhy) != 0) {
        fprintf(stderr, "simdgan: %s\n", sg_last_error());
        return 2;
    }
#ifdef _OPENMP
    printf("threads: %d (%s%s), OpenMP; %s\n", nth, nwhy,
           strcmp(nwhy, "OMP_NUM_THREADS") ? "; train uses fewer while that is faster" : "",
#ifdef SIMDGAN_HAVE_HWLOC
           "thread i bound to core i when 2 or more run (--bind)"
#else
           "threads not bound (built without hwloc)"
#endif
    );
#else
    printf("threads: 1 (built without OpenMP)\n");
#endif
    const char *f = getenv("SIMDGAN_FUSION");
    printf("fusion: %s\n", f && !strcmp(f, "0") ? "off (SIMDGAN_FUSION=0)" : "on");
    return 0;
}

int main(int argc, char **argv)
{
    sg_platform_args(&argc, &argv); /* UTF-8 arguments on Windows */
    if (argc < 2) return cmd_train(0, argv + 1);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(usage_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("simdgan %s\n", SIMDGAN_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "sample")) return sg_cmd_sample(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return sg_cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "classifier")) return sg_cmd_classifier(argc - 2, argv + 2);
    if (cmd[0] == '-') return cmd_train(argc - 1, argv + 1);
    return bad("unknown command '%s'%s; expected train, info, sample, eval or classifier (see "
               "simdgan --help)", cmd, "");
}
