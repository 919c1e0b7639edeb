"""Rotary code in the shapes released libraries give it, each with its own frame, pairing
and dtype habits, for the test suite's verdicts on other people's conventions:

    --style torchscale     an XPOS module called on the keys (all M+N rows, downscaled)
                           and on the queries with offset M: neighbouring pairs,
                           positions 0..M+N-1, the XPOS centre at ceil((M+N)/2) of them
                           (min_pos = -(length + offset) // 2), float32 throughout,
                           cast to the dtype at the end (conventions origin + centre)
    --style cached-keys    a rotate-queries-with-cached-keys path: positions made in
                           the tensors' dtype (arange(k_len, dtype=q.dtype)), queries
                           scaled around the middle of their own slice of positions,
                           keys around the middle of all (bugs, in the cache frame)
    --style cos-sin-cache  a serving engine's cos/sin cache: float32 angles of
                           positions 0..max-1, the cache cast to the dtype, gathered by
                           integer positions, rotate-half pairs multiplied in the dtype
                           (the origin convention; no XPOS)
    --style complex        complex-number rotation: float32 polar table of positions
                           0..M+N-1, neighbouring pairs viewed as complex64 and
                           multiplied, cast back (the origin convention; no XPOS)
    --style flash-cache    a fused-kernel library's rotary module: cos and sin tables
                           (times the XPOS scale for queries, divided by it for keys)
                           made in float32 over positions 0..L-1 and stored in the
                           dtype, the rotation done in float32 from them; L is the
                           longest length the module has seen in this dtype, and the
                           XPOS centre floor(L/2), so the centre follows the calls that
                           came before (conventions origin + centre; in fp16 on long
                           memory its scaled tables overflow and lose bits where the
                           outputs would not: scaled-tables-in-dtype, a precision defect)
    --style palm           a PaLM-style rotary module: rotate-half pairs, cos, sin and the
                           XPOS scale tables built as cat(t, t) over positions 0..M+N-1,
                           the queries taking the last N rows, the XPOS centre at
                           floor((M+N)/2), float32 throughout, one cast at the end
                           (conventions origin + centre; half layout only)
    --style cat-scale      neighbouring pairs with repeat-interleaved angles, but the
                           XPOS scale table concatenated as half-pair code builds it,
                           so a pair's two features get different scales (a bug:
                           tables-other-layout)

Each is written from the published code's behaviour, not copied from it.
"""

import argparse
import pathlib
import sys

try:
    import xposcheck_candidate
except ImportError:  # run from a source checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import xposcheck_candidate

import torch

STYLES = ("torchscale", "cached-keys", "cos-sin-cache", "complex", "flash-cache", "palm", "cat-scale")


def neighbours_rotated(x):
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def each_twice(t):
    """[..., R/2] -> [..., R], column 2j and 2j+1 both pair j's."""
    return t.repeat_interleave(2, dim=-1)


def zeta(rotary_dim):
    return (torch.arange(0, rotary_dim, 2) + 0.4 * rotary_dim) / (1.4 * rotary_dim)


def torchscale_xpos(x, offset, downscale, scale_base):
    """One call of the module on rows x [rows, D] (float32 maths, one cast back)."""
    length, dim = x.shape[-2], x.shape[-1]
    low = -(length + offset) // 2
    high = length + offset + low
    power = torch.arange(low, high, 1, dtype=torch.float32) / scale_base
    scale = zeta(dim)[None, :] ** power[:, None]
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim // 2, dtype=torch.float32) / (dim // 2)))
    angles = torch.arange(0, high - low, dtype=torch.float32)[:, None] * inv_freq[None, :]
    sin, cos, scale = angles.sin()[-length:], angles.cos()[-length:], scale[-length:]
    if downscale:
        scale = 1 / scale
    sin, cos = each_twice(sin * scale), each_twice(cos * scale)
    return x * cos + neighbours_rotated(x) * sin


