/* cpu.c: CPU feature detection and the choice of kernel table.
 *
 * x86-64: CPUID leaves 1 and 7 give the instruction sets; XGETBV(0) gives
 * XCR0, the register state the OS saves on a context switch (bits 1-2: XMM and
 * YMM; bits 5-7: opmask, ZMM0-15 upper halves, ZMM16-31). An instruction set
 * counts only when both the CPU has it and the OS saves its registers.
 * aarch64: AT_HWCAP's ASIMD bit on Linux (elsewhere the ABI guarantees it).
 * Model numbers are never consulted.
 *
 * The tables compiled in are named by SIMDGAN_HAVE_* definitions (see
 * CMakeLists.txt); the best runnable one is chosen unless SIMDGAN_ISA (or the
 * caller) names one, in which case an unusable request is an error.
 *
 * The bf16 path likewise (sg_bf16_select): AMX needs AMX-TILE and AMX-BF16
 * from CPUID, XCR0 bits 17-18 (the OS saves TILECFG and TILEDATA), and on
 * Linux the process's permission for tile data: Linux arms XFD for TILEDATA
 * so that its 8 KiB of state is saved only for processes that ask
 * (arch_prctl ARCH_REQ_XCOMP_PERM), and a tile instruction without the
 * permission kills the process with SIGILL. Arm BF16 needs HWCAP2_BF16. */
#define _GNU_SOURCE /* syscall() for arch_prctl */
#include "cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stdatomic.h>
#define SG_CPU_X86 1
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#define SG_ARCH_REQ_XCOMP_PERM 0x1023 /* asm/prctl.h, Linux 5.16 */
#define SG_XFEATURE_XTILEDATA 18
#endif
#elif defined(__aarch64__)
#define SG_CPU_ARM64 1
#if defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1 << 14)
#endif
#endif
#endif

#if SG_CPU_X86
static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    /* xgetbv with ecx = 0, as bytes so that old assemblers accept it. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect_x86(sg_cpu_info *ci)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid_count(0, 0, &a, &b, &c, &d)) return;
    unsigned int max_leaf = a;
    memcpy(ci->vendor + 0, &b, 4);
    memcpy(ci->vendor + 4, &d, 4);
    memcpy(ci->vendor + 8, &c, 4);
    ci->vendor[12] = '\0';

    int osxsave = 0;
    if (max_leaf >= 1 && __get_cpuid_count(1, 0, &a, &b, &c, &d)) {
        ci->sse2 = (d >> 26) & 1;
        ci->fma = (c >> 12) & 1;
        osxsave = (c >> 27) & 1;
        ci->avx = (c >> 28) & 1;
    }
    if (max_leaf >= 7 && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        ci->avx2 = (b >> 5) & 1;
        ci->avx512f = (b >> 16) & 1;
        ci->avx512dq = (b >> 17) & 1;
        ci->avx512bw = (b >> 30) & 1;
        ci->avx512vl = (b >> 31) & 1;
        ci->amx_bf16 = (d >> 22) & 1;
        ci->amx_tile = (d >> 24) & 1;
        unsigned int subleaves = a;
        if (subleaves >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
            ci->avx512_bf16 = (a >> 5) & 1;
    }
    /* XGETBV faults unless the OS set CR4.OSXSAVE, which CPUID reports. */
    if (osxsave) {
        unsigned long long xcr0 = xgetbv0();
        ci->os_ymm = (xcr0 & 0x06) == 0x06;
        ci->os_zmm = (xcr0 & 0xe6) == 0xe6;
        ci->os_amx = (xcr0 & 0x60000ull) == 0x60000ull;
    }
    if (ci->amx_tile && ci->os_amx) ci->amx_perm = sg_cpu_amx_permit();

    if (__get_cpuid_count(0x80000000u, 0, &a, &b, &c, &d) && a >= 0x80000004u) {
        unsigned int regs[12];
        for (unsigned int leaf = 0; leaf < 3; leaf++)
            __get_cpuid_count(0x80000002u + leaf, 0, &regs[4 * leaf + 0], &regs[4 * leaf + 1],
                              &regs[4 * leaf + 2], &regs[4 * leaf + 3]);
        char raw[49];
        memcpy(raw, regs, 48);
        raw[48] = '\0';
        const char *s = raw;
        while (*s == ' ') s++; /* some CPUs right-align the brand string */
        snprintf(ci->brand, sizeof ci->brand, "%s", s);
    }
}
#endif

