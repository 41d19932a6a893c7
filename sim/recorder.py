"""Preallocated per-request columns and append-only timeline rows; tables are built once at the end."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Request status codes.
PENDING, COMPLETED, DROPPED = 0, 1, 2
STATUS_NAMES = {PENDING: "pending", COMPLETED: "completed", DROPPED: "dropped"}
# How the instance that served a request had started, as seen by that request.
START_WARM, START_PREWARMED, START_COLD = 0, 1, 2
START_NAMES = {START_WARM: "warm", START_PREWARMED: "prewarmed", START_COLD: "cold"}


#: Columns of an engine step row (``EngineSpec.record_steps``; written by
#: :class:`warmsim.sim.engine_features.FeatureEngine`), in order.
STEP_COLUMNS = ("instance", "model", "start_s", "end_s", "kind", "steps", "batch", "prefill_seqs",
                "prefill_tokens", "computed_tokens", "cached_tokens", "running", "waiting", "kv_total",
                "kv_used", "kv_cached", "kv_lent")


class Recorder:
    """Everything a run measures. The simulator writes; nothing reads until :meth:`requests_table`."""

    def __init__(self, workload):
        n = len(workload)
        self.workload = workload
        self.first_token = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.status = np.zeros(n, dtype=np.int8)
        self.start_kind = np.zeros(n, dtype=np.int8)
        self.instance = np.full(n, -1, dtype=np.int32)
        self.preemptions = np.zeros(n, dtype=np.int32)
        self.cached_tokens = np.zeros(n, dtype=np.int32)  # prompt tokens its first prefill found in the prefix cache
        self.retries = np.zeros(n, dtype=np.int32)  # times the request went back to the router (a fault)
        self.first_instance = np.full(n, -1, dtype=np.int32)  # the instance a retried request was on first
        self.drop_code = np.zeros(n, dtype=np.int16)  # index into drop_reasons; 0: not dropped
        self.drop_reasons: list[str] = [""]
        self._reason_code: dict[str, int] = {"": 0}
        self.gpus_of_instance: dict[int, str] = {}
        self.timeline: list[tuple] = []
        self.memory: list[tuple] = []
        self.done = 0
        # Run-level counters (summary columns) and logs.
        self.counters = {m: {"cold_starts": 0, "prewarm_hits": 0, "prewarm_hits_loading": 0, "evictions": 0,
                             "prewarms": 0, "instance_starts": 0} for m in workload.models}
        self.prediction_log: list[tuple] = []  # (model, window, pred avg, pred peak, obs avg, obs peak)
        self.gpu_seconds = 0.0  # GPU-seconds with an instance on the GPU (set at the run's end)
        self.end_s = 0.0  # when the run ended
        self.events = 0  # SimPy events the run scheduled
        self.fault_log: list[tuple] = []  # (time, fault, instances lost, replicas lost, requests retried, dropped)
        self.steps: list[tuple] = []  # engine step rows (engine.record_steps; STEP_COLUMNS)

    def first(self, rid: int, t: float) -> None:
        """The request's first token; a retried request (its instance lost to a fault) keeps the first
        token its first attempt produced, the one the user saw."""
        if self.first_token[rid] != self.first_token[rid]:  # NaN: none yet
            self.first_token[rid] = t

    def prefix_hit(self, rid: int, tokens: int) -> None:
        """Prompt tokens the request's prefill found in the prefix cache; kept from the prefill that
        gave its first token (a retried request's later prefills do not change it)."""
        if self.first_token[rid] != self.first_token[rid]:  # NaN: no first token yet
            self.cached_tokens[rid] = tokens

    def retried(self, rid: int, instance: int) -> None:
        """The request's instance was lost to a fault and the request goes back to the router."""
        self.retries[rid] += 1
        if self.first_instance[rid] < 0:
            self.first_instance[rid] = instance

    def complete(self, rid: int, t: float) -> None:
        self.finish[rid] = t
        self.status[rid] = COMPLETED
        self.done += 1

    def drop(self, rid: int, t: float, reason: str) -> None:
        if self.status[rid] != PENDING:
            return
        self.finish[rid] = t
        self.status[rid] = DROPPED
        code = self._reason_code.get(reason)
        if code is None:
            code = self._reason_code[reason] = len(self.drop_reasons)
            self.drop_reasons.append(reason)
        self.drop_code[rid] = code
        self.done += 1

    def event(self, t: float, kind: str, ident: int, model: str, gpus: tuple, state: str, detail: str = "") -> None:
        """A lifecycle change of an instance or a prewarmed replica."""
        self.timeline.append((t, kind, ident, model, ",".join(map(str, gpus)), state, detail))

    def mem(self, t: float, gpu: int, used: int, prewarm: int, kv: int) -> None:
        self.memory.append((t, gpu, used, prewarm, kv))

    # ---- tables ---------------------------------------------------------------------------------
    def requests_table(self) -> pd.DataFrame:
        w = self.workload
        names = np.array(w.models, dtype=object)
        inst = self.instance
        return pd.DataFrame({
            "request": np.arange(len(w), dtype=np.int64),
            "model": names[w.model],
            "arrival_s": w.arrival_s,
            "prompt_tokens": w.prompt_tokens,
            "output_tokens": w.output_tokens,
            "first_token_s": self.first_token,
            "finish_s": self.finish,
            "ttft_s": self.first_token - w.arrival_s,
            "status": pd.Categorical.from_codes(self.status, list(STATUS_NAMES.values())),
            "drop_reason": np.array(self.drop_reasons, dtype=object)[self.drop_code],
            "start_kind": pd.Categorical.from_codes(self.start_kind, list(START_NAMES.values())),
            "instance": inst,
            "gpus": self._gpus_column(inst),
            "preemptions": self.preemptions,
            "cached_tokens": self.cached_tokens,
            "retries": self.retries,
            "first_instance": self.first_instance,
        })

    @property
    def drop_reason(self) -> dict[int, str]:
        """Why each dropped request was dropped, by request id."""
        return {int(i): self.drop_reasons[c] for i, c in zip(np.flatnonzero(self.drop_code),
                                                                self.drop_code[self.drop_code > 0])}

    def _gpus_column(self, inst: np.ndarray) -> np.ndarray:
        ids, inverse = np.unique(inst, return_inverse=True)
        names = np.array([self.gpus_of_instance.get(int(i), "") for i in ids], dtype=object)
        return names[inverse.reshape(-1)] if len(inst) else np.array([], dtype=object)

    def steps_table(self) -> pd.DataFrame:
        """One row per engine step (or run of decode steps), when the engines recorded them."""
        return pd.DataFrame(self.steps, columns=list(STEP_COLUMNS))

    def timeline_table(self) -> pd.DataFrame:
        ev = pd.DataFrame(self.timeline, columns=["time_s", "kind", "id", "model", "gpus", "state", "detail"])
        mem = pd.DataFrame(self.memory, columns=["time_s", "gpu", "used_bytes", "prewarm_bytes", "kv_bytes"])
        mem.insert(1, "kind", "memory")
        return pd.concat([ev, mem], ignore_index=True, sort=False).sort_values("time_s", kind="stable",
                                                                                 ignore_index=True)
