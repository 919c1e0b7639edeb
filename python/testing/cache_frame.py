"""Rotary XPOS written in the cache frame, the way code with a KV cache or memory writes
it: keys at positions 0..M+N-1, queries at M..M+N-1, and the XPOS centre chosen in that
frame by one of the rules real code uses:

    --centre queries   first query + floor(N/2): SPEC's centre moved along (origin only)
    --centre keys      floor((M+N)/2): the middle of the positions it was given
    --centre keys-up   ceil((M+N)/2): torchscale's min_pos = -(L // 2) ... rounded up
    --centre lengths   each tensor centred on floor(its own length / 2): queries at
                       floor(N/2), keys at floor((M+N)/2), as a cached-key path that builds
                       the query scale from the query positions alone does (a bug)

The math is SPEC's in fp64, rounded once to the case's dtype, so any difference from
golden outputs in SPEC's segment frame is the frame and the centre alone.

    --nudge-key-row R  scales key row R (negative: from the end) by 1.01 before the
                       rounding: a bug on one row, which a sample of rows may miss
    --nudge-query-row R
                       the same on query row R, which logits of sampled query rows
                       may miss too
"""

import argparse
import pathlib
import sys

import numpy as np

try:
    import xposcheck_candidate
except ImportError:  # run from a source checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import xposcheck_candidate


def centres(rule, n, m):
    """(query centre, key centre) in the cache frame."""
    keys = m + n
    return {"queries": (m + n // 2,) * 2,
            "keys": (keys // 2,) * 2,
            "keys-up": ((keys + 1) // 2,) * 2,
            "lengths": (n // 2, keys // 2)}[rule]


def rotate(x, positions, centre, exponent, case):
    r = case.rotary_dim
    base = case.base * case.base_rescale ** (r / (r - 2)) if case.base_rescale != 1 else case.base
    j = np.arange(r // 2, dtype=np.float64)
    angle = np.outer(positions, base ** (-2 * j / r)) / case.interpolation
    scale = np.ones_like(angle)
    if case.xpos:
        zeta = (2 * j + 0.4 * r) / (1.4 * r)
        scale = zeta[None, :] ** (exponent * (positions[:, None] - centre) / case.scale_base)
    if case.layout == "half":
        a, b = np.arange(r // 2), np.arange(r // 2) + r // 2
    else:
        a, b = np.arange(0, r, 2), np.arange(1, r, 2)
    x = x.astype(np.float64)
    out = x.copy()
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    out[..., a] = x[..., a] * cos - x[..., b] * sin
    out[..., b] = x[..., b] * cos + x[..., a] * sin
    return case.cast(out)


def nudged(x, row):
    if row is None:
        return x
    x = x.astype(np.float64)
    x[..., row, :] *= 1.01
    return x


def make(rule, nudged_key_row=None, nudged_query_row=None):
    def rotary(q, k, case):
        n, m = case.seq_len, case.mem_len
        q_centre, k_centre = centres(rule, n, m)
        keys = np.arange(0, m + n, dtype=np.float64)
        q, k = nudged(q, nudged_query_row), nudged(k, nudged_key_row)
        return (rotate(q, keys[m:], q_centre, 1.0, case),
                rotate(k, keys, k_centre, -1.0, case))
    return rotary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--centre", choices=("queries", "keys", "keys-up", "lengths"),
                        default="queries")
    parser.add_argument("--nudge-key-row", type=int)
    parser.add_argument("--nudge-query-row", type=int)
    parser.add_argument("work_dir")
    args = parser.parse_args()
    xposcheck_candidate.run(make(args.centre, args.nudge_key_row, args.nudge_query_row), argv=[sys.argv[0], args.work_dir])
