/* tables.h: which kernel tables a C test runs, and the check that none this
 * CPU supports was left out.
 *
 * A test runs every table built into the binary that cpu.c deems runnable
 * here (tables_to_run), marks each one it ran (table_ran), and ends with
 * tables_all_ran, which fails once for every ISA this CPU supports whose
 * table did not run: not built into the binary, refused by cpu.c's rule, or
 * skipped by the test. "Supports" is judged here from sg_cpu_info's CPUID,
 * XGETBV and hwcap bits, independently of cpu.c, so a build that lost a
 * table, or a detection that stopped offering it, fails instead of passing
 * on the tables that remain (an AVX-512 laptop would otherwise test only
 * avx2 and ref and say nothing). A table whose ISA is not known here fails
 * too: its CPU features must be written down below before it counts as
 * tested. */
#ifndef SIMDGAN_TEST_TABLES_H
#define SIMDGAN_TEST_TABLES_H

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cpu.h"
#include "util.h"

/* Every ISA simdgan has a table for, best first. */
static const char *const tables_known[] = {"avx512", "avx2", "neon", "ref"};
#define TABLES_NKNOWN (sizeof tables_known / sizeof tables_known[0])
static int tables_runs[TABLES_NKNOWN];

static inline size_t tables_index(const char *isa)
{
    size_t i = 0;
    while (i < TABLES_NKNOWN && strcmp(tables_known[i], isa) != 0) i++;
    return i;
}

/* Whether this CPU (and its OS) can run the ISA, in the words of its
 * features; "" when it can. The avx512 objects are also compiled with
 * -mavx2 -mfma, so they need those too. */
static inline const char *tables_lacks(const char *isa, const sg_cpu_info *ci)
{
    int avx2 = ci->avx && ci->avx2 && ci->fma && ci->os_ymm;
    if (!strcmp(isa, "avx2")) return avx2 ? "" : "AVX, AVX2, FMA or saved YMM state";
    if (!strcmp(isa, "avx512"))
        return avx2 && ci->avx512f && ci->avx512vl && ci->avx512bw && ci->avx512dq && ci->os_zmm
                   ? ""
                   : "AVX2+FMA, AVX-512F/VL/BW/DQ or saved ZMM state";
    if (!strcmp(isa, "neon")) return ci->neon ? "" : "ASIMD";
    return "";
}

/* The tables to run, best first, into out[cap] (NULL-terminated); prints
 * those built but not runnable here, with cpu.c's reason. */
static inline size_t tables_to_run(const sg_kernels *out[], size_t cap)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    size_t n = 0;
    for (const sg_kernels *const *t = sg_kernels_built(); *t; t++) {
        CHECK(tables_index((*t)->isa) < TABLES_NKNOWN,
              "the table '%s' is built in but tests/tables.h does not know its ISA: add it "
              "and its CPU features there", (*t)->isa);
        if (!sg_kernels_runnable(*t, &ci)) {
            sg_kernels_by_name((*t)->isa);
            printf("%s: not run (%s)\n", (*t)->isa, sg_last_error());
            continue;
        }
        if (n + 1 < cap) out[n++] = *t;
    }
    out[n] = NULL;
    return n;
}

static inline void table_ran(const sg_kernels *k)
{
    size_t i = tables_index(k->isa);
    if (i < TABLES_NKNOWN) tables_runs[i]++;
}

/* Fails for every ISA this CPU supports whose table did not run; prints
 * which ran. */
static inline void tables_all_ran(const char *test)
{
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    char ran[64] = "";
    for (size_t i = 0; i < TABLES_NKNOWN; i++) {
        if (tables_runs[i]) {
            size_t used = strlen(ran);
            snprintf(ran + used, sizeof ran - used, "%s%s", used ? ", " : "", tables_known[i]);
        }
        if (*tables_lacks(tables_known[i], &ci)) continue;
        CHECK(tables_runs[i] > 0, "%s: this CPU supports %s but its kernel table did not run (%s)",
              test, tables_known[i],
              sg_kernels_by_name(tables_known[i]) ? "built and runnable: the test skipped it"
                                                  : sg_last_error());
    }
    printf("%s: tables run: %s (%s)\n", test, ran, ci.brand);
}

#endif
