"""Choosing the backend a sweep measures: the real GPU (``cuda``) or the synthetic ``fake`` one.

The fake backend is a dry run: it walks every section of the plan with analytic timings, so a user
can see what a sweep writes (and CI can run the whole pipeline) without a GPU. Its profiles are
labelled as not measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warmsim.calibrate.harness.device import Device

#: Backends ``warmsim calibrate --device`` accepts.
DEVICES = ("cuda", "fake")
#: Relative spread of the fake backend's timings (so medians and fits see more than one value).
FAKE_JITTER = 0.02
#: Label of a profile written by the fake backend.
FAKE_LABEL = "FAKE DEVICE: synthetic analytic timings from a dry run of the harness; not a measurement"


@dataclass
class Backend:
    """An open device and how the profiles it writes are labelled."""

    device: Device
    measured: bool
    label: str


def open_backend(kind: str, scratch: Path | None = None, seed: int = 0) -> Backend:
    """Open backend ``kind``; the ``cuda`` one raises :class:`~.device.NoDeviceError` without a GPU."""
    if kind == "fake":
        from warmsim.calibrate.harness.fake import FakeDevice

        return Backend(FakeDevice(jitter=FAKE_JITTER, seed=seed), measured=False, label=FAKE_LABEL)
    if kind == "cuda":
        from warmsim.calibrate.harness.runner import MEASURED_LABEL
        from warmsim.calibrate.harness.torch_device import TorchDevice

        return Backend(TorchDevice(scratch=scratch), measured=True, label=MEASURED_LABEL)
    raise ValueError(f"unknown device backend {kind!r} (known: {', '.join(DEVICES)})")
