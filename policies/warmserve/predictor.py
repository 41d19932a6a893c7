"""Load predictors for WarmServe (warmserve.md section 3) and an accuracy tracker.

All predictors implement :class:`warmsim.policies.base.Predictor`: the simulator calls
``observe(model, window, avg, peak)`` when window ``window`` closes, and
``predict(model, window)`` for the (average, peak) in-flight load of a window, typically the one
about to start. Predictors keep their own observation history (they are stateful objects, unlike
the pure placement and activation policies) but never read clocks or do I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from warmsim.sim.knobs import Knob, bounded, check_init, choice, count


def _as_profile(arr: np.ndarray, ndim: int, what: str) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim != ndim or a.shape[-1] != 2:
        raise ValueError(f"{what} must have {ndim} dimensions with a last axis of 2 (avg, peak); "
                         f"got shape {a.shape}")
    return a


@bounded(window_s=Knob("float", 0.1, 7 * 86400.0, help="prediction window in seconds"),
         n_correction=count("recent errors in the correction", 10_000, lo=0),
         decay=Knob("float", 0, 1, lo_open=True, help="weight ratio per step back"),
         baseline_window_s=Knob("float", 0.1, 7 * 86400.0, null=True,
                                help="length of one history bin in seconds; null = window_s"))
class CorrectiveSeasonalPredictor:
    """WarmServe's Corrective Seasonal Predictor (CSP).

    * Seasonal baseline of window ``i``: the mean over previous days of that window's value,
      separately for the average and the peak load.
    * Correction: the weighted mean of the last ``n_correction`` observed errors
      (observed - baseline of the window observed); the most recent error has weight 1, the one
      before ``decay``, then ``decay**2`` ...; normalised by the sum of the weights used.
    * Prediction = baseline + correction, clamped at 0 (a negative in-flight load is meaningless).

    Before any window of a model has been observed the prediction is the baseline. A model without
    history has baseline 0 everywhere (so its prediction is its correction alone). A window index
    past the end of the history wraps around (``i % n_windows``): the history is taken as one
    period of a seasonal pattern.

    Window ``i`` always reads history row ``i``. What a row spans is set by whoever builds the
    history: normally one window of ``window_s``; with ``baseline_window_s`` set, one bin of that
    length, whatever ``window_s`` is. That is the artifact's behaviour (``scheduler.py``,
    ``Scheduler.update_loads``: ``past_avgs[self.cur_window_id + 1]`` indexes the character file's
    5-minute bins, ``trace_generator.py`` ``INTERVAL = 5 * 60``, by window id), so under a 3-minute
    window the baseline runs through the 5-minute bins 5/3 times too fast, and under a 40-minute
    window it stays at bin 0 for the first 40 minutes.

    Args:
        window_s: window length in seconds (the artifact's ``--window-size``, 300 s: ``prewarm_manager.py``
            ``__main__`` argparse, used in ``scheduler.py`` ``Scheduler.update_loads``).
        history: per model an array of shape ``(days, n_windows, 2)`` with (avg, peak) in-flight
            load per window on previous days; a 2-D ``(n_windows, 2)`` array is taken as one day.
        n_correction: how many of the most recent errors the correction averages (10).
        decay: weight ratio between consecutive errors going back in time (0.5: halving).
        baseline_window_s: length of one history row, in seconds, when it differs from
            ``window_s``; ``None`` (default): each row is one window of ``window_s``. The predictor
            only records it (rows are still indexed by window id); the experiment builder reads it
            to build the history on that grid (``experiments.predictor_inputs``).
    """

    #: What the builder must supply (experiments/predictor_inputs.py): the history days' load.
    needs: ClassVar[tuple[str, ...]] = ("history",)

    def __init__(self, window_s: float = 300.0, history: Mapping[str, np.ndarray] | None = None,
                 n_correction: int = 10, decay: float = 0.5, baseline_window_s: float | None = None) -> None:
        check_init(type(self), window_s=window_s, n_correction=n_correction, decay=decay,
                   baseline_window_s=baseline_window_s)
        self.window_s = float(window_s)
        self.baseline_window_s = None if baseline_window_s is None else float(baseline_window_s)
        self.n_correction = int(n_correction)
        self.decay = float(decay)
        self._baseline: dict[str, np.ndarray] = {}
        for model, arr in (history or {}).items():
            a = np.asarray(arr, dtype=np.float64)
            if a.ndim == 2:
                a = a[None]
            a = _as_profile(a, 3, f"history[{model!r}]")
            if a.shape[0] == 0 or a.shape[1] == 0:
                continue  # no days or no windows: same as no history
            self._baseline[model] = a.mean(axis=0)
        self._errors: dict[str, deque[np.ndarray]] = {}
        # weights[k] applies to the error k steps back (k = 0 is the most recent).
        self._weights = self.decay ** np.arange(self.n_correction, dtype=np.float64)

    def baseline(self, model: str, window: int) -> tuple[float, float]:
        """The seasonal baseline (avg, peak) of ``model`` in ``window`` (0 without history)."""
        base = self._baseline.get(model)
        if base is None:
            return 0.0, 0.0
        row = base[int(window) % base.shape[0]]
        return float(row[0]), float(row[1])

    def correction(self, model: str) -> tuple[float, float]:
        """The current (avg, peak) correction of ``model`` (0 before any observation)."""
        errs = self._errors.get(model)
        if not errs:
            return 0.0, 0.0
        recent = np.array(errs)[::-1]  # most recent first
        w = self._weights[: recent.shape[0]]
        corr = (w[:, None] * recent).sum(axis=0) / w.sum()
        return float(corr[0]), float(corr[1])

    def observe(self, model: str, window: int, avg: float, peak: float) -> None:
        """Record that ``window`` closed with this (avg, peak) load: stores the error against the
        window's baseline; only the last ``n_correction`` errors are kept."""
        if self.n_correction == 0:
            return
        b_avg, b_peak = self.baseline(model, window)
        errs = self._errors.setdefault(model, deque(maxlen=self.n_correction))
        errs.append(np.array([avg - b_avg, peak - b_peak], dtype=np.float64))

    def predict(self, model: str, window: int) -> tuple[float, float]:
        """Baseline of ``window`` plus the current correction, each clamped at 0."""
        b_avg, b_peak = self.baseline(model, window)
        c_avg, c_peak = self.correction(model)
        return max(b_avg + c_avg, 0.0), max(b_peak + c_peak, 0.0)


