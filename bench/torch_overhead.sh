#!/bin/sh
# Runs a grid (default: cases/default.toml) through the PyTorch subprocess candidate
# and splits the wall time: the time spent inside torch (the helper's per-case compute
# timings), the protocol's file I/O (the harness writing inputs and reading outputs,
# the candidate loading and saving them), and the rest (process start-up, waits, the
# harness's own verification where it does not overlap the candidate). Then it runs
# torch alone over the same inputs (bench/torch_alone.py): on a small machine the
# verification shares the cores with torch and slows it, so the total is also given
# against torch's own, uncontended time.
#
# A shared machine's speed drifts by half between minutes, so torch alone runs before
# the first sweep and after every sweep, RUNS sweeps (default 3) back to back: each
# sweep is set against the mean of the two torch-alone runs around it, which drift
# moves the same way as the sweep. The summary gives each sweep's ratio, their median,
# and the fastest sweep against the fastest torch alone.
# The timed sweeps run as a user runs them; torch alone reads the work directories
# one more sweep kept beforehand (--keep-work-dirs, not timed: the kept gigabytes in
# /dev/shm would weigh on the sweep they were kept by). Every sweep draws the same
# inputs from the grid's seeds. Figures: docs/protocol.md section 5.
#
#   [RUNS=3] bench/torch_overhead.sh BUILD_DIR [GRID] [extra xposcheck sweep flags...]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:?usage: $0 BUILD_DIR [GRID] [sweep flags...]}
shift
grid=${1:-$src/cases/default.toml}
[ $# -gt 0 ] && shift
runs=${RUNS:-3}
python=/usr/bin/python3
# The work directories where the sweep puts them by default: /dev/shm when it is there.
work=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { $python -c 'import time; print(time.monotonic())'; }

sweep() {  # sweep TMPDIR LOG PREFIX [extra flags]: the grid through the PyTorch candidate
  dirs=$1 log=$2 prefix=$3
  shift 3
  status=0
  TMPDIR="$dirs" "$build/cli/xposcheck" sweep --grid "$grid" --quiet --out "$work/results.json" \
      --candidate-cmd "$prefix$python $src/python/candidates/torch_xtransformers.py" \
      --candidate-name torch "$@" > "$log" || status=$?
  [ "$status" -le 1 ] || { cat "$log"; exit "$status"; }
}

alone() {  # torch alone over the kept inputs, in the environment the harness gave the
  # kept sweep's candidate (docs/protocol.md, "A candidate's environment"); prints its seconds
  $python "$src/bench/torch_alone.py" "$work/dirs" "$work/candidate.env" |
    sed -n 's/.*inside torch \([0-9.]*\) s/\1/p'
}

mkdir "$work/dirs" "$work/scratch"
# The kept sweep's candidate records the environment it was given, for torch alone.
sweep "$work/dirs" "$work/kept.log" "env -0 > '$work/candidate.env'; " --keep-work-dirs "$@"
before=$(alone)
run=1
while [ "$run" -le "$runs" ]; do
  load=$(cut -d' ' -f1 /proc/loadavg)
  start=$(now)
  sweep "$work/scratch" "$work/log" "" "$@"
  end=$(now)
  [ "$run" -eq 1 ] && grep -E '^(external|gate):' "$work/log"
  after=$(alone)
  echo "$start $end $before $after $load" >> "$work/pairs"
  cp "$work/log" "$work/log.$run"
  before=$after
  run=$((run + 1))
done

$python - "$work" "$runs" <<'EOF'
import re, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
pairs = [tuple(map(float, l.split())) for l in open(work + "/pairs")]
def split(run):
    line = next(l for l in open("%s/log.%d" % (work, run)) if l.startswith("external: torch:"))
    num = lambda pattern: float(re.search(pattern, line).group(1))
    return {k: num(p) for k, p in (
        ("compute", r"compute inside the candidate ([\d.]+) s"), ("io", r"its file I/O ([\d.]+) s"),
        ("waiting", r"waiting for its processes ([\d.]+) s"), ("written", r"inputs written in ([\d.]+) s"),
        ("read", r"outputs read in ([\d.]+) s"))}
rows = []
for run, (start, end, before, after, load) in enumerate(pairs, 1):
    s = split(run)
    total = end - start
    alone = (before + after) / 2
    # A serving process starts a batch as soon as it is written and the one before is
    # done, so the harness's wait covers only part of its compute: the split counts
    # what is measured (file I/O on both sides) and leaves the rest together.
    protocol = s["written"] + s["read"] + s["io"]
    rows.append((total, alone, total / alone))
    print("run %d (load %.2f before it)" % (run, load))
    print("  wall time                         %7.1f s" % total)
    print("    inside torch (compute)          %7.1f s" % s["compute"])
    print("    protocol file I/O               %7.1f s  (%.2fx compute)" % (protocol, protocol / s["compute"]))
    print("      harness writes inputs         %7.1f s" % s["written"])
    print("      harness reads outputs         %7.1f s" % s["read"])
    print("      candidate loads/saves .npy    %7.1f s" % s["io"])
    print("    the rest (start-up, waits, verification not overlapped) %5.1f s"
          % (total - s["compute"] - protocol))
    print("  total / compute                   %7.2fx" % (total / s["compute"]))
    print("  torch alone, same inputs          %7.1f s  (%.1f s before, %.1f s after)" % (alone, before, after))
    print("  total / torch alone               %7.2fx" % (total / alone))
alones = [p[2] for p in pairs] + [pairs[-1][3]]
print("summary over %d runs" % runs)
print("  total / torch alone, each run     %s" % ", ".join("%.2fx" % r[2] for r in rows))
print("  median                            %7.2fx" % statistics.median(r[2] for r in rows))
print("  fastest sweep / fastest alone     %7.2fx  (%.1f s / %.1f s)"
      % (min(r[0] for r in rows) / min(alones), min(r[0] for r in rows), min(alones)))
EOF
