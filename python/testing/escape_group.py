"""Broken on purpose: starts a helper (`sleep 1000`) in a session of its own, out of
reach of its process group, and writes the helper's pid to $XPOSCHECK_TEST_PID_FILE;
otherwise correct. No process of a candidate may outlive the sweep."""

import os
import subprocess

import numpy_rope
import xposcheck_candidate

STARTED = []


def rotary(q, k, case):
    if not STARTED:
        helper = subprocess.Popen(["sleep", "1000"], start_new_session=True)
        STARTED.append(helper)
        with open(os.environ["XPOSCHECK_TEST_PID_FILE"], "a") as f:
            f.write("%d\n" % helper.pid)
    return numpy_rope.rotary(q, k, case)


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
