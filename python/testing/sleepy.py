"""Correct, and slow on every case: it sleeps $XPOSCHECK_TEST_SLEEP_S seconds
(default 1.0) before computing each one. Shows when a serving process starts a batch
handed to it ahead of time. With $XPOSCHECK_TEST_ORDER_FILE, appends each case's
seq_len there as it comes: the order in which the harness sent them. With
$XPOSCHECK_TEST_STARTS_FILE, appends its pid there as it starts: the processes the
harness started, used or not."""

import os
import time

import numpy_rope
import xposcheck_candidate

SLEEP_S = float(os.environ.get("XPOSCHECK_TEST_SLEEP_S", "1.0"))
ORDER_FILE = os.environ.get("XPOSCHECK_TEST_ORDER_FILE")
STARTS_FILE = os.environ.get("XPOSCHECK_TEST_STARTS_FILE")


def rotary(q, k, case):
    if ORDER_FILE:
        with open(ORDER_FILE, "a") as f:
            f.write("%d\n" % case.seq_len)
    time.sleep(SLEEP_S)
    return numpy_rope.rotary(q, k, case)


if __name__ == "__main__":
    if STARTS_FILE:
        with open(STARTS_FILE, "a") as f:
            f.write("%d\n" % os.getpid())
    xposcheck_candidate.run(rotary)
