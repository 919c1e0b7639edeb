"""Rotary XPOS as real PyTorch-style code computes it (float32 inverse frequencies and
angles, float32 XPOS scales, one cast to the case's dtype at the end), with one bug
planted on request, each written the way people write it rather than the way xposcheck's
built-in candidates plant it:

    --bug none                 correct
    --bug ntk-plus-two         NTK rescale with exponent R/(R+2) instead of R/(R-2)
    --bug freqs-bf16           inverse frequencies stored in bf16 (a half-precision buffer)
    --bug freqs-fp16           inverse frequencies stored in fp16
    --bug xpos-interpolated    positions divided by alpha before both the angles and the
                               XPOS power (the centre is taken from the undivided length)
    --bug passthrough-scaled   the XPOS scale of the first pair broadcast over the
                               pass-through features too
    --bug rotary-at-end        partial rotary applied to the last R features
    --bug centre-drift         keys centred on the whole key range, queries on theirs
                               (in SPEC's frame: a bug, the logits move)
    --bug positions-in-dtype   the position tensor made in the case's dtype
                               (torch.arange(n, dtype=torch.bfloat16))
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

BUGS = ("none", "ntk-plus-two", "freqs-bf16", "freqs-fp16", "xpos-interpolated",
        "passthrough-scaled", "rotary-at-end", "centre-drift", "positions-in-dtype")


def inverse_frequencies(case, bug):
    r = case.rotary_dim
    exponent = r / (r + 2) if bug == "ntk-plus-two" else r / (r - 2)
    base = np.float32(case.base * case.base_rescale ** exponent if case.base_rescale != 1 else case.base)
    inv = (np.float32(1) / base ** (np.arange(0, r, 2, dtype=np.float32) / np.float32(r))).astype(np.float32)
    if bug == "freqs-bf16":
        inv = xposcheck_candidate.round_to_bf16(inv)
    if bug == "freqs-fp16":
        inv = inv.astype(np.float16).astype(np.float32)
    return inv


def tables(case, positions, centre, bug):
    t = positions.astype(np.float32)
    if bug == "positions-in-dtype":
        t = case.cast(t).astype(np.float32)
    if bug == "xpos-interpolated":
        t = t / np.float32(case.interpolation)
        angles = np.outer(t, inverse_frequencies(case, bug))
    else:
        angles = np.outer(t, inverse_frequencies(case, bug)) / np.float32(case.interpolation)
    r = case.rotary_dim
    zeta = ((np.arange(0, r, 2, dtype=np.float32) + np.float32(0.4 * r)) / np.float32(1.4 * r))
    power = (t - np.float32(centre)) / np.float32(case.scale_base)
    scale = zeta[None, :] ** power[:, None] if case.xpos else np.ones_like(angles)
    return np.cos(angles), np.sin(angles), scale.astype(np.float32)


def rotate(x, cos, sin, scale, exponent, case, bug):
    r, d = case.rotary_dim, case.head_dim
    first = d - r if bug == "rotary-at-end" else 0
    rotated = np.arange(first, first + r)
    if case.layout == "half":
        a, b = rotated[: r // 2], rotated[r // 2:]
    else:
        a, b = rotated[0::2], rotated[1::2]
    x = x.astype(np.float32)
    s = scale if exponent > 0 else np.float32(1) / scale
    out = x.copy()
    out[..., a] = (x[..., a] * cos - x[..., b] * sin) * s
    out[..., b] = (x[..., b] * cos + x[..., a] * sin) * s
    if bug == "passthrough-scaled":
        rest = np.setdiff1d(np.arange(d), rotated)
        out[..., rest] = x[..., rest] * s[:, :1]
    return case.cast(out)


def make(bug):
    def rotary(q, k, case):
        keys, queries = case.key_positions(), case.query_positions()
        centre = case.center
        key_centre = keys[0] + len(keys) // 2 if bug == "centre-drift" else centre
        if bug == "xpos-interpolated":
            centre = key_centre = queries[0] + case.seq_len // 2
        q_out = rotate(q, *tables(case, queries, centre, bug), +1, case, bug)
        k_out = rotate(k, *tables(case, keys, key_centre, bug), -1, case, bug)
        return q_out, k_out
    return rotary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bug", choices=BUGS, default="none")
    parser.add_argument("work_dir")
    args = parser.parse_args()
    xposcheck_candidate.run(make(args.bug), argv=[sys.argv[0], args.work_dir])
