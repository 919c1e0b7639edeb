"""Broken on purpose: hangs on the cases whose seq_len is $XPOSCHECK_TEST_HANG_N
(default 7; "all": every case), after starting a helper process (`sleep`) that would outlive it unless
its whole process group is killed. Its pid and the helper's are appended to
$XPOSCHECK_TEST_PID_FILE when set."""

import os
import subprocess
import time

import numpy_rope
import xposcheck_candidate

HANG_N = os.environ.get("XPOSCHECK_TEST_HANG_N", "7")


def rotary(q, k, case):
    if HANG_N == "all" or case.seq_len == int(HANG_N):
        helper = subprocess.Popen(["sleep", "600"])
        pid_file = os.environ.get("XPOSCHECK_TEST_PID_FILE")
        if pid_file:
            with open(pid_file, "a") as f:
                f.write("%d %d\n" % (os.getpid(), helper.pid))
        while True:
            time.sleep(1)
    return numpy_rope.rotary(q, k, case)


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
