"""The real backend: times one CUDA GPU with torch (CUDA events), cuda-bindings (VMM) and probes
in fresh subprocesses. Importing this module does not import torch; constructing a
:class:`TorchDevice` does, and raises :class:`~.device.NoDeviceError` without a usable GPU.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from warmsim.calibrate.harness.device import PROCESS_PHASES, NoDeviceError
from warmsim.sim.costprofile.shapes import ShardDims

#: Prompt length and decode point used by the interference section.
INTERFERENCE_PREFILL_TOKENS = 1024
INTERFERENCE_DECODE_BATCH = 16
INTERFERENCE_DECODE_CONTEXT = 1024
#: Seconds a probe subprocess may take before it is counted as failed.
PROBE_TIMEOUT_S = 300
#: Warm-up runs before timed repetitions.
WARMUP = 1


def _scratch_fs(path: Path) -> str:
    """Filesystem type of the mount holding ``path`` (``tmpfs`` means the "disk" test hits RAM)."""
    best, fs = "", "unknown"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 2 and str(path.resolve()).startswith(parts[1]) and len(parts[1]) > len(best):
                best, fs = parts[1], parts[2]
    except OSError:
        pass
    return fs


class TorchDevice:
    """GPU 0 of this machine, measured with torch."""

    def __init__(self, scratch: Path | None = None):
        try:
            import torch
        except ImportError:
            raise NoDeviceError("torch is not installed; this needs a CUDA GPU and "
                                "pip install 'warmsim[calibrate]'") from None
        if not torch.cuda.is_available():
            raise NoDeviceError("no CUDA GPU is available here (torch.cuda.is_available() is false); "
                                "run warmsim calibrate on a GPU machine")
        self.torch = torch
        torch.cuda.init()
        torch.zeros(1, device="cuda")
        self.scratch = Path(scratch or tempfile.gettempdir())
        self._host: dict[tuple[int, bool], Any] = {}
        self._pin_s: dict[int, float] = {}
        self._stack: tuple[tuple, Any] | None = None
        self._loads: dict[tuple, list[Any]] = {}
        self._intf: dict[str, Any] = {}

    # -- meta
    def info(self) -> dict[str, Any]:
        torch = self.torch
        p = torch.cuda.get_device_properties(0)
        gpu: dict[str, Any] = {"name": p.name, "memory_bytes": int(p.total_memory), "count": torch.cuda.device_count(),
                               "cuda": torch.version.cuda, "torch": torch.__version__,
                               "capability": f"{p.major}.{p.minor}"}
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            drv = pynvml.nvmlSystemGetDriverVersion()
            gpu.update(driver=drv.decode() if isinstance(drv, bytes) else drv,
                       pcie_gen=pynvml.nvmlDeviceGetCurrPcieLinkGeneration(h),
                       pcie_width=pynvml.nvmlDeviceGetCurrPcieLinkWidth(h),
                       pcie_gen_max=pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h),
                       pcie_width_max=pynvml.nvmlDeviceGetMaxPcieLinkWidth(h))
        except Exception as e:  # noqa: BLE001 - NVML is optional; say why it is missing
            gpu.update(driver=f"unavailable ({type(e).__name__}: {e})", pcie_gen=None, pcie_width=None)
        host = {"memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                "cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                "python": platform.python_version(), "scratch": str(self.scratch),
                "scratch_fs": _scratch_fs(self.scratch)}
        return {"gpu": gpu, "host": host}

    # -- timing helpers
    def _events(self, fn: Callable[[], Any], reps: int, stream: Any = None) -> list[float]:
        torch = self.torch
        stream = stream or torch.cuda.current_stream()
        out = []
        for i in range(WARMUP + reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            with torch.cuda.stream(stream):
                start.record(stream)
                fn()
                end.record(stream)
            end.synchronize()
            if i >= WARMUP:
                out.append(start.elapsed_time(end) / 1e3)
        return out

    def _host_clock(self, fn: Callable[[], Any], reps: int, before: Callable[[], Any] | None = None) -> list[float]:
        out = []
        for i in range(WARMUP + reps):
            if before:
                before()
            self.torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            self.torch.cuda.synchronize()
            if i >= WARMUP:
                out.append(time.perf_counter() - t0)
        return out

    def _host_buf(self, nbytes: int, pinned: bool) -> Any:
        key = (nbytes, pinned)
        if key not in self._host:
            for k in [k for k in self._host if k[1] == pinned]:
                del self._host[k]
            t0 = time.perf_counter()
            buf = self.torch.empty(nbytes, dtype=self.torch.uint8, pin_memory=pinned)
            if pinned:
                self._pin_s[nbytes] = time.perf_counter() - t0
            buf.fill_(1)  # touch every page, never copy zeros
            self._host[key] = buf
        return self._host[key]

    # -- Device interface
    def copy_s(self, direction: str, memory: str, nbytes: int, reps: int) -> list[float]:
        torch = self.torch
        host = self._host_buf(nbytes, memory == "pinned")
        if direction == "h2h":
            other = torch.empty_like(host)
            res = []
            for i in range(WARMUP + reps):
                t0 = time.perf_counter()
                other.copy_(host)
                if i >= WARMUP:
                    res.append(time.perf_counter() - t0)
            return res
        dev = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        if direction == "h2d":
            return self._events(lambda: dev.copy_(host, non_blocking=True), reps)
        return self._events(lambda: host.copy_(dev, non_blocking=True), reps)

    def host_pin_s(self, nbytes: int) -> float:
        if nbytes not in self._pin_s:
            t0 = time.perf_counter()
            self.torch.empty(nbytes, dtype=self.torch.uint8, pin_memory=True)
            self._pin_s[nbytes] = time.perf_counter() - t0
        return self._pin_s[nbytes]

    def _probe(self, args: list[str], env: dict[str, str] | None = None) -> dict:
        r = subprocess.run([sys.executable, "-m", "warmsim.calibrate.harness.probes", *args], capture_output=True, text=True,
                           timeout=PROBE_TIMEOUT_S, env=dict(os.environ, **(env or {})))
        if r.returncode != 0:
            raise RuntimeError(f"probe {args[0]} exited {r.returncode}: {r.stderr.strip()[-500:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    def alloc_s(self, points: list[tuple[int, int]], reps: int) -> dict[tuple[str, int, int], list[float]]:
        self._host.clear()
        spec = ",".join(f"{s}:{c}" for s, c in points)
        res = self._probe(["alloc", spec, str(reps)], env={"PYTORCH_NO_CUDA_MEMORY_CACHING": "1"})
        out = {}
        for key, secs in res.items():
            op, size, count = key.split(":")
            out[(op, int(size), int(count))] = secs
        return out

    def vmm_s(self, total_bytes: int, chunk_bytes: int, reps: int) -> dict[str, list[float]]:
        from warmsim.calibrate.harness.vmm import vmm_once

        dev = self.torch.cuda.current_device()
        runs = [vmm_once(dev, total_bytes, chunk_bytes) for _ in range(WARMUP + reps)][WARMUP:]
        return {op: [r[op] for r in runs] for op in runs[0]}

    def process_s(self, reps: int) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {ph: [] for ph in PROCESS_PHASES}
        for _ in range(reps):
            t_spawn = time.time()
            ts = self._probe(["process"])
            prev = t_spawn
            for ph, key in zip(PROCESS_PHASES, ("start", "import_torch", "cuda_context", "first_gemm")):
                out[ph].append(ts[key] - prev)
                prev = ts[key]
        return out

    def _layers(self, dims: ShardDims, layers: int) -> Any:
        from warmsim.calibrate.harness.llama import LayerStack

        key = (dims.key(), layers)
        if self._stack is None or self._stack[0] != key:
            self._stack = None
            self.torch.cuda.empty_cache()
            self._stack = (key, LayerStack(dims, layers))
        return self._stack[1]

    def prefill_s(self, dims: ShardDims, layers: int, tokens: int, batch: int, reps: int) -> list[float]:
        st = self._layers(dims, layers)
        x = self.torch.randn(batch, tokens, dims.hidden, device="cuda", dtype=st.dtype)
        return self._events(lambda: st.prefill(x), reps)

    def decode_s(self, dims: ShardDims, layers: int, batch: int, context: int, reps: int) -> list[float]:
        st = self._layers(dims, layers)
        cache = st.kv_cache(batch, context)
        x = self.torch.randn(batch, 1, dims.hidden, device="cuda", dtype=st.dtype)
        return self._events(lambda: st.decode(x, cache, context), reps)

    def head_s(self, dims: ShardDims, batch: int, reps: int) -> list[float]:
        st = self._layers(dims, 1) if self._stack is None or self._stack[0][0] != dims.key() else self._stack[1]
        x = self.torch.randn(batch, dims.hidden, device="cuda", dtype=st.dtype)
        return self._events(lambda: st.head(x), reps)

    def _load_host(self, source: str, tensor_bytes: list[int]) -> list[Any]:
        key = (source, tuple(tensor_bytes))
        if key not in self._loads:
            self._loads.clear()
            self._stack = None
            pin = source == "host_pinned"
            self._loads[key] = [self.torch.empty(n, dtype=self.torch.uint8, pin_memory=pin).fill_(1) for n in tensor_bytes]
        return self._loads[key]

    def weight_load_s(self, source: str, buffers: str, tensor_bytes: list[int], reps: int) -> list[float]:
        torch = self.torch
        host = self._load_host(source, tensor_bytes)
        if buffers == "fresh":
            holder: list[Any] = []

            def reset() -> None:
                holder.clear()
                torch.cuda.empty_cache()  # the caching allocator must cudaMalloc again

            def load() -> None:
                for h in host:
                    g = torch.empty(h.numel(), dtype=h.dtype, device="cuda")
                    g.copy_(h, non_blocking=True)
                    holder.append(g)

            try:
                return self._host_clock(load, reps, before=reset)
            finally:
                reset()
        dev = [torch.empty(h.numel(), dtype=h.dtype, device="cuda") for h in host]

        def copy() -> None:
            for g, h in zip(dev, host):
                g.copy_(h, non_blocking=True)

        return self._host_clock(copy, reps)

    def _drop_cache(self, path: Path) -> str:
        os.sync()
        try:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            return "drop_caches"
        except OSError:
            pass
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
            return "fadvise"
        except (OSError, AttributeError):
            return "none"

    def disk_s(self, tensor_bytes: list[int], reps: int) -> dict[tuple[str, str], list[float]]:
        from safetensors.torch import load_file, save_file

        torch = self.torch
        self._loads.clear()
        path = self.scratch / f"warmsim_calibrate_{os.getpid()}.safetensors"
        tensors = {f"t{i}": torch.randint(1, 255, (n,), dtype=torch.uint8) for i, n in enumerate(tensor_bytes)}
        save_file(tensors, str(path))
        del tensors
        out: dict[tuple[str, str], list[float]] = {}
        try:
            for rep in range(WARMUP + reps):
                for cache in ("cold", "warm"):
                    dropped = self._drop_cache(path) if cache == "cold" else "none"
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    loaded = load_file(str(path), device="cuda")
                    torch.cuda.synchronize()
                    dt = time.perf_counter() - t0
                    del loaded
                    if rep >= WARMUP:
                        out.setdefault((cache, dropped), []).append(dt)
        finally:
            path.unlink(missing_ok=True)
        return out

    def interference_s(self, scenario: str, dims: ShardDims, layers: int, copy_bytes: int,
                       reps: int) -> list[float]:
        torch = self.torch
        st = self._layers(dims, layers)
        s = self._intf
        if s.get("key") != (dims.key(), layers, copy_bytes):
            s.clear()
            s["key"] = (dims.key(), layers, copy_bytes)
            s["side"], s["side2"] = torch.cuda.Stream(), torch.cuda.Stream()
            s["src"] = [torch.empty(copy_bytes, dtype=torch.uint8, pin_memory=True).fill_(1) for _ in range(2)]
            s["dst"] = [torch.empty(copy_bytes, dtype=torch.uint8, device="cuda") for _ in range(2)]
            s["xp"] = torch.randn(1, INTERFERENCE_PREFILL_TOKENS, dims.hidden, device="cuda", dtype=st.dtype)
            s["xd"] = torch.randn(INTERFERENCE_DECODE_BATCH, 1, dims.hidden, device="cuda", dtype=st.dtype)
            s["cache"] = st.kv_cache(INTERFERENCE_DECODE_BATCH, INTERFERENCE_DECODE_CONTEXT)
            s["copy_s"] = statistics.median(self._events(lambda: s["dst"][0].copy_(s["src"][0], non_blocking=True),
                                                         3, stream=s["side"]))
        compute = {"prefill": lambda: st.prefill(s["xp"]),
                   "decode": lambda: st.decode(s["xd"], s["cache"], INTERFERENCE_DECODE_CONTEXT)}

        def copy(i: int = 0, stream: Any = None) -> None:
            with torch.cuda.stream(stream or s["side"]):
                s["dst"][i].copy_(s["src"][i], non_blocking=True)

        kind = scenario.split("_")[0]
        if kind in compute:
            one = statistics.median(self._events(compute[kind], 3))
            n = max(1, int(0.8 * s["copy_s"] / max(one, 1e-6)))  # iterations that fit inside one copy

            def body() -> None:
                if scenario.endswith("with_copy"):
                    copy()
                for _ in range(n):
                    compute[kind]()

            return [t / n for t in self._events(body, reps)]
        if scenario == "copy_pair":
            def pair() -> None:
                main = torch.cuda.current_stream()
                streams = (s["side"], s["side2"])
                for stream in streams:
                    stream.wait_stream(main)
                for i, stream in enumerate(streams):
                    copy(i, stream)
                for stream in streams:
                    main.wait_stream(stream)

            return self._events(pair, reps)
        one = statistics.median(self._events(compute["prefill"], 3))
        n = max(1, int(1.5 * s["copy_s"] / max(one, 1e-6)))  # compute that outlasts the copy

        def timed_copy() -> list[float]:
            out = []
            for i in range(WARMUP + reps):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                main = torch.cuda.current_stream()
                s["side"].wait_stream(main)
                if scenario == "copy_with_compute":
                    for _ in range(n):
                        compute["prefill"]()
                start.record(s["side"])
                copy()
                end.record(s["side"])
                torch.cuda.synchronize()
                if i >= WARMUP:
                    out.append(start.elapsed_time(end) / 1e3)
            return out

        return timed_copy()

    def close(self) -> None:
        self._host.clear()
        self._loads.clear()
        self._intf.clear()
        self._stack = None
        if hasattr(self, "torch"):
            self.torch.cuda.empty_cache()