@bounded(window_s=Knob("float", 0.1, 7 * 86400.0, help="prediction window in seconds"), truth_from=choice("which pre-pass gives the truth", "self", "static"))
class OraclePredictor:
    """Knows the future: returns the true (avg, peak) of the window asked for.

    The artifact has no oracle; this is an upper bound of ours.

    Args:
        truth: per model an array ``(n_windows, 2)`` of the run's actual (avg, peak) per window
            (build it with :func:`warmsim.policies.load_profile.inflight_windows`). Models or windows not
            covered predict 0.
        window_s: window length in seconds (must match how ``truth`` was built).
        truth_from: where the experiment builder takes ``truth`` from (recorded only; see
            ``experiments.predictor_inputs``): ``"self"``, the in-flight load observed in a
            pre-pass of the same system with the CSP in the oracle's place; ``"static"``, observed
            under the ``static`` system.
    """

    #: What the runner supplies from its pre-pass (experiments/runner.py prepass_inputs): the run's observed load.
    needs: ClassVar[tuple[str, ...]] = ("truth",)

    def __init__(self, truth: Mapping[str, np.ndarray], window_s: float = 300.0, truth_from: str = "self") -> None:
        check_init(type(self), window_s=window_s, truth_from=truth_from)
        self.window_s = float(window_s)
        self.truth_from = truth_from
        self._truth = {m: _as_profile(a, 2, f"truth[{m!r}]") for m, a in truth.items()}

    def observe(self, model: str, window: int, avg: float, peak: float) -> None:
        """Ignored: the oracle needs no feedback."""

    def predict(self, model: str, window: int) -> tuple[float, float]:
        """The true (avg, peak) of ``window`` (0 outside the truth)."""
        t = self._truth.get(model)
        if t is None or not 0 <= window < t.shape[0]:
            return 0.0, 0.0
        return float(t[window, 0]), float(t[window, 1])


