"""How much slower one step of a colocated engine runs than the same step alone on its GPUs.

MuxServe (and WarmServe's emulation of it) runs every colocated model in its own process under
NVIDIA MPS, each limited to a percentage of the SMs (``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE``). A step's
colocated time is modelled as two factors on its isolated time (from the cost model):

1. **The SM cap**, measured: :class:`MpsSlowdownTable` interpolates MuxServe's published single-process
   MPS profile (``data/mps_a100_muxserve.csv``, from MuxServe's ``examples/placement/llama.json``, A100
   80GB; see ``data/PROVENANCE.md``). Prefill, compute-bound, slows almost as ``1/share`` once a step
   holds a few hundred tokens; decode, memory-bound, barely slows at >= 50% of the SMs until the batch
   reaches ~128.
2. **Contention while a neighbour computes**, a knob: ``1 + contention * busy_neighbours``, where
   ``busy_neighbours`` counts the other engines on the same GPUs that are mid-step at that moment (memory
   bandwidth, L2). An idle neighbour costs nothing. No public measurement of two MPS clients stepping
   at once was found, so ``contention`` defaults to 0.

How the table is read (:meth:`MpsSlowdownTable.factor`):

* a measured point's slowdown is ``latency(share) / latency(100% SMs)`` for the same model, GPUs,
  phase, batch and sequence length;
* per (model, GPUs, phase, share, batch) the **median over the measured sequence lengths** is taken
  (decode barely depends on the context length; the median ignores the file's few outliers, e.g.
  llama-13b / 2 GPUs / 90% / batch 64 / seq 64 decodes 7.8x slower than its neighbours);
  for prefill, when the step's ``tokens`` are given, the curve is indexed by **tokens in the step**
  (batch x sequence length, the median over the pairs with that product) instead, because a prefill
  step's slowdown follows its token count (batch 1 x 32 tokens: ~1.0 at 50%; 512 tokens: ~1.8);
* each batch row is made >= 1 and non-increasing in share (pool-adjacent-violators on the measured
  shares 0.3..0.9 plus 1.0 at share 1); only rows measured at every share in the file are kept;
* **share**: linear between the measured shares; below the smallest (0.30) the value at 0.30 is used
  (the real slowdown there is larger: this clamp understates it); share 1 gives exactly 1;
* **batch / tokens**: linear in log2 between measured values; outside the measured range the nearest
  measured row is used (clamp);
* **model**: without ``params_b``, the mean of the factors of the configurations in
  :data:`DEFAULT_CONFIGS` (7B on 1 GPU, 13B on 2, 65B on 4: the TP sizes the artifact gives 7B, 13B
  and 70B); with ``params_b``, the configuration whose model size is closest (65B stands in for 70B).
  Each configuration is clamped to its own measured batch range before averaging.

The profile is A100, vLLM-era MuxServe kernels; warmsim's default GPU is an H100. The *relative* factor is
used as a prior until the harness measures MPS on the target GPU.
"""

from __future__ import annotations

import bisect
import csv
import functools
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from warmsim.sim.errors import UserError
from warmsim.sim.knobs import bounded, nonneg, text

#: The shipped table: MuxServe's A100 MPS profile, tidy (see data/PROVENANCE.md).
DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "mps_a100_muxserve.csv"

#: (model, GPUs) configurations averaged when no ``params_b`` is given: the tensor-parallel sizes the
#: artifact serves 7B, 13B and 70B with (1, 2, 4), with MuxServe's 65B standing in for the 70B.
DEFAULT_CONFIGS: tuple[tuple[str, int], ...] = (("llama-7b", 1), ("llama-13b", 2), ("llama-65b", 4))

PHASES = ("prefill", "decode")
_COLUMNS = ("model", "gpus", "phase", "sm_share", "batch", "seq_len", "latency_s", "slowdown")


def _params_b(model: str) -> float:
    """Model size in billions from a MuxServe name such as ``llama-13b``."""
    try:
        return float(model.rsplit("-", 1)[1].lower().rstrip("b"))
    except (IndexError, ValueError):
        raise UserError(f"MPS table: cannot read a model size from model name '{model}' (want e.g. llama-7b)") from None


