/* hw.h: the machine's cores and caches, and binding threads to cores.
 * From hwloc where built with it, else from the OS (platform.h: sysconf and
 * sysfs, or Windows' GetLogicalProcessorInformationEx; then unbound). */
#ifndef SIMDGAN_HW_H
#define SIMDGAN_HW_H

#include <stddef.h>

typedef struct sg_hw {
    int cores;          /* physical cores                          */
    int pus;            /* hardware threads                        */
    size_t l1d, l2, l3; /* bytes: per-core L1d and L2, L3 as a whole */
    int l3_cores;       /* cores sharing that L3                   */
    const char *source; /* "hwloc", "sysconf" or "Windows"         */
} sg_hw;

/* Topology, read once and cached. Never fails: missing figures fall back to
 * 32 KiB / 1 MiB / 8 MiB. */
const sg_hw *sg_hw_get(void);

/* Binds the calling thread to physical core ith % n (its first hardware
 * thread) of the n cores the process was allowed at start (so a taskset or
 * cgroup is respected). Returns 0, or -1 where binding is not available (a
 * failure is remembered per thread and core, not retried). */
int sg_hw_bind(int ith);
/* Gives the calling thread back the process's cpuset from start. */
void sg_hw_unbind(void);
/* The ith the calling thread is bound for, or -1. */
int sg_hw_bound(void);

#endif
