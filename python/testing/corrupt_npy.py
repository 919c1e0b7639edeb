"""Broken on purpose: writes correct outputs, then cuts the last 10 bytes off the
first case's q_out and replaces the second case's k_out with bytes that are not a
.npy file.

The damage is done before the process ends and without done.json: the harness reads
the outputs once a candidate says it is done (and ends it then), so damage done after
that would race with the reading."""

import os
import sys

import numpy_rope
import xposcheck_candidate
from xposcheck_candidate import protocol

if __name__ == "__main__":
    work_dir = sys.argv[-1]
    if not os.path.exists(os.path.join(work_dir, protocol.MANIFEST_FILE)):
        sys.exit(2)  # started ahead of its batch: it cannot wait for one
    manifest = xposcheck_candidate.read_manifest(work_dir)
    cases = manifest["cases"]
    for entry in cases:
        protocol.run_case(numpy_rope.rotary, entry, manifest.get("bf16_encoding", "bits"), "numpy")
    q_out = cases[0]["outputs"]["q"]
    os.truncate(q_out, os.path.getsize(q_out) - 10)  # cut into the data
    if len(cases) > 1:
        with open(cases[1]["outputs"]["k"], "wb") as f:
            f.write(b"this is not a .npy file\n")
