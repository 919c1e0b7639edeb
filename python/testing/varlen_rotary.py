"""A candidate with a varlen path, as flash-attention's and vLLM's rotary kernels have:
it takes packed batches whole (run(..., packed=True)) and places every row by position
ids and XPOS centres built from cu_seqlens and the sequences' frames.

--bug continue: position ids run on across the sequence boundaries (each sequence
shifted by the key rows before it, its centre along), the packing bug of Megatron-LM
#5243. --bug reverse-sequence=I: sequence I alone rotated the wrong way, so that one
wrong sequence of a batch can be seen to fail alone.
"""

import argparse
import sys

import numpy as np

import numpy_rope
import xposcheck_candidate


def row_frames(case, bug):
    """Position and XPOS centre of every query row and key row, and which sequence each
    row belongs to."""
    cu_k = case.cu_seqlens_k()
    q_pos, k_pos, q_centre, k_centre, q_seq, k_seq = [], [], [], [], [], []
    for i, s in enumerate(case.sequences()):
        shift = int(cu_k[i]) if bug == "continue" else 0
        k_pos.append(s.key_positions() + shift)
        q_pos.append(s.query_positions() + shift)
        k_centre.append(np.full(s.mem_len + s.seq_len, s.center + shift))
        q_centre.append(np.full(s.seq_len, s.center + shift))
        k_seq.append(np.full(s.mem_len + s.seq_len, i))
        q_seq.append(np.full(s.seq_len, i))
    cat = np.concatenate
    return (cat(q_pos), cat(q_centre), cat(q_seq)), (cat(k_pos), cat(k_centre), cat(k_seq))


def tables(case, positions, centres, exponent):
    cos, sin, _ = numpy_rope.tables(case, positions, exponent)
    r = case.rotary_dim
    if not case.xpos:
        return cos, sin, np.ones_like(cos)
    j = np.arange(r // 2, dtype=np.float64)
    zeta = (2.0 * j + 0.4 * r) / (1.4 * r)
    power = exponent * (positions - centres)[:, None] / case.scale_base
    return cos, sin, zeta[None, :] ** power


def make(bug, reversed_sequence):
    def rotary(q, k, case):
        outs = []
        for x, (positions, centres, sequence), exponent in zip((q, k), row_frames(case, bug), (+1, -1)):
            cos, sin, scale = tables(case, positions, centres, exponent)
            sin = np.where((sequence == reversed_sequence)[:, None], -sin, sin)
            outs.append(case.cast(numpy_rope.rotate(x, case, cos, sin, scale)))
        return tuple(outs)
    return rotary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", default="none", help="none, continue or reverse-sequence=I")
    parser.add_argument("work_dir")
    args = parser.parse_args()
    reversed_sequence = -1
    if args.bug.startswith("reverse-sequence="):
        reversed_sequence = int(args.bug.split("=", 1)[1])
    elif args.bug not in ("none", "continue"):
        sys.exit("unknown --bug %r" % args.bug)
    xposcheck_candidate.run(make(args.bug, reversed_sequence), argv=[sys.argv[0], args.work_dir], packed=True)
