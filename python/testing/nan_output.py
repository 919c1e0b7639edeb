"""Broken on purpose: one NaN in q_out (last query row, feature 5)."""

import numpy as np

import numpy_rope
import xposcheck_candidate


def rotary(q, k, case):
    q_out, k_out = numpy_rope.rotary(q, k, case)
    q_out = q_out.copy()
    q_out[0, 0, -1, 5] = np.nan
    return q_out, k_out


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
