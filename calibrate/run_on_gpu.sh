#!/usr/bin/env bash
# One-shot calibration run on a GPU machine: the sweep, the sanity check and the estimate validation.
#   bash calibrate/run_on_gpu.sh              # full sweep (~5 min) + validation (~1 min)
#   QUICK=1 bash calibrate/run_on_gpu.sh      # quick sweep (~1 min) + validation
#   DEVICE=fake bash calibrate/run_on_gpu.sh  # dry run on any machine: synthetic timings, no GPU
#
# Writes six files into $OUT (a device machine brings back at most eight):
#   calibration.tgz  the profile directory (<gpu>_measured/, e.g. h200_measured/) and every log
#   sanity.txt       the profile against the public sanity ranges (docs/calibration.md)
#   compare.txt      warmsim estimate vs a direct measurement, on the new profile and on h100_analytic,
#                    then the headline numbers of both profiles side by side
#   validate.csv     that direct measurement
#   calibrate.log    the sweep's log
#   nvidia-smi.txt   the machine
# Ship the profile with: tar xzf calibration.tgz -C calibrate/profiles <gpu>_measured
#
# Nothing is installed: GPU machines often have no network. A missing package is reported here, and
# the sections that need it are recorded as failed with the reason. Each step has a time limit so
# that the files above are always written; a sweep cut short keeps every section it finished.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/calibrate_out}"
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
SWEEP_TIMEOUT="${SWEEP_TIMEOUT:-330}"        # seconds for the sweep
VALIDATE_TIMEOUT="${VALIDATE_TIMEOUT:-120}"  # seconds for the direct measurement
SCRATCH="${SCRATCH:-$PWD}"  # the disk test's file goes here: not /tmp, which is often tmpfs (RAM)
WORK="$(mktemp -d)"
if [ "$DEVICE" = fake ]; then
  NAME="${PROFILE_NAME:-fake_dryrun}"
else  # "NVIDIA H200" -> h200_measured
  NAME="${PROFILE_NAME:-$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 \
    | tr 'A-Z' 'a-z' | sed -e 's/^nvidia //' -e 's/[^a-z0-9].*//')_measured}"
  [ "$NAME" = _measured ] && NAME=gpu_measured
fi
PROFILE="$WORK/$NAME"
mkdir -p "$OUT" "$WORK/logs"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
WARMSIM="$PY -m warmsim.experiments.cli"  # the warmsim command without installing it (no hydra needed here)
log() { echo "[run_on_gpu $(date -u +%H:%M:%S)] $*" | tee -a "$WORK/logs/run_on_gpu.log"; }

log "python: $($PY -c 'import sys; print(sys.executable, sys.version.split()[0])' 2>&1)"
$PY - "$DEVICE" <<'PY' 2>&1 | tee -a "$WORK/logs/run_on_gpu.log"
import importlib.util, sys
need = ["numpy", "yaml"] + (["torch", "safetensors", "pynvml"] if sys.argv[1] == "cuda" else [])
missing = [m for m in need if importlib.util.find_spec(m) is None]
if sys.argv[1] == "cuda":
    try:
        from cuda.bindings import driver  # noqa: F401
    except ImportError:
        missing.append("cuda-bindings (the vmm section will fail)")
print("missing packages: " + (", ".join(missing) if missing else "none"))
PY
{ nvidia-smi; nvidia-smi -q -d PCIE,CLOCK; } >"$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi not available" >"$OUT/nvidia-smi.txt"

log "sweep (device $DEVICE${QUICK:+, quick}, limit ${SWEEP_TIMEOUT}s)"
timeout -s INT -k 30 "$SWEEP_TIMEOUT" $WARMSIM calibrate --out "$PROFILE" --device "$DEVICE" --scratch "$SCRATCH" \
  ${QUICK:+--quick} 2>&1 | tee "$OUT/calibrate.log"
sweep_rc=${PIPESTATUS[0]}
log "sweep exit status $sweep_rc"

$WARMSIM calibrate --check "$PROFILE" >"$OUT/sanity.txt" 2>&1
[ "$sweep_rc" = 0 ] || cat "$OUT/sanity.txt"  # a finished sweep printed it already

log "validation (limit ${VALIDATE_TIMEOUT}s)"
timeout -k 30 "$VALIDATE_TIMEOUT" $PY -m warmsim.calibrate.harness.validate measure --device "$DEVICE" --out "$OUT/validate.csv" \
  >"$WORK/logs/validate.log" 2>&1 || log "validation measurement failed: $(tail -3 "$WORK/logs/validate.log")"
{
  for prof in "$PROFILE" h100_analytic; do
    echo "== profile $prof"
    $PY -m warmsim.calibrate.harness.validate compare "$OUT/validate.csv" --profile "$prof" 2>&1
  done
  echo "== headline numbers, analytic (A) vs this run (B)"
  $WARMSIM calibrate --diff h100_analytic "$PROFILE" 2>&1
} >"$OUT/compare.txt"
cat "$OUT/compare.txt"

cp "$OUT/calibrate.log" "$OUT/sanity.txt" "$OUT/compare.txt" "$WORK/logs/" 2>/dev/null
log "done: profile $NAME; files in $OUT: $(ls "$OUT" | tr '\n' ' ')calibration.tgz"
tar czf "$OUT/calibration.tgz" -C "$WORK" "$NAME" logs 2>/dev/null || tar czf "$OUT/calibration.tgz" -C "$WORK" logs
rm -rf "$WORK"
exit "$sweep_rc"