def _non_increasing(values: list[float]) -> list[float]:
    """Least-squares non-increasing fit (pool adjacent violators), equal weights."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in values:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out: list[float] = []
    for s, c in blocks:
        out.extend([s / c] * int(c))
    return out


@dataclass(frozen=True)
class _Curve:
    """Factors of one (phase, model, GPUs, axis): ``values[i][j]`` at ``xs[i]`` (batch or tokens) and
    ``shares[j]`` (ascending, the last is 1.0 with value 1.0)."""

    xs: tuple[int, ...]
    shares: tuple[float, ...]
    values: tuple[tuple[float, ...], ...]

    def _row(self, i: int, share: float) -> float:
        sh, v = self.shares, self.values[i]
        if share <= sh[0]:
            return v[0]
        j = bisect.bisect_left(sh, share)
        if sh[j] == share:
            return v[j]
        w = (share - sh[j - 1]) / (sh[j] - sh[j - 1])
        return v[j - 1] + w * (v[j] - v[j - 1])

    def at(self, share: float, x: float) -> float:
        xs = self.xs
        if x <= xs[0]:
            return self._row(0, share)
        if x >= xs[-1]:
            return self._row(len(xs) - 1, share)
        i = bisect.bisect_right(xs, x)
        lo, hi = xs[i - 1], xs[i]
        w = (math.log2(x) - math.log2(lo)) / (math.log2(hi) - math.log2(lo))
        return (1.0 - w) * self._row(i - 1, share) + w * self._row(i, share)


@dataclass(frozen=True)
class MpsSlowdownTable:
    """Measured step slowdown under an MPS SM cap, relative to the whole GPU (see the module doc).

    Build with :meth:`load`. ``curves`` maps (phase, model, GPUs, axis) to a curve, axis ``"batch"``
    for both phases and ``"tokens"`` for prefill.
    """

    path: str
    configs: tuple[tuple[str, int], ...]
    curves: Mapping[tuple[str, str, int, str], _Curve] = field(repr=False)

    @classmethod
    def load(cls, path: str | Path | None = None,
             configs: tuple[tuple[str, int], ...] = DEFAULT_CONFIGS) -> MpsSlowdownTable:
        """Read a table with the columns of ``data/mps_a100_muxserve.csv`` (default: that file).

        :class:`UserError` if the file is missing, lacks a column, or lacks a configuration of
        ``configs``.
        """
        p = Path(path) if path is not None else DEFAULT_TABLE
        try:
            with open(p, newline="") as f:
                reader = csv.DictReader(f)
                missing = [c for c in _COLUMNS[:-1] if c not in (reader.fieldnames or [])]
                if missing:
                    raise UserError(f"MPS table {p}: missing column(s) {', '.join(missing)}")
                raw = list(reader)
        except OSError as e:
            raise UserError(f"MPS table {p}: cannot read ({e.strerror or e})") from None
        # latency by (model, gpus, phase, share%, batch, seq_len)
        lat: dict[tuple[str, int, str, int, int, int], float] = {}
        for n, r in enumerate(raw, start=2):
            try:
                key = (r["model"], int(r["gpus"]), r["phase"], round(float(r["sm_share"]) * 100),
                       int(r["batch"]), int(r["seq_len"]))
                value = float(r["latency_s"])
            except (TypeError, ValueError):
                raise UserError(f"MPS table {p}, line {n}: malformed row {r}") from None
            if key[2] not in PHASES or value <= 0 or not 0 < key[3] <= 100:
                raise UserError(f"MPS table {p}, line {n}: bad phase, share or latency in {r}")
            lat[key] = value
        present = {(k[0], k[1]) for k in lat}
        for cfg in configs:
            if tuple(cfg) not in present:
                raise UserError(f"MPS table {p}: no rows for model {cfg[0]} on {cfg[1]} GPU(s)")
        curves: dict[tuple[str, str, int, str], _Curve] = {}
        for model, gpus in sorted(present):
            for phase in PHASES:
                ratios: dict[tuple[int, int, int], float] = {}  # (share%, batch, seq_len) -> ratio
                for (m, g, ph, s, b, sl), v in lat.items():
                    if (m, g, ph) == (model, gpus, phase) and s < 100:
                        base = lat.get((m, g, ph, 100, b, sl))
                        if base is not None:
                            ratios[(s, b, sl)] = v / base
                if not ratios:
                    continue
                shares = sorted({s for s, _, _ in ratios})
                axes = {"batch": lambda b, sl: b}
                if phase == "prefill":
                    axes["tokens"] = lambda b, sl: b * sl
                for axis, xof in axes.items():
                    groups: dict[int, dict[int, list[float]]] = {}
                    for (s, b, sl), ratio in ratios.items():
                        groups.setdefault(xof(b, sl), {}).setdefault(s, []).append(ratio)
                    xs, values = [], []
                    for x in sorted(groups):
                        if set(groups[x]) != set(shares):
                            continue  # not measured at every share: clamping would mislead
                        med = [max(1.0, statistics.median(groups[x][s])) for s in shares]
                        values.append(tuple(_non_increasing(med + [1.0])))
                        xs.append(x)
                    if xs:
                        curves[(phase, model, gpus, axis)] = _Curve(
                            tuple(xs), tuple(s / 100 for s in shares) + (1.0,), tuple(values))
        for cfg in configs:
            for phase in PHASES:
                if (phase, cfg[0], cfg[1], "batch") not in curves:
                    raise UserError(f"MPS table {p}: {cfg[0]} on {cfg[1]} GPU(s) has no complete {phase} row")
        return cls(path=str(p), configs=tuple((str(m), int(g)) for m, g in configs), curves=curves)

    def _pick(self, params_b: float | None) -> tuple[tuple[str, int], ...]:
        if params_b is None:
            return self.configs
        if not params_b > 0:
            raise ValueError(f"params_b must be > 0, got {params_b}")
        return (min(self.configs, key=lambda c: (abs(_params_b(c[0]) - params_b), c)),)

    def factor(self, phase: str, share: float, batch: int, *, tokens: int | None = None,
               params_b: float | None = None) -> float:
        """Slowdown (>= 1) of one ``phase`` step at SM share ``share`` in (0, 1] with ``batch``
        sequences, relative to the same step with the whole GPU; exactly 1 at share 1.

        ``tokens`` (prefill only): the step's prompt tokens, used instead of ``batch`` as the index.
        ``params_b``: use the configuration with the closest model size instead of the mean.
        Non-increasing in ``share``. See the module doc for interpolation and clamping.
        """
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        if tokens is not None and tokens < 1:
            raise ValueError(f"tokens must be >= 1, got {tokens}")
        configs = self._pick(params_b)
        if share == 1:
            return 1.0
        vals = []
        for model, gpus in configs:
            curve = self.curves.get((phase, model, gpus, "tokens")) if phase == "prefill" else None
            if curve is not None and tokens is not None:
                vals.append(curve.at(share, tokens))
            else:
                vals.append(self.curves[(phase, model, gpus, "batch")].at(share, batch))
        return max(1.0, sum(vals) / len(vals))


@functools.lru_cache(maxsize=8)
def _cached_table(path: str | None) -> MpsSlowdownTable:
    return MpsSlowdownTable.load(path)


def default_table() -> MpsSlowdownTable:
    """The shipped table, loaded once."""
    return _cached_table(None)


def colocated_step_time(isolated_s: float, phase: str, share: float, batch: int, busy_neighbours: int,
                        contention: float, table: MpsSlowdownTable | None = None, *,
                        tokens: int | None = None, params_b: float | None = None) -> float:
    """Step time of an engine holding ``share`` of its GPUs' SMs:
    ``isolated_s * table.factor(phase, share, batch) * (1 + contention * busy_neighbours)``.

    ``busy_neighbours``: co-located engines mid-step at this moment (idle ones are not counted: an
    idle neighbour costs nothing). ``contention`` >= 0: the fractional slowdown each busy neighbour
    adds. ``table`` defaults to the shipped one. ``tokens`` / ``params_b`` go to
    :meth:`MpsSlowdownTable.factor`. Bad arguments are a ``ValueError``.
    """
    if isolated_s < 0:
        raise ValueError(f"isolated_s must be >= 0, got {isolated_s}")
    if busy_neighbours < 0 or int(busy_neighbours) != busy_neighbours:
        raise ValueError(f"busy_neighbours must be an integer >= 0, got {busy_neighbours}")
    if not contention >= 0:
        raise ValueError(f"contention must be >= 0, got {contention}")
    table = table if table is not None else default_table()
    f = table.factor(phase, share, batch, tokens=tokens, params_b=params_b)
    return isolated_s * f * (1.0 + contention * busy_neighbours)


@dataclass(frozen=True)
@bounded(contention=nonneg("extra slowdown per co-located engine mid-step", 100),
         table=text("an MPS table file; null = the shipped one", null=True))
class ColocationSlowdown:
    """Config-facing colocated step slowdown: the measured MPS table times busy-neighbour contention.

    The calibration profile's ``Interference`` measures a weight copy against compute, not two
    computing processes against each other, so it does not apply here.
    """

    #: Fractional step-time increase per co-located engine that is mid-step at the same moment
    #: (memory-bandwidth and L2 sharing that SM partitioning does not isolate); an idle neighbour adds
    #: nothing. Default 0.0 [I]: no public measurement of two MPS clients stepping at once; raise it to
    #: study sensitivity.
    contention: float = 0.0
    #: MPS table path (columns of data/mps_a100_muxserve.csv); None: the shipped MuxServe A100 profile.
    table: str | None = None
    _table: MpsSlowdownTable = field(init=False, repr=False, compare=False)
    #: factor() by its arguments: the simulator asks at every prefill step and decode run of a
    #: shared engine, mostly for the same few (phase, share, batch) points.
    _memo: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_table", _cached_table(None if self.table is None else str(self.table)))
        object.__setattr__(self, "_memo", {})

    def factor(self, phase: str, share: float, batch: int, busy_neighbours: int, *,
               tokens: int | None = None, params_b: float | None = None) -> float:
        """Multiplier on the isolated step time; see :func:`colocated_step_time`."""
        key = (phase, share, batch, busy_neighbours, tokens, params_b)
        f = self._memo.get(key)
        if f is None:
            f = self._memo[key] = colocated_step_time(1.0, phase, share, batch, busy_neighbours, self.contention,
                                                      self._table, tokens=tokens, params_b=params_b)
        return f

    def step_s(self, isolated_s: float, phase: str, share: float, batch: int, busy_neighbours: int, *,
               tokens: int | None = None, params_b: float | None = None) -> float:
        """Step time of one colocated engine; see :func:`colocated_step_time`."""
        return colocated_step_time(isolated_s, phase, share, batch, busy_neighbours, self.contention,
                                   self._table, tokens=tokens, params_b=params_b)
