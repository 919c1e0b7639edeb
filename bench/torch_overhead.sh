#!/bin/sh
# Runs a grid (default: cases/default.toml) through the PyTorch subprocess candidate
# and splits the wall time: the time spent inside torch (the helper's per-case compute
# timings), the protocol's overhead (the harness writing inputs and reading outputs,
# the candidate's processes starting, loading and saving), and the harness's own
# verification (inputs, golden outputs, comparison) where it does not overlap the
# candidate. Then it runs torch alone over the same inputs (bench/torch_alone.py): on
# a small machine the verification shares the cores with torch and slows it, so the
# total is also given against torch's own, uncontended time. Figures: docs/protocol.md.
#
#   bench/torch_overhead.sh BUILD_DIR [GRID] [extra xposcheck sweep flags...]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: $0 BUILD_DIR [GRID] [sweep flags...]}
shift
grid=${1:-$src/cases/default.toml}
[ $# -gt 0 ] && shift
python=/usr/bin/python3
# The work directories where the sweep puts them by default: /dev/shm when it is there.
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT

start=$($python -c 'import time; print(time.monotonic())')
status=0
mkdir "$work/dirs"
TMPDIR="$work/dirs" "$build/cli/xposcheck" sweep --grid "$grid" --quiet --out "$work/results.json" \
    --candidate-cmd "$python $src/python/candidates/torch_xtransformers.py" \
    --candidate-name torch --keep-work-dirs "$@" > "$work/log" || status=$?
end=$($python -c 'import time; print(time.monotonic())')
grep -E '^(external|gate):' "$work/log"
[ "$status" -le 1 ] || { cat "$work/log"; exit "$status"; }
alone=$($python "$src/bench/torch_alone.py" "$work/dirs" | sed -n 's/.*inside torch \([0-9.]*\) s/\1/p')

$python - "$start" "$end" "$work/log" "$alone" <<'EOF'
import re, sys
start, end, log, alone = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
line = next(l for l in open(log) if l.startswith("external: torch:"))
def num(pattern):
    return float(re.search(pattern, line).group(1))
compute = num(r"compute inside the candidate ([\d.]+) s")
io = num(r"its file I/O ([\d.]+) s")
waiting = num(r"waiting for its processes ([\d.]+) s")
written = num(r"inputs written in ([\d.]+) s")
read = num(r"outputs read in ([\d.]+) s")
total = end - start
protocol = written + read + (waiting - compute)
print("wall time                         %7.1f s" % total)
print("  inside torch (compute)          %7.1f s" % compute)
print("  protocol overhead               %7.1f s  (%.2fx compute)" % (protocol, protocol / compute))
print("    harness writes inputs         %7.1f s" % written)
print("    harness reads outputs         %7.1f s" % read)
print("    candidate loads/saves .npy    %7.1f s" % io)
print("    process start-up and rest     %7.1f s" % (waiting - compute - io))
print("  verification not overlapped     %7.1f s" % (total - written - read - waiting))
print("total / compute                   %7.2fx" % (total / compute))
print("torch alone, same inputs          %7.1f s" % alone)
print("total / torch alone               %7.2fx" % (total / alone))
EOF
