"""Broken on purpose: finishes the first case, then reports a fatal error on stderr
and exits with status 3 without writing anything for the other cases."""

import sys

import numpy_rope
import xposcheck_candidate

if __name__ == "__main__":
    manifest = xposcheck_candidate.read_manifest(sys.argv[-1])
    xposcheck_candidate.protocol.run_case(numpy_rope.rotary, manifest["cases"][0], "bits", "numpy")
    sys.stderr.write("loading weights...\nfatal: CUDA driver not found (simulated)\n")
    sys.exit(3)
