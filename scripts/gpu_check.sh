#!/usr/bin/env bash
# GPU checks on a CUDA machine: the kernels' GPU tests (CuPy vs the NumPy reference), the
# kernels' GPU benchmark, and the GNN's CPU-vs-GPU score comparison. Writes a Markdown
# summary and each step's log under $OUT (default ./gpu-out).
#
#   OUT=/some/dir bash scripts/gpu_check.sh [--users N]
#
# Installs nothing: the repo is put on PYTHONPATH, and numpy, pandas, psutil, pytest,
# pytest-timeout, torch and CuPy are expected to be there (the H200 image has them; a missing
# one can be carried as a wheel). Exits non-zero if any step failed.
# NOTE: the device tool returns at most 8 files from $OUT; this script leaves 7 (the
# benchmark tables are folded into the summary).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT="${OUT:-./gpu-out}"
USERS=1000000
while [ $# -gt 0 ]; do
  case "$1" in
    --users) USERS="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 64 ;;
  esac
done
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
failed=0

{
  echo "# GPU check — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "| step | status | seconds | log |"
  echo "|---|---|---|---|"
} >"$SUMMARY"

# run_step NAME LOGFILE TIMEOUT_S COMMAND...: runs a step, records status and time in the summary
run_step() {
  local name="$1" log="$2" limit="$3"
  shift 3
  local start rc
  start=$(date +%s)
  timeout "$limit" "$@" >"$OUT/$log" 2>&1
  rc=$?
  local status="ok"
  if [ $rc -ne 0 ]; then status="FAILED (exit $rc)"; failed=1; fi
  echo "| $name | $status | $(( $(date +%s) - start )) | $log |" >>"$SUMMARY"
  echo "== $name: $status"
  tail -n 25 "$OUT/$log"
}

# ---- environment --------------------------------------------------------------------------
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$PY" -c 'import sys, numpy, cupy, torch; print(sys.version.split()[0], "numpy", numpy.__version__, "cupy", cupy.__version__, "torch", torch.__version__)' 2>&1
  "$PY" -c 'import kernels; print("kernels.cuda_available():", kernels.cuda_available())' 2>&1
  # the probe swallows the reason; show it once here
  "$PY" -c 'import cupy; print("device round-trip:", int(cupy.arange(3).sum()))' 2>&1 | tail -n 3
} >"$OUT/env.txt"
cat "$OUT/env.txt"

# Without a usable device every gpu test would skip and pass: fail loudly instead.
run_step "CuPy sees a usable CUDA device" device.log 60 \
  "$PY" -c 'import sys, kernels; sys.exit(0 if kernels.cuda_available() else 3)'

# ---- feature kernels (owner: kernels) -----------------------------------------------------
# Every kernel test body runs on CuPy and is compared with the float64 reference (and so with
# the NumPy path); -m gpu selects only the CuPy runs.
# --confcutdir: the root tests/conftest.py imports the stores' drivers (neo4j, ladybug), which
# the GPU image does not have and these tests do not use. The image's NumPy and torch are newer
# than CI's: their deprecation warnings are shown, not turned into failures.
run_step "kernels: GPU tests (pytest -m gpu tests/kernels)" kernels-tests.log 300 \
  "$PY" -m pytest -m gpu -q -p no:cacheprovider --confcutdir=tests/kernels \
  -W default::DeprecationWarning -W default::FutureWarning tests/kernels
# CuPy vs NumPy on the simulator's world, same numbers checked, ratios to each side's memory
# floor. One NumPy run: the host side is only the comparison (its CPU benchmark is
# bench/kernels_batch.py on the CPU machine).
run_step "kernels: GPU benchmark ($USERS users)" kernels-bench.log 420 \
  "$PY" bench/gpu_kernels.py --users "$USERS" --cpu-repeats 1 --out "$OUT/kernels-bench.md"

# ---- GNN: CPU-vs-GPU score comparison (owner: GNN) ----------------------------------------
# Trains a small pipeline on CPU, scores every user, merchant and application on CPU and on
# CUDA, fails when any score differs by more than 1e-4. Writes gnn-gpu.log and gnn-gpu.md.
run_step "gnn: CPU vs GPU scores (atol 1e-4)" gnn-gpu.log 300 \
  "$PY" bench/gnn_device_check.py --users 3000 --devices cpu,cuda --atol 1e-4 \
  --out "$OUT/gnn-gpu.md"

# ---- batch rescoring on the GPU (owner: rescoring) ------------------------------------------
# Full-graph layer-wise inference with the CuPy kernels and the network on CUDA against the CPU
# (probabilities within 1e-4), then the rescoring benchmark on CUDA: features + inference of
# every user and merchant of a simulated world, with the floor measured on this GPU. 100k users:
# building a 1M world's graph from its files takes longer than the device time a check has.
run_step "rescoring: GPU tests, then GPU benchmark (${RESCORE_USERS:-100000} users)" \
  rescore.log 560 bash -c '"$0" -m pytest -m gpu -q -p no:cacheprovider --confcutdir=tests/gnn \
    -W default::DeprecationWarning -W default::FutureWarning \
    tests/gnn/test_full_graph_inference.py &&
  "$0" bench/bench_rescore.py --simulate-users "$1" --device cuda --no-write --out "$2"' \
  "$PY" "${RESCORE_USERS:-100000}" "$OUT"

# ---- summary ------------------------------------------------------------------------------
if [ -f "$OUT/kernels-bench.md" ]; then
  { echo; cat "$OUT/kernels-bench.md"; } >>"$SUMMARY"
fi
if [ -f "$OUT/gnn-gpu.md" ]; then
  { echo; cat "$OUT/gnn-gpu.md"; } >>"$SUMMARY"
fi
if [ -f "$OUT/rescore-benchmark.md" ]; then
  { echo; cat "$OUT/rescore-benchmark.md"; } >>"$SUMMARY"
fi
# NOTE: the tables are in the summary now; removing their copies keeps $OUT at 7 files.
rm -f "$OUT/kernels-bench.md" "$OUT/gnn-gpu.md" "$OUT/rescore-benchmark.md"
echo
cat "$SUMMARY"
exit $failed
