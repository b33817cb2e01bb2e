/* hw.c: topology from hwloc (cores, cache sizes, binding), or from the OS
 * (platform.c: sysconf and sysfs, or GetLogicalProcessorInformationEx). */
#include "hw.h"

#include "platform.h"

#ifdef SIMDGAN_HAVE_HWLOC
#include <hwloc.h>
static hwloc_topology_t topo;
static hwloc_cpuset_t start_set; /* the first caller's binding: a taskset, a cgroup */
#endif

static sg_hw hw;
static int hw_ready;
/* Per thread: the ith it is bound for, and the ith whose binding failed. */
static _Thread_local int bound_for = -1, failed_for = -1;

#ifdef SIMDGAN_HAVE_HWLOC
static size_t cache_size(hwloc_obj_type_t type, int *sharing)
{
    hwloc_obj_t o = hwloc_get_obj_by_type(topo, type, 0);
    if (!o || !o->attr) return 0;
    if (sharing) {
        int c = hwloc_get_nbobjs_inside_cpuset_by_type(topo, o->cpuset, HWLOC_OBJ_CORE);
        *sharing = c > 0 ? c : 1;
    }
    return (size_t)o->attr->cache.size;
}

static int query_hwloc(void)
{
    if (hwloc_topology_init(&topo) != 0) return -1;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        topo = NULL;
        return -1;
    }
    hw.cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    hw.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    if (hw.cores < 1) hw.cores = hw.pus > 0 ? hw.pus : 1;
    hw.l1d = cache_size(HWLOC_OBJ_L1CACHE, NULL);
    hw.l2 = cache_size(HWLOC_OBJ_L2CACHE, NULL);
    hw.l3 = cache_size(HWLOC_OBJ_L3CACHE, &hw.l3_cores);
    hw.source = "hwloc";
    start_set = hwloc_bitmap_alloc();
    if (!start_set || hwloc_get_cpubind(topo, start_set, HWLOC_CPUBIND_THREAD) != 0 ||
        hwloc_bitmap_iszero(start_set)) {
        hwloc_bitmap_free(start_set);
        start_set = hwloc_bitmap_dup(hwloc_topology_get_allowed_cpuset(topo));
    }
    return 0;
}
#endif

const sg_hw *sg_hw_get(void)
{
    if (hw_ready) return &hw;
#ifdef SIMDGAN_HAVE_HWLOC
    if (query_hwloc() != 0) sg_os_topology(&hw);
#else
    sg_os_topology(&hw);
#endif
    if (!hw.l1d) hw.l1d = 32 * 1024;
    if (!hw.l2) hw.l2 = 1024 * 1024;
    if (!hw.l3) hw.l3 = 8 * 1024 * 1024, hw.l3_cores = hw.cores;
    if (hw.l3_cores < 1) hw.l3_cores = 1;
    hw_ready = 1;
    return &hw;
}

int sg_hw_bind(int ith)
{
    if (bound_for == ith) return 0;
    if (failed_for == ith) return -1;
#ifdef SIMDGAN_HAVE_HWLOC
    int rc = -1;
    if (sg_hw_get() && topo && start_set) {
        int n = hwloc_get_nbobjs_inside_cpuset_by_type(topo, start_set, HWLOC_OBJ_CORE);
        hwloc_obj_t core = n > 0 ? hwloc_get_obj_inside_cpuset_by_type(topo, start_set,
                                                                         HWLOC_OBJ_CORE,
                                                                         (unsigned)(ith % n))
                                 : NULL;
        hwloc_cpuset_t set = core ? hwloc_bitmap_alloc() : NULL;
        if (set) {
            hwloc_bitmap_and(set, core->cpuset, start_set);
            hwloc_bitmap_singlify(set);
            rc = hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_THREAD) == 0 ? 0 : -1;
            hwloc_bitmap_free(set);
        }
    }
    if (rc == 0) {
        bound_for = ith;
        return 0;
    }
#endif
    failed_for = ith;
    return -1;
}

void sg_hw_unbind(void)
{
    if (bound_for < 0) return;
#ifdef SIMDGAN_HAVE_HWLOC
    hwloc_set_cpubind(topo, start_set, HWLOC_CPUBIND_THREAD);
#endif
    bound_for = -1;
}

int sg_hw_bound(void) { return bound_for; }
