"""A deterministic stand-in device for tests: analytic timings plus injectable failures."""

from __future__ import annotations

from typing import Any

from warmsim.calibrate.analytic import AnalyticDevice, H100Params


class FakeDevice(AnalyticDevice):
    """:class:`~warmsim.calibrate.analytic.AnalyticDevice` that can fail chosen methods.

    ``fail`` maps a Device method name (e.g. ``"vmm_s"``) to the error message it raises, to test
    that one failing section is recorded and the others still run.
    """

    def __init__(self, params: H100Params | None = None, *, jitter: float = 0.0, seed: int = 0,
                 fail: dict[str, str] | None = None):
        super().__init__(params, jitter=jitter, seed=seed)
        self.fail = dict(fail or {})
        self.calls: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name not in ("fail", "calls", "p", "jitter"):
            fail = object.__getattribute__(self, "fail")
            if name in fail:
                raise RuntimeError(fail[name])
            if name.endswith("_s"):
                object.__getattribute__(self, "calls").append(name)
        return object.__getattribute__(self, name)

    def info(self) -> dict[str, Any]:
        info = super().info()
        info["gpu"] = dict(info["gpu"], name="FakeDevice (synthetic timings)")
        return info
