"""Broken on purpose: a normal helper candidate, except that its process exits with
status 5 in the middle of the case whose seq_len is $XPOSCHECK_TEST_DIE_N (default 6),
leaving nothing for that case or the rest of its batch. In a process that serves
batches, that is a later batch than its first."""

import os
import sys

import numpy_rope
import xposcheck_candidate

DIE_N = int(os.environ.get("XPOSCHECK_TEST_DIE_N", "6"))


def rotary(q, k, case):
    if case.seq_len == DIE_N:
        sys.stderr.write("dying on purpose at N=%d\n" % DIE_N)
        sys.stderr.flush()
        os._exit(5)
    return numpy_rope.rotary(q, k, case)


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