int sg_cpu_amx_permit(void)
{
#if SG_CPU_X86
    /* 0: not asked yet; 1: granted; 2: refused. Two threads that race ask
     * twice, which is harmless (the request is idempotent). */
    static atomic_int state;
    int s = atomic_load(&state);
    if (s) return s == 1;
    unsigned int a, b, c, d;
    int ok = __get_cpuid_count(0, 0, &a, &b, &c, &d) && a >= 7 &&
             __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 24) & 1);
    if (ok) {
        __get_cpuid_count(1, 0, &a, &b, &c, &d);
        ok = ((c >> 27) & 1) && (xgetbv0() & 0x60000ull) == 0x60000ull;
    }
#if defined(__linux__)
    if (ok) ok = syscall(SYS_arch_prctl, SG_ARCH_REQ_XCOMP_PERM, SG_XFEATURE_XTILEDATA) == 0;
#endif
    atomic_store(&state, ok ? 1 : 2);
    return ok;
#else
    return 0;
#endif
}

/* The first "key : value" line of /proc/cpuinfo whose key is `key`. */
static int cpuinfo_field(const char *key, char *out, size_t cap)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[512];
    size_t klen = strlen(key);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) != 0) continue;
        const char *colon = strchr(line + klen, ':');
        if (!colon) continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(out, cap, "%s", v);
        out[strcspn(out, "\n")] = '\0';
        found = 1;
    }
    fclose(f);
    return found;
}

void sg_cpu_detect(sg_cpu_info *ci)
{
    memset(ci, 0, sizeof *ci);
#if SG_CPU_X86
    detect_x86(ci);
#elif SG_CPU_ARM64
#if defined(__linux__)
    ci->neon = (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
    ci->arm_bf16 = (getauxval(AT_HWCAP2) & HWCAP2_BF16) != 0;
#else
    ci->neon = 1; /* ASIMD is part of the AArch64 ABI on Apple and Windows */
#endif
    char impl[16], part[16];
    if (!cpuinfo_field("model name", ci->brand, sizeof ci->brand) &&
        cpuinfo_field("CPU implementer", impl, sizeof impl) &&
        cpuinfo_field("CPU part", part, sizeof part))
        snprintf(ci->brand, sizeof ci->brand, "implementer %s part %s", impl, part);
#endif
    if (!ci->brand[0] && !cpuinfo_field("model name", ci->brand, sizeof ci->brand))
        snprintf(ci->brand, sizeof ci->brand, "unknown CPU");
}

const sg_kernels *const *sg_kernels_built(void)
{
    static const sg_kernels *const built[] = {
#ifdef SIMDGAN_HAVE_AVX512
        &sg_kernels_avx512,
#endif
#ifdef SIMDGAN_HAVE_AVX2
        &sg_kernels_avx2,
#endif
#ifdef SIMDGAN_HAVE_NEON
        &sg_kernels_neon,
#endif
        &sg_kernels_ref,
        NULL,
    };
    return built;
}

/* The first thing this CPU lacks for the ISA, or NULL if it can run it. The
 * avx512 objects are also compiled with -mavx2 -mfma, so they need those. */
static const char *missing_feature(const char *isa, const sg_cpu_info *ci)
{
    if (strcmp(isa, "avx2") == 0 || strcmp(isa, "avx512") == 0) {
        if (!ci->avx) return "this CPU lacks AVX";
        if (!ci->avx2) return "this CPU lacks AVX2";
        if (!ci->fma) return "this CPU lacks FMA";
        if (!ci->os_ymm) return "the OS does not save YMM register state (XCR0)";
    }
    if (strcmp(isa, "avx512") == 0) {
        if (!ci->avx512f) return "this CPU lacks AVX-512F";
        if (!ci->avx512vl) return "this CPU lacks AVX-512VL";
        if (!ci->avx512bw) return "this CPU lacks AVX-512BW";
        if (!ci->avx512dq) return "this CPU lacks AVX-512DQ";
        if (!ci->os_zmm) return "the OS does not save ZMM and opmask register state (XCR0)";
    }
    if (strcmp(isa, "neon") == 0 && !ci->neon) return "this CPU lacks NEON (ASIMD)";
    return NULL;
}

int sg_kernels_runnable(const sg_kernels *k, const sg_cpu_info *ci)
{
    return missing_feature(k->isa, ci) == NULL;
}

/* Why the best table was chosen, in the words of its features. */
static const char *best_reason(const char *isa)
{
    if (strcmp(isa, "avx512") == 0) return "AVX-512F/VL/BW/DQ, OS saves ZMM state";
    if (strcmp(isa, "avx2") == 0) return "AVX2+FMA, OS saves YMM state";
    if (strcmp(isa, "neon") == 0) return "ASIMD";
    return "no faster ISA built in and supported";
}

/* label is what the user typed, for the error ("SIMDGAN_ISA=avx512"). */
static const sg_kernels *lookup(const char *isa, const char *label)
{
    static const char *const known[] = {"ref", "avx2", "avx512", "neon"};
    int is_known = 0;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(isa, known[i]) == 0) is_known = 1;
    if (!is_known) {
        sg_error("%s: unknown ISA '%s'; expected ref, avx2, avx512 or neon", label, isa);
        return NULL;
    }
    const sg_kernels *const *built = sg_kernels_built();
    const sg_kernels *k = NULL;
    char names[64] = "";
    for (size_t i = 0; built[i]; i++) {
        if (strcmp(built[i]->isa, isa) == 0) k = built[i];
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", built[i]->isa);
    }
    if (!k) {
        sg_error("%s: not built into this binary (built: %s)", label, names);
        return NULL;
    }
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const char *lack = missing_feature(isa, &ci);
    if (lack) {
        sg_error("%s: %s", label, lack);
        return NULL;
    }
    return k;
}

