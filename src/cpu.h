/* cpu.h: which kernel table runs, chosen once at run time.
 *
 * x86-64: CPUID feature bits plus XGETBV (the register state the OS saves:
 * YMM for AVX2, ZMM and opmask for AVX-512). aarch64: hwcaps (NEON is
 * baseline there). Never CPU model numbers. SIMDGAN_ISA=ref|avx2|avx512|neon
 * overrides; asking for an ISA this CPU or this build lacks is an error.
 *
 * The bf16 path (simd/bf16.h) is chosen the same way, from its own features:
 * AMX-BF16 (CPUID leaf 7 EDX bits 22 and 24, XCR0 bits 17-18, and on Linux
 * the tile-data permission, requested once per process with arch_prctl),
 * AVX512_BF16 (CPUID leaf 7.1 EAX bit 5, with AVX-512F and ZMM state), Arm
 * BF16 (HWCAP2_BF16), else the ref path; SIMDGAN_BF16=amx|avx512bf16|bfmmla|ref
 * overrides. */
#ifndef SIMDGAN_CPU_H
#define SIMDGAN_CPU_H

#include <stddef.h>

#include "bf16.h"
#include "simd.h"

typedef struct sg_cpu_info {
    char vendor[16];
    char brand[64];   /* CPUID brand string or /proc/cpuinfo model name */
    int sse2, avx, avx2, fma, avx512f, avx512vl, avx512bw, avx512dq;
    int os_ymm, os_zmm; /* XGETBV: OS saves YMM / ZMM+opmask state        */
    int neon;
    /* bf16: x86 CPUID leaf 7 EDX bits 24 (AMX-TILE) and 22 (AMX-BF16), leaf
     * 7.1 EAX bit 5 (AVX512_BF16); os_amx: XCR0 bits 17-18 (TILECFG and
     * TILEDATA state saved by the OS); amx_perm: this process may use tile
     * data (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM) granted; elsewhere the OS
     * state bits suffice). aarch64: HWCAP2_BF16 (BFDOT, BFMMLA, BFCVT). */
    int amx_tile, amx_bf16, os_amx, amx_perm, avx512_bf16;
    int arm_bf16;
} sg_cpu_info;

void sg_cpu_detect(sg_cpu_info *ci);

/* The tables built into this binary, best first, NULL-terminated. */
const sg_kernels *const *sg_kernels_built(void);
/* 1 when this CPU can run the table's ISA. */
int sg_kernels_runnable(const sg_kernels *k, const sg_cpu_info *ci);
/* The table named isa ("ref", "avx2", "avx512", "neon"), or NULL with an
 * error that says whether the name is unknown, not built, or not supported
 * by this CPU (and which feature is missing). */
const sg_kernels *sg_kernels_by_name(const char *isa);

/* The table to use: request if not NULL, else $SIMDGAN_ISA if set, else the
 * best runnable one. Writes one line saying why into why. NULL with error. */
const sg_kernels *sg_kernels_select(const char *request, char *why, size_t cap);

/* Requests AMX tile-data permission for this process, once (later calls
 * return the first answer; safe from several threads). 1 when AMX tiles may
 * be used: CPU and OS support them and, on Linux, arch_prctl granted
 * XFEATURE_XTILEDATA. sg_cpu_detect calls it where the CPU has AMX-TILE. */
int sg_cpu_amx_permit(void);

/* The bf16 tables built into this binary, best first, NULL-terminated (ref
 * last, always). */
const sg_bf16_kernels *const *sg_bf16_built(void);
/* 1 when this CPU (and OS) can run the bf16 table's path. */
int sg_bf16_runnable(const sg_bf16_kernels *k, const sg_cpu_info *ci);
/* The bf16 path to use: request ("amx", "avx512bf16", "bfmmla", "ref") if
 * not NULL, else $SIMDGAN_BF16 if set, else the best runnable one. Writes
 * one line saying why into why. NULL with error for an unknown, unbuilt or
 * unsupported request (saying which feature is missing). */
const sg_bf16_kernels *sg_bf16_select(const char *request, char *why, size_t cap);
/* One line of the bf16 features detected, for `simdgan info`, e.g.
 * "amx-bf16 yes, amx-tile yes, xcr0 tile state yes, tile permission yes,
 * avx512-bf16 yes". */
void sg_cpu_bf16_features(const sg_cpu_info *ci, char *buf, size_t cap);

#endif
