/* cpu.h: which kernel table runs, chosen once at run time.
 *
 * x86-64: CPUID feature bits plus XGETBV (the register state the OS saves:
 * YMM for AVX2, ZMM and opmask for AVX-512). aarch64: hwcaps (NEON is
 * baseline there). Never CPU model numbers. SIMDGAN_ISA=ref|avx2|avx512|neon
 * overrides; asking for an ISA this CPU or this build lacks is an error. */
#ifndef SIMDGAN_CPU_H
#define SIMDGAN_CPU_H

#include <stddef.h>

#include "simd.h"

typedef struct sg_cpu_info {
    char vendor[16];
    char brand[64];   /* CPUID brand string or /proc/cpuinfo model name */
    int sse2, avx, avx2, fma, avx512f, avx512vl, avx512bw, avx512dq;
    int os_ymm, os_zmm; /* XGETBV: OS saves YMM / ZMM+opmask state        */
    int neon;
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

#endif
