"""Broken on purpose: writes correct outputs, then cuts the last 10 bytes off the
first case's q_out and replaces the second case's k_out with bytes that are not a
.npy file."""

import os
import sys

import numpy_rope
import xposcheck_candidate

if __name__ == "__main__":
    # It works on its outputs after run() returns, so it cannot serve further batches.
    os.environ.pop(xposcheck_candidate.SERVE_ENV, None)
    xposcheck_candidate.run(numpy_rope.rotary)
    cases = xposcheck_candidate.read_manifest(sys.argv[-1])["cases"]
    q_out = cases[0]["outputs"]["q"]
    os.truncate(q_out, os.path.getsize(q_out) - 10)  # cut into the data
    if len(cases) > 1:
        with open(cases[1]["outputs"]["k"], "wb") as f:
            f.write(b"this is not a .npy file\n")
