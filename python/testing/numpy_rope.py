"""A plain NumPy implementation of the rotary XPOS math (SPEC section 1), in float64
then rounded once to the case's dtype. The deliberately broken test candidates in this
folder start from it and break one thing each."""

import numpy as np


def pair_indices(case):
    half = case.rotary_dim // 2
    j = np.arange(half)
    if case.layout == "half":
        return j, j + half
    return 2 * j, 2 * j + 1


def tables(case, positions, exponent):
    """cos, sin and XPOS scale ([rows, R/2], float64) at the given positions."""
    r = case.rotary_dim
    theta = case.base
    if case.base_rescale != 1:
        theta = theta * case.base_rescale ** (r / (r - 2))
    j = np.arange(r // 2, dtype=np.float64)
    omega = theta ** (-2.0 * j / r)
    phi = positions[:, None].astype(np.float64) * omega[None, :] / case.interpolation
    if case.xpos:
        zeta = (2.0 * j + 0.4 * r) / (1.4 * r)
        power = exponent * (positions[:, None] - case.center) / case.scale_base
        scale = zeta[None, :] ** power
    else:
        scale = np.ones_like(phi)
    return np.cos(phi), np.sin(phi), scale


def rotate(x, case, cos, sin, scale):
    a, b = pair_indices(case)
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    xa, xb = x[..., a], x[..., b]
    out[..., a] = (xa * cos - xb * sin) * scale
    out[..., b] = (xb * cos + xa * sin) * scale
    return out


def rotary(q, k, case):
    q_out = rotate(q, case, *tables(case, case.query_positions(), +1))
    k_out = rotate(k, case, *tables(case, case.key_positions(), -1))
    return case.cast(q_out), case.cast(k_out)
