"""Correct, but slow on the first case of each process: it sleeps
$XPOSCHECK_TEST_SLOW_S seconds (default 1.5) before computing it. A slow case within
its allowance must pass and must not make the next case take the blame."""

import os
import time

import numpy_rope
import xposcheck_candidate

SLOW_S = float(os.environ.get("XPOSCHECK_TEST_SLOW_S", "1.5"))
SEEN = []


def rotary(q, k, case):
    if not SEEN:
        SEEN.append(case)
        time.sleep(SLOW_S)
    return numpy_rope.rotary(q, k, case)


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
