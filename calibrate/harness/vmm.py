"""CUDA VMM timings through ``cuda.bindings.driver`` (the cuda-bindings package).

Times each driver call per chunk with the host clock (they are synchronous host calls):
``cuMemCreate``, ``cuMemMap``, ``cuMemSetAccess``, ``cuMemUnmap``, then ``remap`` (map + set access
of the kept handles again, WarmServe's memory-switch path), ``cuMemUnmap`` again and ``cuMemRelease``.
"""

from __future__ import annotations

import time
from typing import Any


def _driver() -> Any:
    try:
        from cuda.bindings import driver  # cuda-bindings >= 12.6
    except ImportError:  # older cuda-python layout
        from cuda import cuda as driver  # type: ignore[no-redef]
    return driver


def _check(res: Any, what: str) -> Any:
    err = res[0] if isinstance(res, tuple) else res
    if int(err) != 0:
        raise RuntimeError(f"{what} failed with CUresult {int(err)}")
    if isinstance(res, tuple):
        return res[1] if len(res) == 2 else res[1:]
    return None


def vmm_once(device: int, total_bytes: int, chunk_bytes: int) -> dict[str, float]:
    """One pass over ``total_bytes`` in ``chunk_bytes`` chunks; seconds per op for all chunks."""
    cu = _driver()
    _check(cu.cuInit(0), "cuInit")
    prop = cu.CUmemAllocationProp()
    prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
    prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
    prop.location.id = device
    gran = int(_check(cu.cuMemGetAllocationGranularity(
        prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM), "granularity"))
    if chunk_bytes % gran:
        raise RuntimeError(f"chunk {chunk_bytes} is not a multiple of the granularity {gran}")
    desc = cu.CUmemAccessDesc()
    desc.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
    desc.location.id = device
    desc.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
    n = total_bytes // chunk_bytes
    base = int(_check(cu.cuMemAddressReserve(total_bytes, 0, 0, 0), "cuMemAddressReserve"))
    ptrs = [cu.CUdeviceptr(base + i * chunk_bytes) for i in range(n)]
    t: dict[str, float] = {}
    handles = []
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            handles.append(_check(cu.cuMemCreate(chunk_bytes, prop, 0), "cuMemCreate"))
        t["create"] = time.perf_counter() - t0

        def map_all(key_map: str, key_access: str) -> None:
            t0 = time.perf_counter()
            for p, h in zip(ptrs, handles):
                _check(cu.cuMemMap(p, chunk_bytes, 0, h, 0), "cuMemMap")
            t[key_map] = time.perf_counter() - t0
            t0 = time.perf_counter()
            for p in ptrs:
                _check(cu.cuMemSetAccess(p, chunk_bytes, [desc], 1), "cuMemSetAccess")
            t[key_access] = time.perf_counter() - t0

        def unmap_all() -> float:
            t0 = time.perf_counter()
            for p in ptrs:
                _check(cu.cuMemUnmap(p, chunk_bytes), "cuMemUnmap")
            return time.perf_counter() - t0

        map_all("map", "set_access")
        t["unmap"] = unmap_all()
        map_all("remap_map", "remap_access")  # kept handles: the memory-switch path
        t["remap"] = t.pop("remap_map") + t.pop("remap_access")
        unmap_all()
        t0 = time.perf_counter()
        while handles:
            _check(cu.cuMemRelease(handles.pop()), "cuMemRelease")
        t["release"] = time.perf_counter() - t0
    finally:
        for h in handles:
            cu.cuMemRelease(h)
        cu.cuMemAddressFree(cu.CUdeviceptr(base), total_bytes)
    return t
