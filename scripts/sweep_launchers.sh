#!/usr/bin/env bash
# Sweeps beyond one machine, tried for real (docs/sweeps.md records a run of this script):
# a 2-point sweep (system=static,ondemand on the tiny cluster) through hydra's Ray launcher on a local
# Ray runtime and through submitit's local launcher, then `warmsim report` merging both sweeps.
#
#   scripts/sweep_launchers.sh [WORKDIR]      # default: a fresh temporary directory
#
# The launchers go into a virtual environment of their own (WORKDIR/venv) that sees the packages of
# the Python running this script (PYTHON, default python3: a venv or the system's), so the warmsim
# install in use is the one tested, an editable one included: `pip install hydra-ray-launcher
# hydra-submitit-launcher` (the [ray] and [slurm] extras). A launcher that cannot be installed is
# reported as such and skipped; the script fails if a sweep that could run does not produce both jobs.
set -uo pipefail
WORK=${1:-$(mktemp -d -t warmsim-launchers-XXXX)}
mkdir -p "$WORK"
cd "$WORK" || exit 1
echo "+ workdir $WORK"
OUTER=${PYTHON:-python3}
if ! "$OUTER" -c "import warmsim.experiments.cli" 2>/dev/null; then
  echo "error: $OUTER cannot import warmsim (pip install . in the environment that runs this script)"
  exit 2
fi
# `python -m venv --system-site-packages` from inside a venv would see the *base* interpreter's
# packages, not the venv's (where warmsim is): add the outer environment's site directory instead
# (site.addsitedir also runs its .pth files, which an editable install needs).
"$OUTER" -m venv venv
PY="$WORK/venv/bin/python"
OUT_SITE=$("$OUTER" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
IN_SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import site; site.addsitedir('$OUT_SITE')" > "$IN_SITE/zz-outer-env.pth"
"$PY" -c "import warmsim.experiments.cli" || { echo "error: the launchers' venv cannot import warmsim"; exit 1; }
TINY=(cluster=tiny models=tiny1 workload=synthetic workload.duration_s=60 workload.tokens_from=null)
status=0
swept=()

try_launcher() {  # name, pip package, hydra overrides...
  local name=$1 pkg=$2
  shift 2
  echo "+ pip install $pkg"
  if ! "$PY" -m pip install -q "$pkg" >"pip-$name.log" 2>&1; then
    echo "$name: NOT TESTED: '$pkg' cannot be installed here (pip-$name.log):"
    tail -n 3 "pip-$name.log"
    return 0
  fi
  "$PY" -m pip list 2>/dev/null | grep -i -E "^(hydra-core|$pkg|ray|submitit) " | sed 's/^/  /'
  local t0=$SECONDS
  echo "+ python -m warmsim.experiments.cli run -m $* ${TINY[*]} system=static,ondemand hydra.sweep.dir=$WORK/$name"
  "$PY" -m warmsim.experiments.cli run -m "$@" "${TINY[@]}" system=static,ondemand "hydra.sweep.dir=$WORK/$name" \
    >"$name.log" 2>&1
  local rc=$?
  grep -h -E "warmsim: sweep:|error" "$name.log" "$WORK/$name"/.submitit/*/*.err 2>/dev/null | sed -e "s/\x1b\[[0-9;]*m//g" -e "s/^/  /"
  local n
  n=$(ls "$WORK/$name"/*/COMPLETE 2>/dev/null | wc -l)
  echo "$name: exit $rc, $n of 2 jobs complete, $((SECONDS - t0)) s"
  if [ "$rc" -ne 0 ] || [ "$n" -ne 2 ]; then status=1; else swept+=("$WORK/$name"); fi
}

try_launcher ray hydra-ray-launcher hydra/launcher=ray +hydra.launcher.ray.init.num_cpus=2
try_launcher submitit_local hydra-submitit-launcher hydra/launcher=submitit_local hydra.launcher.timeout_min=10
if [ ${#swept[@]} -gt 0 ]; then
  echo "+ warmsim report ${swept[*]}"
  "$PY" -m warmsim.experiments.cli report "${swept[@]}" || status=1
fi
exit $status