def torchscale(q, k, case):
    n, keys = q.shape[-2], k.shape[-2]
    k_out = torchscale_xpos(k.float(), 0, True, case.scale_base)
    q_out = torchscale_xpos(q.float(), keys - n, False, case.scale_base)
    return q_out.to(q.dtype), k_out.to(k.dtype)


def cached_keys(q, k, case):
    dtype, r = q.dtype, case.rotary_dim
    n, keys = q.shape[-2], k.shape[-2]
    inv_freq = 1.0 / (case.base ** (torch.arange(0, r, 2).float() / r))
    positions = torch.arange(keys, dtype=dtype) / case.interpolation  # in the tensors' dtype

    def rotate(x, seq, scale):
        angles = each_twice(seq.float()[:, None] * inv_freq[None, :])
        rot, rest = x[..., :r], x[..., r:]
        out = rot * angles.cos() * scale + neighbours_rotated(rot) * angles.sin() * scale
        return torch.cat((out.to(dtype), rest), dim=-1)

    def scale_of(seq):
        power = (seq - len(seq) // 2) / case.scale_base
        return each_twice(zeta(r)[None, :] ** power[:, None])

    q_scale = scale_of(positions[-n:]).to(dtype) if case.xpos else 1.0
    k_scale = scale_of(positions).to(dtype) if case.xpos else 1.0
    q_positions = (torch.arange(n, dtype=dtype) + (keys - n)) / case.interpolation
    return rotate(q, q_positions, q_scale), rotate(k, positions, k_scale ** -1)


def cos_sin_cache(q, k, case):
    r, n, keys = case.rotary_dim, q.shape[-2], k.shape[-2]
    inv_freq = 1.0 / (case.base ** (torch.arange(0, r, 2, dtype=torch.float) / r))
    angles = torch.outer(torch.arange(keys, dtype=torch.float), inv_freq)
    cache = torch.cat((angles.cos(), angles.sin()), dim=-1).to(q.dtype)

    def rotate(x, positions):
        cos, sin = cache.index_select(0, positions).chunk(2, dim=-1)
        rot, rest = x[..., :r], x[..., r:]
        first, second = rot.chunk(2, dim=-1)
        out = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
        return torch.cat((out, rest), dim=-1)

    all_keys = torch.arange(keys)
    return rotate(q, all_keys[keys - n:]), rotate(k, all_keys)


def complex_rotation(q, k, case):
    r, n, keys = case.rotary_dim, q.shape[-2], k.shape[-2]
    inv_freq = 1.0 / (case.base ** (torch.arange(0, r, 2)[: r // 2].float() / r))
    angles = torch.outer(torch.arange(keys), inv_freq).float()
    table = torch.polar(torch.ones_like(angles), angles)

    def rotate(x, rows):
        rot = torch.view_as_complex(x[..., :r].float().reshape(*x.shape[:-1], -1, 2))
        out = torch.view_as_real(rot * rows).flatten(-2)
        return torch.cat((out, x[..., r:].float()), dim=-1).type_as(x)

    return rotate(q, table[keys - n:]), rotate(k, table)


class FlashStyleRotary:
    """One module per frequency set, kept for the process's life as a model keeps it:
    its tables grow to the longest length asked for and are rebuilt when the dtype
    changes, never shrunk."""

    def __init__(self, case):
        r = case.rotary_dim
        self.inv_freq = 1.0 / (case.base ** (torch.arange(0, r, 2, dtype=torch.float32) / r))
        self.zeta = (torch.arange(0, r, 2, dtype=torch.float32) + 0.4 * r) / (1.4 * r)
        self.scale_base = case.scale_base if case.xpos else None
        self.length, self.dtype = 0, None

    def update(self, length, dtype):
        if length <= self.length and dtype == self.dtype:
            return
        self.length, self.dtype = length, dtype
        angles = torch.outer(torch.arange(length, dtype=torch.float32), self.inv_freq)
        cos, sin = angles.cos(), angles.sin()
        scale = torch.ones(())
        if self.scale_base is not None:
            power = (torch.arange(length, dtype=torch.float32) - length // 2) / self.scale_base
            scale = self.zeta[None, :] ** power[:, None]
        self.cos, self.sin = (cos * scale).to(dtype), (sin * scale).to(dtype)
        self.cos_k, self.sin_k = (cos / scale).to(dtype), (sin / scale).to(dtype)


def rotate_from_tables(x, cos, sin, case):
    """The fused kernel's arithmetic: x and the dtype's tables in float32, one rounding."""
    r = case.rotary_dim
    rot, rest = x[..., :r].float(), x[..., r:]
    cos, sin = cos.float(), sin.float()
    if case.layout == "interleaved":
        out = rot * each_twice(cos) + neighbours_rotated(rot) * each_twice(sin)
    else:
        first, second = rot.chunk(2, dim=-1)
        out = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
    return torch.cat((out.to(x.dtype), rest), dim=-1)


_modules = {}


def flash_cache(q, k, case):
    n, keys = q.shape[-2], k.shape[-2]
    key = (case.rotary_dim, case.base, case.xpos, case.scale_base)
    module = _modules.setdefault(key, FlashStyleRotary(case))
    module.update(keys, q.dtype)
    q_out = rotate_from_tables(q, module.cos[keys - n:keys], module.sin[keys - n:keys], case)
    k_out = rotate_from_tables(k, module.cos_k[:keys], module.sin_k[:keys], case)
    return q_out, k_out


def rotate_half(x):
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def key_range_tables(case, keys):
    """Angles and XPOS scales [keys, R/2], one column per pair, over positions
    0..keys-1, the XPOS centre at keys // 2."""
    r = case.rotary_dim
    inv_freq = 1.0 / (case.base ** (torch.arange(0, r, 2).float() / r))
    t = torch.arange(keys).float()
    angles = torch.einsum("i,j->ij", t, inv_freq)
    if case.xpos:
        scale = zeta(r)[None, :] ** ((t - keys // 2) / case.scale_base)[:, None]
    else:
        scale = torch.ones(keys, r // 2)
    return angles, scale


def apply_tables(x, angles, scale, rotate, r):
    rot, rest = x[..., :r].float(), x[..., r:]
    out = rot * angles.cos() * scale + rotate(rot) * angles.sin() * scale
    return torch.cat((out.to(x.dtype), rest), dim=-1)


def concatenated(t):
    return torch.cat((t, t), dim=-1)


def palm(q, k, case):
    n, keys, r = q.shape[-2], k.shape[-2], case.rotary_dim
    angles, scale = key_range_tables(case, keys)
    angles, scale = concatenated(angles), concatenated(scale)  # rotate-half's layout
    return (apply_tables(q, angles[keys - n:], scale[keys - n:], rotate_half, r),
            apply_tables(k, angles, scale ** -1, rotate_half, r))


def cat_scale(q, k, case):
    n, keys, r = q.shape[-2], k.shape[-2], case.rotary_dim
    angles, scale = key_range_tables(case, keys)
    angles, scale = each_twice(angles), concatenated(scale)  # the scale laid out for half pairs
    return (apply_tables(q, angles[keys - n:], scale[keys - n:], neighbours_rotated, r),
            apply_tables(k, angles, scale ** -1, neighbours_rotated, r))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", choices=STYLES, required=True)
    parser.add_argument("work_dir")
    args = parser.parse_args()
    fn = {"torchscale": torchscale, "cached-keys": cached_keys,
          "cos-sin-cache": cos_sin_cache, "complex": complex_rotation,
          "flash-cache": flash_cache, "palm": palm, "cat-scale": cat_scale}[args.style]
    xposcheck_candidate.run(fn, tensors="torch", argv=[sys.argv[0], args.work_dir])


if __name__ == "__main__":
    main()
