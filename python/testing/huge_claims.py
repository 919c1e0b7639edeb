"""Broken on purpose: small files that claim to be huge. Case 0: a sparse q_out of
shape (2**31,) (8 GiB, nearly all holes) and a correct k_out; case 1: a 250-byte
q_out whose version-2 header claims 0xFFFFFFF0 bytes; case 2: a sparse 1 GiB error
record. Reading any of them whole would take gigabytes; the harness must not."""

import os
import struct
import sys

import numpy_rope
import xposcheck_candidate


def sparse_npy(path, count):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d,), }" % count
    header += " " * (118 - len(header)) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.truncate(10 + len(header) + 4 * count)


if __name__ == "__main__":
    manifest = xposcheck_candidate.read_manifest(sys.argv[-1])
    os.environ.pop(xposcheck_candidate.SERVE_ENV, None)
    for i, entry in enumerate(manifest["cases"]):
        xposcheck_candidate.protocol.run_case(numpy_rope.rotary, entry, manifest["bf16_encoding"], "numpy")
        if i == 0:
            sparse_npy(entry["outputs"]["q"], 2**31)
        elif i == 1:
            with open(entry["outputs"]["q"], "wb") as f:
                f.write(b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{" * 238)
        elif i == 2:
            os.remove(entry["outputs"]["q"])
            with open(entry["error"], "wb") as f:
                f.write(b'{"message": "')
                f.truncate(1 << 30)