const sg_kernels *sg_kernels_by_name(const char *isa) { return lookup(isa, isa); }

const sg_kernels *sg_kernels_select(const char *request, char *why, size_t cap)
{
    char label[96];
    const char *name = NULL;
    if (request) {
        name = request;
        snprintf(label, sizeof label, "--isa %s", request); /* the command's flag */
    } else {
        const char *env = getenv("SIMDGAN_ISA");
        if (env && env[0]) {
            name = env;
            snprintf(label, sizeof label, "SIMDGAN_ISA=%s", env);
        }
    }
    if (name) {
        const sg_kernels *k = lookup(name, label);
        if (k && why && cap) snprintf(why, cap, "%s: %s", k->isa, label);
        return k;
    }

    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const sg_kernels *const *built = sg_kernels_built();
    size_t i = 0;
    while (!sg_kernels_runnable(built[i], &ci)) i++; /* ends at ref, which always runs */
    if (why && cap)
        snprintf(why, cap, "%s: best ISA this CPU supports (%s)", built[i]->isa,
                 best_reason(built[i]->isa));
    return built[i];
}

/* ---- bf16 paths ---------------------------------------------------------- */

const sg_bf16_kernels *const *sg_bf16_built(void)
{
    static const sg_bf16_kernels *const built[] = {
#ifdef SIMDGAN_HAVE_AMX
        &sg_bf16_kernels_amx,
#endif
#ifdef SIMDGAN_HAVE_AVX512BF16
        &sg_bf16_kernels_avx512bf16,
#endif
#ifdef SIMDGAN_HAVE_BFMMLA
        &sg_bf16_kernels_bfmmla,
#endif
        &sg_bf16_kernels_ref,
        NULL,
    };
    return built;
}

/* The first thing this CPU lacks for the bf16 path, or NULL. */
static const char *bf16_missing(const char *path, const sg_cpu_info *ci)
{
    if (strcmp(path, "amx") == 0) {
        if (!ci->amx_tile) return "this CPU lacks AMX-TILE";
        if (!ci->amx_bf16) return "this CPU lacks AMX-BF16";
        if (!ci->os_amx) return "the OS does not save AMX tile state (XCR0 bits 17-18)";
        if (!ci->amx_perm)
            return "the OS refused AMX tile data to this process (arch_prctl ARCH_REQ_XCOMP_PERM)";
    }
    if (strcmp(path, "avx512bf16") == 0) {
        if (!ci->avx512f) return "this CPU lacks AVX-512F";
        if (!ci->avx512_bf16) return "this CPU lacks AVX512_BF16";
        if (!ci->os_zmm) return "the OS does not save ZMM and opmask register state (XCR0)";
    }
    if (strcmp(path, "bfmmla") == 0 && !ci->arm_bf16) return "this CPU lacks Arm BF16 (HWCAP2_BF16)";
    return NULL;
}

int sg_bf16_runnable(const sg_bf16_kernels *k, const sg_cpu_info *ci)
{
    return bf16_missing(k->path, ci) == NULL;
}

