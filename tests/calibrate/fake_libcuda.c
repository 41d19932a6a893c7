/* A stand-in libcuda.so.1 for testing the harness's CUDA VMM calls on a machine with no GPU.
 *
 * It implements just the driver entry points calibrate/harness/vmm.py uses, with the argument
 * checks and bookkeeping of the real driver's VMM rules (a handle maps only into a reserved range,
 * access is set only on mapped ranges, an address range is freed only when nothing is mapped in it),
 * so a call with a wrong argument or in a wrong order fails here as it would on a GPU. Nothing is
 * allocated: addresses are numbers. fakecuda_live() reports what is still held, to check clean-up.
 *
 * Built by tests/calibrate/test_cal_vmm.py: cc -shared -fPIC -o libcuda.so.1 fake_libcuda.c
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;
typedef unsigned long long CUhandle;

enum { OK = 0, INVALID_VALUE = 1, NOT_INITIALIZED = 3, INVALID_DEVICE = 101, NOT_FOUND = 500,
       ALREADY_MAPPED = 208, NOT_MAPPED = 211 };

#define GRAN (2ull << 20)
#define MAXN 4096

typedef struct { int type; int id; } Location;                 /* CUmemLocation */
typedef struct { int type; int handle_types; Location loc; void *win32; unsigned char flags[8]; } Prop;
typedef struct { Location loc; int flags; } AccessDesc;         /* CUmemAccessDesc */

static int inited;
static struct { CUdeviceptr base; size_t size; int live; } res[MAXN];
static struct { size_t size; int live; } handles[MAXN];         /* handle h is index h - 1 */
static struct { CUdeviceptr ptr; size_t size; CUhandle h; int access; int live; } maps[MAXN];
static int nres, nhandles, nmaps;
static CUdeviceptr next_va = 0x7f0000000000ull;

static int valid_location(const Location *l) { return l->type == 1 /* DEVICE */ && l->id == 0; }

static int valid_prop(const Prop *p) {
    return p && p->type == 1 /* PINNED */ && valid_location(&p->loc);
}

CUresult cuInit(unsigned int flags) { if (flags) return INVALID_VALUE; inited = 1; return OK; }

CUresult cuDriverGetVersion(int *v) { if (!v) return INVALID_VALUE; *v = 13000; return OK; }

CUresult cuMemGetAllocationGranularity(size_t *g, const Prop *p, int option) {
    if (!inited) return NOT_INITIALIZED;
    if (!g || !valid_prop(p) || (option != 0 && option != 1)) return INVALID_VALUE;
    *g = GRAN;
    return OK;
}

CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t align, CUdeviceptr addr,
                             unsigned long long flags) {
    if (!inited) return NOT_INITIALIZED;
    if (!ptr || !size || size % GRAN || (align && align % GRAN) || flags || nres == MAXN) return INVALID_VALUE;
    (void)addr;  /* a hint only */
    res[nres].base = next_va; res[nres].size = size; res[nres].live = 1; nres++;
    *ptr = next_va;
    next_va += size + GRAN;
    return OK;
}

static int reserved(CUdeviceptr p, size_t size) {
    for (int i = 0; i < nres; i++)
        if (res[i].live && p >= res[i].base && p + size <= res[i].base + res[i].size) return 1;
    return 0;
}

static int overlaps_map(CUdeviceptr p, size_t size) {
    for (int i = 0; i < nmaps; i++)
        if (maps[i].live && p < maps[i].ptr + maps[i].size && maps[i].ptr < p + size) return 1;
    return 0;
}

CUresult cuMemAddressFree(CUdeviceptr p, size_t size) {
    if (!inited) return NOT_INITIALIZED;
    for (int i = 0; i < nres; i++)
        if (res[i].live && res[i].base == p && res[i].size == size) {
            if (overlaps_map(p, size)) return INVALID_VALUE;  /* still mapped */
            res[i].live = 0;
            return OK;
        }
    return INVALID_VALUE;
}

