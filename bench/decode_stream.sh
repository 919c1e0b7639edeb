#!/bin/sh
# One decode stream through the PyTorch candidate: a prefill of one row, then STEPS
# steps of one row each (D = 128, memory 1,024 by default), every step a call of the
# candidate's function with only its new row. The per-step cost outside the candidate
# (the protocol: files, the helper splitting the stream into calls; and the harness's
# verification) is the difference between this stream and a short one of SHORT steps,
# each with the candidate's own compute (the helper's per-call timings) taken out, so
# that the process's start-up and every other fixed cost cancel. Figures:
# bench/README.md, docs/streams.md.
#
#   bench/decode_stream.sh BUILD_DIR [STEPS] [MEM_LEN] [DTYPE] [SHORT]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: $0 BUILD_DIR [STEPS] [MEM_LEN] [DTYPE] [SHORT]}
steps=${2:-1024}
mem=${3:-1024}
dtype=${4:-fp32}
short=${5:-8}
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs one stream of $1 steps; prints "wall compute outcome".
run_stream() {
  cat > "$work/stream.toml" <<GRID
name = "decode-bench"
dtypes = ["$dtype"]
[axes]
head_dim = 128
prefill = 1
steps = $1
mem_len = $mem
GRID
  start=$($python -c 'import time; print(time.monotonic())')
  status=0
  "$build/cli/xposcheck" sweep --grid "$work/stream.toml" --quiet --out "$work/results.json" \
      --candidate-cmd "$python $src/python/candidates/torch_xtransformers.py" \
      --candidate-name torch > "$work/log" || status=$?
  end=$($python -c 'import time; print(time.monotonic())')
  [ "$status" -le 1 ] || { cat "$work/log" >&2; exit "$status"; }
  $python - "$start" "$end" "$work/log" "$work/results.json" <<'PY'
import json, re, sys
start, end, log, results = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
line = next(l for l in open(log) if l.startswith("external: torch:"))
compute = float(re.search(r"compute inside the candidate ([\d.]+) s", line).group(1))
print(end - start, compute, json.load(open(results))["records"][0]["outcome"])
PY
}

long_run=$(run_stream "$steps")
short_run=$(run_stream "$short")
$python - "$steps" "$short" $long_run $short_run <<'PY'
import sys
steps, short = int(sys.argv[1]), int(sys.argv[2])
wall, compute, outcome = float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
wall_s, compute_s, outcome_s = float(sys.argv[6]), float(sys.argv[7]), sys.argv[8]
per_step = ((wall - compute) - (wall_s - compute_s)) / (steps - short)
print("stream of %d steps: %s, wall %.2f s, inside torch %.2f s (%.3f ms per call)"
      % (steps, outcome, wall, compute, 1e3 * compute / (steps + 2)))
print("stream of %d steps: %s, wall %.2f s, inside torch %.2f s" % (short, outcome_s, wall_s, compute_s))
print("protocol + verification per step: %.3f ms" % (1e3 * per_step))
PY
