"""Correct, and slow on every case: it sleeps $XPOSCHECK_TEST_SLEEP_S seconds
(default 1.0) before computing each one. Shows when a serving process starts a batch
handed to it ahead of time."""

import os
import time

import numpy_rope
import xposcheck_candidate

SLEEP_S = float(os.environ.get("XPOSCHECK_TEST_SLEEP_S", "1.0"))


def rotary(q, k, case):
    time.sleep(SLEEP_S)
    return numpy_rope.rotary(q, k, case)


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