void sg_cpu_bf16_features(const sg_cpu_info *ci, char *buf, size_t cap)
{
#if SG_CPU_X86
    snprintf(buf, cap, "amx-bf16 %s, amx-tile %s, xcr0 tile state %s, tile permission %s, "
                       "avx512-bf16 %s",
             ci->amx_bf16 ? "yes" : "no", ci->amx_tile ? "yes" : "no", ci->os_amx ? "yes" : "no",
             ci->amx_perm ? "yes" : "no", ci->avx512_bf16 ? "yes" : "no");
#elif SG_CPU_ARM64
    snprintf(buf, cap, "arm bf16 (HWCAP2_BF16) %s", ci->arm_bf16 ? "yes" : "no");
#else
    (void)ci;
    snprintf(buf, cap, "none detected on this architecture");
#endif
}

/* Why the ref path runs when nothing names it: the first missing feature of
 * the best path this architecture could have. */
static void ref_reason(const sg_cpu_info *ci, char *buf, size_t cap)
{
    const char *lack = NULL;
#if SG_CPU_X86
#if defined(SIMDGAN_HAVE_AMX) || defined(SIMDGAN_HAVE_AVX512BF16)
    lack = bf16_missing("avx512bf16", ci);
#else
    (void)ci;
    lack = "the AMX and AVX512_BF16 kernels are not built into this binary";
#endif
    snprintf(buf, cap, "no bf16 matrix unit or AVX512_BF16: %s", lack);
#elif SG_CPU_ARM64
    lack = bf16_missing("bfmmla", ci);
#ifndef SIMDGAN_HAVE_BFMMLA
    lack = "the BFMMLA kernels are not built into this binary";
#endif
    snprintf(buf, cap, "no bf16 matrix instructions: %s", lack);
#else
    (void)ci;
    (void)lack;
    snprintf(buf, cap, "no bf16 path for this architecture");
#endif
}

const sg_bf16_kernels *sg_bf16_select(const char *request, char *why, size_t cap)
{
    char label[96];
    const char *name = request;
    if (request) {
        snprintf(label, sizeof label, "bf16 path %s", request);
    } else {
        const char *env = getenv("SIMDGAN_BF16");
        if (env && env[0]) {
            name = env;
            snprintf(label, sizeof label, "SIMDGAN_BF16=%s", env);
        }
    }
    sg_cpu_info ci;
    sg_cpu_detect(&ci);
    const sg_bf16_kernels *const *built = sg_bf16_built();
    if (name) {
        if (strcmp(name, "amx") && strcmp(name, "avx512bf16") && strcmp(name, "bfmmla") &&
            strcmp(name, "ref")) {
            sg_error("%s: unknown bf16 path '%s'; expected amx, avx512bf16, bfmmla or ref", label,
                     name);
            return NULL;
        }
        const sg_bf16_kernels *k = NULL;
        char names[64] = "";
        for (size_t i = 0; built[i]; i++) {
            if (strcmp(built[i]->path, name) == 0) k = built[i];
            size_t used = strlen(names);
            snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", built[i]->path);
        }
        if (!k) {
            sg_error("%s: not built into this binary (built: %s)", label, names);
            return NULL;
        }
        const char *lack = bf16_missing(name, &ci);
        if (lack) {
            sg_error("%s: %s", label, lack);
            return NULL;
        }
        if (why && cap) snprintf(why, cap, "%s: %s", k->path, label);
        return k;
    }
    size_t i = 0;
    while (!sg_bf16_runnable(built[i], &ci)) i++; /* ends at ref, which always runs */
    if (why && cap) {
        char reason[192];
        if (strcmp(built[i]->path, "amx") == 0)
            snprintf(reason, sizeof reason, "AMX-BF16 and AMX-TILE, OS saves tile state, "
                                            "tile data permitted");
        else if (strcmp(built[i]->path, "avx512bf16") == 0)
            snprintf(reason, sizeof reason, "no AMX (%s); AVX512_BF16 and AVX-512F, OS saves "
                     "ZMM state", bf16_missing("amx", &ci));
        else if (strcmp(built[i]->path, "bfmmla") == 0)
            snprintf(reason, sizeof reason, "Arm BF16 (HWCAP2_BF16)");
        else
            ref_reason(&ci, reason, sizeof reason);
        snprintf(why, cap, "%s: %s", built[i]->path, reason);
    }
    return built[i];
}
