"""Broken on purpose in its backward pass only: dk comes back without the M memory
rows (N rows instead of M + N); the forward pass is numpy_rope's, correct."""

import numpy_rope
import xposcheck_candidate


def rotary_backward(g_q, g_k, q, k, case):
    return g_q, g_k[..., case.mem_len:, :]


if __name__ == "__main__":
    xposcheck_candidate.run(numpy_rope.rotary, backward=rotary_backward)
