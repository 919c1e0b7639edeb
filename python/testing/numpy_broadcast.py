"""Broken on purpose, the x-transformers XPOS bug in NumPy: the query scale is built
for all M + N key positions and never sliced to the N query rows, so with memory
NumPy raises "operands could not be broadcast together"."""

import numpy_rope
import xposcheck_candidate


def rotary(q, k, case):
    cos, sin, scale = numpy_rope.tables(case, case.key_positions(), +1)
    n = case.seq_len
    q_out = numpy_rope.rotate(q, case, cos[-n:], sin[-n:], scale)  # scale not sliced
    k_out = numpy_rope.rotate(k, case, *numpy_rope.tables(case, case.key_positions(), -1))
    return case.cast(q_out), case.cast(k_out)


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
