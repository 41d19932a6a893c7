#!/usr/bin/env bash
# One-shot GPU calibration run (for a session that has a GPU machine).
#   bash calibrate/run_on_gpu.sh            # full sweep (~5 min) + validation (~1 min)
#   QUICK=1 bash calibrate/run_on_gpu.sh    # quick sweep (~1 min)
# Writes $OUT/profile/ (a measured profile), $OUT/validate.csv, $OUT/compare.txt and logs.
# Copy $OUT/profile to calibrate/profiles/<gpu>_measured/ to ship it.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/calibrate_out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

need() { python - <<'PY'
import importlib, sys
mods = ["numpy", "yaml", "torch", "safetensors", "pynvml"]
missing = [m for m in mods if importlib.util.find_spec(m) is None]
try:
    from cuda.bindings import driver  # noqa: F401
except ImportError:
    try:
        from cuda import cuda  # noqa: F401
    except ImportError:
        missing.append("cuda-bindings")
print(" ".join(missing)); sys.exit(1 if missing else 0)
PY
}
if ! missing=$(need); then
  echo "installing the calibrate extra (missing: $missing)" | tee -a "$OUT/install.log"
  pip install -e '.[calibrate]' >>"$OUT/install.log" 2>&1 \
    || pip install nvidia-ml-py safetensors cuda-bindings pyyaml numpy >>"$OUT/install.log" 2>&1 \
    || echo "install failed; see install.log (sections needing the missing packages will be recorded as failed)"
fi
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true

python - "$OUT/profile" ${QUICK:+--quick} <<'PY' 2>&1 | tee "$OUT/calibrate.log"
import sys
from calibrate.cli import calibrate_main
from sim.errors import UserError
try:
    sys.exit(calibrate_main(["--out", sys.argv[1], *sys.argv[2:]]))
except UserError as e:
    print(f"error: {e}"); sys.exit(2)
PY
python -m calibrate.harness.validate measure --out "$OUT/validate.csv" 2>&1 | tee "$OUT/validate.log"
python -m calibrate.harness.validate compare "$OUT/validate.csv" --profile "$OUT/profile" 2>&1 | tee "$OUT/compare.txt"
python -m calibrate.harness.validate compare "$OUT/validate.csv" --profile h100_analytic 2>&1 | tee "$OUT/compare_analytic.txt"
echo "done: $OUT"
