"""Broken on purpose: puts FIFOs (named pipes, which block whoever opens them for
reading) where files belong: candidate.json; both outputs of the first case; the
error record of the second; the result record of the third (whose outputs are
correct); a symbolic link to /dev/zero as the fourth case's q_out. Every other case
is correct. The harness must read only regular files and never wait on a pipe."""

import os
import sys

import numpy_rope
import xposcheck_candidate

if __name__ == "__main__":
    work_dir = sys.argv[-1]
    os.environ.pop(xposcheck_candidate.SERVE_ENV, None)
    os.mkfifo(os.path.join(work_dir, "candidate.json"))
    manifest = xposcheck_candidate.read_manifest(work_dir)
    for i, entry in enumerate(manifest["cases"]):
        if i == 0:
            os.mkfifo(entry["outputs"]["q"])
            os.mkfifo(entry["outputs"]["k"])
        elif i == 1:
            os.mkfifo(entry["error"])
        elif i == 3:
            xposcheck_candidate.protocol.run_case(numpy_rope.rotary, entry, manifest["bf16_encoding"], "numpy")
            os.remove(entry["outputs"]["q"])
            os.symlink("/dev/zero", entry["outputs"]["q"])
        else:
            xposcheck_candidate.protocol.run_case(numpy_rope.rotary, entry, manifest["bf16_encoding"], "numpy")
            if i == 2:
                os.remove(entry["result"])
                os.mkfifo(entry["result"])
