#!/bin/sh
# One decode stream through the PyTorch candidate: a prefill, then STEPS steps of one
# row each (D = 128, memory 1,024 by default), every step a call of the candidate with
# only its new row. Splits the wall time into the candidate's own compute (the helper's
# per-call timings) and everything else: the protocol (files, the process) and the
# harness's verification, per step. Figures: bench/README.md, docs/streams.md.
#
#   bench/decode_stream.sh BUILD_DIR [STEPS] [MEM_LEN] [DTYPE]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: $0 BUILD_DIR [STEPS] [MEM_LEN] [DTYPE]}
steps=${2:-1024}
mem=${3:-1024}
dtype=${4:-fp32}
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/stream.toml" <<GRID
name = "decode-bench"
dtypes = ["$dtype"]
[axes]
head_dim = 128
prefill = 1
steps = $steps
mem_len = $mem
GRID

start=$($python -c 'import time; print(time.monotonic())')
status=0
"$build/cli/xposcheck" sweep --grid "$work/stream.toml" --quiet --out "$work/results.json" \
    --candidate-cmd "$python $src/python/candidates/torch_xtransformers.py" \
    --candidate-name torch > "$work/log" || status=$?
end=$($python -c 'import time; print(time.monotonic())')
grep -E '^(external|gate):' "$work/log"
[ "$status" -le 1 ] || { cat "$work/log"; exit "$status"; }

$python - "$start" "$end" "$work/log" "$steps" "$work/results.json" <<'PY'
import json, re, sys
start, end, log, steps, results = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
line = next(l for l in open(log) if l.startswith("external: torch:"))
compute = float(re.search(r"compute inside the candidate ([\d.]+) s", line).group(1))
record = json.load(open(results))["records"][0]
# The candidate's process starts once per stream; its start-up (importing torch) is not
# a per-step cost, so it is measured apart: a process that exits at once.
import subprocess, time
t0 = time.monotonic()
subprocess.run([sys.executable, "-c", "import torch"], check=True)
startup = time.monotonic() - t0
total = end - start
calls = steps + 2  # the prefill, the steps, the whole case once more
overhead = total - compute - startup
print("stream: %d steps, outcome %s, first failing step %s" % (
    steps, record["outcome"], record["stream"]["first_failing_step"]))
print("wall time                          %7.2f s" % total)
print("  candidate compute (inside torch) %7.2f s  %.3f ms per call" % (compute, 1e3 * compute / calls))
print("  process start-up (import torch)  %7.2f s" % startup)
print("  protocol + verification          %7.2f s  %.3f ms per step" % (overhead, 1e3 * overhead / steps))
PY
