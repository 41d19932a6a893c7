"""``warmsim trace describe|plot`` through :func:`warmsim.traces.cli.main`."""

import pytest

from warmsim.sim.errors import UserError
from warmsim.traces.cli import main


def test_describe(capsys):
    assert main(["describe", "azure2023_conv", "--duration", "600"]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "prompt_p99" in out


def test_describe_counts_and_rates(capsys):
    assert main(["describe", "azure2024_code", "--duration", "86400"]) == 0
    assert main(["describe", "servegen_deepseek-r1"]) == 0
    assert "expected_requests" in capsys.readouterr().out


def test_plot_writes_png(tmp_path):
    out = tmp_path / "p.png"
    assert main(["plot", "mooncake_synthetic", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_counts_png(tmp_path):
    out = tmp_path / "c.png"
    assert main(["plot", "azure2024_conv", "--duration", "86400", "--bin", "600", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000


def test_describe_bad_window():
    with pytest.raises(UserError, match="outside the trace"):
        main(["describe", "azure2023_code", "--start", "99999"])