@bounded(window_s=Knob("float", 0.1, 7 * 86400.0, help="prediction window in seconds"))
class LastWindowPredictor:
    """Naive predictor: the next window looks like the last observed one (0 before any).

    Args:
        window_s: window length in seconds.
    """

    def __init__(self, window_s: float = 300.0) -> None:
        check_init(type(self), window_s=window_s)
        self.window_s = float(window_s)
        self._last: dict[str, tuple[float, float]] = {}

    def observe(self, model: str, window: int, avg: float, peak: float) -> None:
        """Remember this window's (avg, peak) as the model's latest."""
        self._last[model] = (float(avg), float(peak))

    def predict(self, model: str, window: int) -> tuple[float, float]:
        """The last observed (avg, peak) of ``model``, or (0, 0)."""
        return self._last.get(model, (0.0, 0.0))


@dataclass(frozen=True)
class AccuracyReport:
    """Prediction accuracy of one model (or all models pooled): ``1 - mean relative error``.

    ``windows_avg`` / ``windows_peak`` count the windows that entered each mean (windows where
    prediction and observation are both 0 are skipped). An accuracy is ``nan`` with no windows;
    it can be negative when predictions are off by more than 100% on average.
    """

    accuracy_avg: float
    accuracy_peak: float
    windows_avg: int
    windows_peak: int


class PredictionAccuracy:
    """Records (predicted, observed) per model and window and reports ``1 - mean relative error``.

    Relative error of one window: ``|predicted - observed| / max(observed, min_denominator)``.
    Windows where both predicted and observed are 0 are skipped (nothing to predict, nothing
    mispredicted); ``min_denominator`` keeps a window with observed 0 but predicted > 0 finite
    (its error is ``predicted / min_denominator``). Avg and peak are scored separately.

    The simulator calls :meth:`record` when a window closes, with the prediction it used for that
    window (ask the predictor *before* calling its ``observe``).

    Args:
        min_denominator: smallest denominator of a relative error, in requests in flight (1).
    """

    def __init__(self, min_denominator: float = 1.0) -> None:
        if not min_denominator > 0:
            raise ValueError(f"min_denominator must be > 0, got {min_denominator}")
        self.min_denominator = float(min_denominator)
        self._rows: dict[str, list[tuple[float, float, float, float]]] = {}

    def record(self, model: str, predicted: tuple[float, float], observed: tuple[float, float]) -> None:
        """Add one window of ``model``: predicted (avg, peak) and observed (avg, peak)."""
        self._rows.setdefault(model, []).append(
            (float(predicted[0]), float(predicted[1]), float(observed[0]), float(observed[1])))

    def models(self) -> list[str]:
        """Models with at least one recorded window, sorted."""
        return sorted(self._rows)

    def _score(self, rows: np.ndarray) -> AccuracyReport:
        out = []
        for p, o in ((rows[:, 0], rows[:, 2]), (rows[:, 1], rows[:, 3])):
            keep = ~((p == 0) & (o == 0))
            if not keep.any():
                out.append((float("nan"), 0))
                continue
            rel = np.abs(p[keep] - o[keep]) / np.maximum(o[keep], self.min_denominator)
            out.append((1.0 - float(rel.mean()), int(keep.sum())))
        return AccuracyReport(out[0][0], out[1][0], out[0][1], out[1][1])

    def report(self, model: str | None = None) -> AccuracyReport:
        """Accuracy of ``model``, or of all windows of all models pooled when ``None``."""
        if model is None:
            rows = [r for m in self._rows for r in self._rows[m]]
        else:
            rows = self._rows.get(model, [])
        arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
        return self._score(arr)
