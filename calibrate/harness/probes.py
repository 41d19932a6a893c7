"""Measurements that must run in a fresh process: ``python -m warmsim.calibrate.harness.probes KIND ...``.

* ``process``: prints wall-clock timestamps after interpreter start, ``import torch``, the first
  CUDA call (context creation) and the first GEMM; the parent subtracts its spawn time.
* ``alloc SIZE:COUNT,... REPS``: cudaMalloc/cudaFree timings with the caching allocator off (the
  parent sets ``PYTORCH_NO_CUDA_MEMORY_CACHING=1``).

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import time

_T_START = time.time()  # first statement after the interpreter reached this module

import json  # noqa: E402
import sys  # noqa: E402

#: Square GEMM size of the first-GEMM phase.
FIRST_GEMM_N = 1024


def process_probe() -> dict[str, float]:
    """Timestamps (time.time()) of each start-up milestone."""
    out = {"start": _T_START}
    import torch

    out["import_torch"] = time.time()
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    out["cuda_context"] = time.time()
    a = torch.randn(FIRST_GEMM_N, FIRST_GEMM_N, device="cuda", dtype=torch.float16)
    (a @ a).sum().item()
    out["first_gemm"] = time.time()
    return out


def alloc_probe(points: list[tuple[int, int]], reps: int) -> dict[str, list[float]]:
    """``"op:size:count" -> seconds per rep`` for cudaMalloc (torch.empty) and cudaFree (del)."""
    import torch

    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    res: dict[str, list[float]] = {}
    for size, count in points:
        for rep in range(reps + 1):  # first is warm-up
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            bufs = [torch.empty(size, dtype=torch.uint8, device="cuda") for _ in range(count)]
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            del bufs
            torch.cuda.synchronize()
            t2 = time.perf_counter()
            if rep:
                res.setdefault(f"malloc:{size}:{count}", []).append(t1 - t0)
                res.setdefault(f"free:{size}:{count}", []).append(t2 - t1)
    return res


def main(argv: list[str]) -> int:
    if argv[0] == "process":
        print(json.dumps(process_probe()))
    elif argv[0] == "alloc":
        pts = [tuple(int(x) for x in p.split(":")) for p in argv[1].split(",")]
        print(json.dumps(alloc_probe(pts, int(argv[2]))))  # type: ignore[arg-type]
    else:
        raise SystemExit(f"unknown probe {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
