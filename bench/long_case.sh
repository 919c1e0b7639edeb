#!/bin/sh
# One sweep over two long cases, N = M = 2^17 and N = M = 2^20 (D = 128, plain RoPE,
# fp32, one built-in candidate, one case at a time): each case's time (inputs, golden
# outputs, candidate and comparison, from the results' timings), the ratio of the two
# (8x the rows), and the sweep's peak resident set. Judged in blocks of rows: memory is
# a few blocks, whatever N and M are. Figures: docs/long-context.md.
#
#   bench/long_case.sh BUILD_DIR [CANDIDATE]
set -eu
build=${1:?usage: $0 BUILD_DIR [CANDIDATE]}
candidate=${2:-fp32-angles}
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/grid.toml" <<GRID
name = "long-case-bench"
description = "N = M = 2^17 and 2^20"
dtypes = ["fp32"]
seeds = [1]
[axes]
head_dim = 128
xpos = false
[[grid]]
seq_len = 131072
mem_len = 131072
[[grid]]
seq_len = 1048576
mem_len = 1048576
GRID
status=0
/usr/bin/time -v "$build/cli/xposcheck" sweep --grid "$work/grid.toml" --candidate "$candidate" --jobs 1 \
    --quiet --out "$work/results.json" 2> "$work/time" || status=$?
[ "$status" -le 1 ] || { cat "$work/time"; exit "$status"; }
grep -E "Elapsed|Maximum resident" "$work/time"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
$python - "$work/results.json" <<'PY'
import json, sys
records = json.load(open(sys.argv[1]))["records"]
seconds = {}
for r in records:
    t = r["timing"]
    total = t["inputs_s"] + t["golden_s"] + t["candidate_s"] + t["compare_s"]
    seconds[r["case"]["seq_len"]] = total
    print(f"{r['case_id']}: {r['outcome']}, {total:.2f} s (inputs {t['inputs_s']:.2f}, golden {t['golden_s']:.2f}, "
          f"candidate {t['candidate_s']:.2f}, comparison {t['compare_s']:.2f})")
print(f"2^20 / 2^17: {seconds[1048576] / seconds[131072]:.2f}x for 8x the rows")
PY
