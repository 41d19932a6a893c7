"""Direct measurements to check ``warmsim estimate`` against (run on a GPU).

``measure --out FILE [--device cuda|fake]``: Llama-2-7B (all 32 layers, random bf16 weights) loaded tensor by tensor
from pinned host memory into fresh GPU buffers (the cold-load path of a device-prewarmed,
engine-prewarmed start), then a 1024-token prefill; and the prefill alone with weights resident.
``compare FILE --profile DIR``: the same quantities predicted from a profile, with the error.
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from warmsim.sim.errors import UserArgumentParser, UserError

if TYPE_CHECKING:
    from warmsim.calibrate.harness.device import Device

#: What the validation measures.
MODEL = "llama-2-7b"
PROMPT_TOKENS = 1024
REPS = 3
COLUMNS = ("quantity", "seconds", "rep")
#: Relative error the estimate should stay within.
TOLERANCE = 0.10


def measure_rows(dev: Device) -> list[tuple[str, float, int]]:
    """The validation quantities measured on ``dev``: ``(quantity, seconds, rep)`` rows.

    The prefill is the whole model (every layer, then the LM head) on one 1024-token prompt.
    """
    from warmsim.sim.catalog import get_shape
    from warmsim.sim.costprofile.shapes import llama_tensor_bytes, shard_dims

    shape = get_shape(MODEL)
    dims = shard_dims(shape, 1)
    loads = dev.weight_load_s("host_pinned", "fresh", llama_tensor_bytes(shape, shape.layers), REPS)
    layers = dev.prefill_s(dims, shape.layers, PROMPT_TOKENS, 1, REPS)
    head = dev.head_s(dims, 1, REPS)
    rows = []
    for i, (ld, ly, hd) in enumerate(zip(loads, layers, head)):
        rows += [("cold_load_pinned", ld, i), ("prefill_resident", ly + hd, i),
                 ("cold_load_plus_prefill", ld + ly + hd, i)]
    return rows


def measure(out: Path, device: str = "cuda") -> None:
    """Measure the validation quantities on backend ``device`` into ``out`` (CSV: quantity, seconds, rep)."""
    from warmsim.calibrate.harness.backends import open_backend

    dev = open_backend(device).device
    try:
        rows = measure_rows(dev)
    finally:
        dev.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)


def predict(profile: str) -> dict[str, float]:
    """The same quantities from ``profile`` through the estimate path."""
    from warmsim.calibrate.estimate import EstimateRequest, estimate
    from warmsim.sim.costmodel import ProfileCostModel

    cost = ProfileCostModel.load(profile)
    e = estimate(EstimateRequest(MODEL, profile, "host_pinned", PROMPT_TOKENS), cost)
    # The direct measurement allocates, copies tensor by tensor and runs a prefill: the weight stages
    # of the start path only (no process, engine or communicator stages).
    s = e.startup
    load = s.memory_s + s.transfer_s + s.load_overhead_s
    return {"cold_load_pinned": load, "prefill_resident": e.prefill_s, "cold_load_plus_prefill": load + e.prefill_s}


def errors(rows: list[tuple[str, float, int]], profile: str) -> dict[str, tuple[float, float, float]]:
    """``quantity -> (measured median, predicted, relative error)``."""
    out = {}
    for q, p in predict(profile).items():
        m = statistics.median(s for name, s, _ in rows if name == q)
        out[q] = (m, p, (p - m) / m)
    return out


def compare(measured_csv: Path, profile: str) -> int:
    """Print predicted vs measured medians; exit 1 if any error exceeds :data:`TOLERANCE`."""
    if not measured_csv.is_file():
        raise UserError(f"validate: no measurements at {measured_csv} (did 'measure' fail?)")
    with measured_csv.open() as f:
        rows = [(r["quantity"], float(r["seconds"]), int(r["rep"])) for r in csv.DictReader(f)]
    missing = [q for q in ("cold_load_pinned", "prefill_resident", "cold_load_plus_prefill")
               if not any(name == q for name, _, _ in rows)]
    if missing:
        raise UserError(f"validate: {measured_csv} has no rows for {', '.join(missing)}")
    worst = 0.0
    print(f"{'quantity':<24} {'measured_s':>11} {'predicted_s':>11} {'error':>7}")
    for q, (m, p, err) in errors(rows, profile).items():
        worst = max(worst, abs(err))
        print(f"{q:<24} {m:11.4f} {p:11.4f} {err:+7.1%}")
    print(f"worst error {worst:.1%} (tolerance {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


def main(argv: list[str]) -> int:
    ap = UserArgumentParser(prog="python -m warmsim.calibrate.harness.validate")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--device", choices=("cuda", "fake"), default="cuda")
    c = sub.add_parser("compare")
    c.add_argument("csv", type=Path)
    c.add_argument("--profile", required=True)
    from warmsim.calibrate.harness.device import NoDeviceError

    try:
        args = ap.parse_args(argv)
        if args.cmd == "measure":
            measure(args.out, args.device)
            return 0
        return compare(args.csv, args.profile)
    except (UserError, NoDeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
