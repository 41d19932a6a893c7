"""The harness's torch code paths (skipped without torch; GPU parts skipped without CUDA)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="torch (the [calibrate] extra) is not installed")

from warmsim.calibrate.harness.device import NoDeviceError  # noqa: E402
from warmsim.sim.costprofile.shapes import ShardDims  # noqa: E402

TINY = ShardDims(shape="tiny", hidden=64, heads=4, kv_heads=2, head_dim=16, intermediate=128, vocab=100, tp=1)


def test_layer_stack_runs_on_cpu():
    from warmsim.calibrate.harness.llama import LayerStack

    st = LayerStack(TINY, layers=2, device="cpu", dtype=torch.float32)
    x = torch.randn(2, 8, TINY.hidden)
    y = st.prefill(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    cache = st.kv_cache(batch=2, context=8)
    step = st.decode(torch.randn(2, 1, TINY.hidden), cache, context=8)
    assert step.shape == (2, 1, TINY.hidden) and torch.isfinite(step).all()
    assert st.head(step[:, 0]).shape == (2,)
    assert all(w.abs().sum() > 0 for layer in st.layers for w in layer.values())  # never zeros


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is present")
def test_torch_device_refuses_without_cuda():
    from warmsim.calibrate.harness.torch_device import TorchDevice

    with pytest.raises(NoDeviceError, match="no CUDA GPU"):
        TorchDevice()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_torch_device_quick_sections(tmp_path):
    from warmsim.calibrate.harness.plan import QUICK
    from warmsim.calibrate.harness.runner import run_sweep
    from warmsim.calibrate.harness.torch_device import TorchDevice

    dev = TorchDevice(scratch=tmp_path)
    try:
        meta = run_sweep(dev, tmp_path / "p", QUICK, name="gpu", sections=["copy", "prefill", "decode"])
    finally:
        dev.close()
    assert all(v["status"] == "ok" for v in meta["sections"].values()), meta["sections"]
