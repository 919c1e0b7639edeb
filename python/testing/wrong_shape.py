"""Broken on purpose: drops the memory keys, so k_out has N rows instead of M + N."""

import numpy_rope
import xposcheck_candidate


def rotary(q, k, case):
    q_out, k_out = numpy_rope.rotary(q, k, case)
    return q_out, k_out[..., case.mem_len:, :]


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
