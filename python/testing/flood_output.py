"""Correct results, but it floods stdout (32 MiB) and stderr (4 MiB) first: the
harness must keep draining both pipes and keep only their tails."""

import sys

import numpy_rope
import xposcheck_candidate

if __name__ == "__main__":
    line = "x" * 1023 + "\n"
    for _ in range(32 * 1024):
        sys.stdout.write(line)
    for _ in range(4 * 1024):
        sys.stderr.write(line)
    sys.stdout.write("last line of stdout\n")
    sys.stdout.flush()
    xposcheck_candidate.run(numpy_rope.rotary)