CUresult cuMemCreate(CUhandle *h, size_t size, const Prop *p, unsigned long long flags) {
    if (!inited) return NOT_INITIALIZED;
    if (!h || !size || size % GRAN || !valid_prop(p) || flags || nhandles == MAXN) return INVALID_VALUE;
    handles[nhandles].size = size; handles[nhandles].live = 1; nhandles++;
    *h = (CUhandle)nhandles;
    return OK;
}

static int live_handle(CUhandle h) { return h >= 1 && h <= (CUhandle)nhandles && handles[h - 1].live; }

CUresult cuMemRelease(CUhandle h) {
    if (!inited) return NOT_INITIALIZED;
    if (!live_handle(h)) return INVALID_VALUE;
    handles[h - 1].live = 0;  /* the driver frees the memory once the last mapping goes */
    return OK;
}

CUresult cuMemMap(CUdeviceptr p, size_t size, size_t offset, CUhandle h, unsigned long long flags) {
    if (!inited) return NOT_INITIALIZED;
    if (!size || size % GRAN || offset || flags || !live_handle(h) || size > handles[h - 1].size
        || !reserved(p, size) || nmaps == MAXN) return INVALID_VALUE;
    if (overlaps_map(p, size)) return ALREADY_MAPPED;
    maps[nmaps].ptr = p; maps[nmaps].size = size; maps[nmaps].h = h; maps[nmaps].access = 0;
    maps[nmaps].live = 1; nmaps++;
    return OK;
}

CUresult cuMemUnmap(CUdeviceptr p, size_t size) {
    if (!inited) return NOT_INITIALIZED;
    for (int i = 0; i < nmaps; i++)
        if (maps[i].live && maps[i].ptr == p && maps[i].size == size) { maps[i].live = 0; return OK; }
    return NOT_MAPPED;
}

CUresult cuMemSetAccess(CUdeviceptr p, size_t size, const AccessDesc *d, size_t count) {
    if (!inited) return NOT_INITIALIZED;
    if (!d || count != 1 || !valid_location(&d->loc) || d->flags != 3 /* PROT_READWRITE */) return INVALID_VALUE;
    for (int i = 0; i < nmaps; i++)
        if (maps[i].live && maps[i].ptr == p && maps[i].size == size) { maps[i].access = 1; return OK; }
    return NOT_MAPPED;
}

/* Test hook: reservations, handles and mappings still live; mappings without access set. */
int fakecuda_live(int *reservations, int *live_handles, int *mappings, int *no_access) {
    *reservations = *live_handles = *mappings = *no_access = 0;
    for (int i = 0; i < nres; i++) *reservations += res[i].live;
    for (int i = 0; i < nhandles; i++) *live_handles += handles[i].live;
    for (int i = 0; i < nmaps; i++) { *mappings += maps[i].live; *no_access += maps[i].live && !maps[i].access; }
    return 0;
}

static const struct { const char *name; void *fn; } TABLE[] = {
    {"cuInit", (void *)cuInit},
    {"cuDriverGetVersion", (void *)cuDriverGetVersion},
    {"cuMemGetAllocationGranularity", (void *)cuMemGetAllocationGranularity},
    {"cuMemAddressReserve", (void *)cuMemAddressReserve},
    {"cuMemAddressFree", (void *)cuMemAddressFree},
    {"cuMemCreate", (void *)cuMemCreate},
    {"cuMemRelease", (void *)cuMemRelease},
    {"cuMemMap", (void *)cuMemMap},
    {"cuMemUnmap", (void *)cuMemUnmap},
    {"cuMemSetAccess", (void *)cuMemSetAccess},
};

CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, unsigned long long flags,
                             int *status) {
    (void)version; (void)flags;
    for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
        if (strcmp(symbol, TABLE[i].name) == 0) { *pfn = TABLE[i].fn; if (status) *status = 0; return OK; }
    *pfn = NULL;
    if (status) *status = 1;  /* CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND */
    return NOT_FOUND;
}

CUresult cuGetProcAddress(const char *symbol, void **pfn, int version, unsigned long long flags) {
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}
