"""Rotary XPOS with memory in PyTorch, written the way x-transformers writes it (after
the early-2024 fix), as an xposcheck candidate.

    xposcheck sweep --grid cases/smoke.toml \
        --candidate-cmd '/usr/bin/python3 python/candidates/torch_xtransformers.py'

What it does, as x-transformers does:
- angles in fp32: inv_freq = 1 / base^(2j/R) and freqs = (t * inv_freq) / alpha, with
  t the true positions -M..N-1 (memory keys negative; a stream's steps at their
  offset); the NTK rescale multiplies the
  base by f^(R/(R-2));
- the XPOS scale zeta_j^((t - c)/B) in fp32 from the same true positions, sliced to the
  last N rows for the queries (keys get its reciprocal, all M+N rows);
- (t * cos * scale) + (rotate(t) * sin * scale) on the candidate's dtype, which PyTorch
  promotes to fp32 against the fp32 tables; the result is cast back to the dtype and
  the features past R pass through untouched.
The pairing follows the case's layout: rotate_half for "half", every-two for
"interleaved". The centre c is the case's (floor(N/2) unless the grid sets it, which
is also what x-transformers' max_pos // 2 gives).
"""

import pathlib
import sys

try:
    import xposcheck_candidate
except ImportError:  # run from a source checkout without installing the helper
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import xposcheck_candidate

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, use_xpos=True, scale_base=512, interpolation_factor=1.0,
                 base=10000, base_rescale_factor=1.0, interleaved=False):
        super().__init__()
        if base_rescale_factor != 1.0:
            base *= base_rescale_factor ** (dim / (dim - 2))
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)
        self.interpolation_factor = interpolation_factor
        self.interleaved = interleaved
        self.scale_base = scale_base
        scale = (torch.arange(0, dim, 2) + 0.4 * dim) / (1.4 * dim) if use_xpos else None
        self.register_buffer("scale", scale)

    def _spread(self, table):
        # One column per feature: [j..., j...] for rotate_half, [j, j, ...] for pairs.
        if self.interleaved:
            return table.repeat_interleave(2, dim=-1)
        return torch.cat((table, table), dim=-1)

    def forward(self, t, center=None):
        """Tables for positions t: (freqs [P, R], scale [P, R] or 1.)."""
        freqs = torch.einsum("i , j -> i j", t.type_as(self.inv_freq), self.inv_freq)
        freqs = self._spread(freqs / self.interpolation_factor)
        if self.scale is None:
            return freqs, 1.0
        if center is None:
            center = (t.max() + 1) // 2
        power = (t - center) / self.scale_base
        return freqs, self._spread(self.scale ** power.unsqueeze(-1))


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotate_every_two(x):
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def apply_rotary_pos_emb(t, freqs, scale=1.0, interleaved=False):
    rot_dim, seq_len, orig_dtype = freqs.shape[-1], t.shape[-2], t.dtype
    freqs = freqs[-seq_len:, :]
    scale = scale[-seq_len:, :] if isinstance(scale, torch.Tensor) else scale
    t, t_unrotated = t[..., :rot_dim], t[..., rot_dim:]
    rotate = rotate_every_two if interleaved else rotate_half
    t = (t * freqs.cos() * scale) + (rotate(t) * freqs.sin() * scale)
    return torch.cat((t.type(orig_dtype), t_unrotated), dim=-1)


def rotary(q, k, case):
    interleaved = case.layout == "interleaved"
    rope = RotaryEmbedding(case.rotary_dim, use_xpos=case.xpos, scale_base=case.scale_base,
                           interpolation_factor=case.interpolation, base=case.base,
                           base_rescale_factor=case.base_rescale, interleaved=interleaved)
    # The case's true positions: -M..N-1 for one call, offset for each call of a stream
    # (x-transformers hands its rotary the positions after the cached ones).
    positions = torch.from_numpy(case.key_positions())
    freqs, scale = rope(positions, center=case.center)
    q_scale, k_scale = (scale, scale ** -1.0) if isinstance(scale, torch.Tensor) else (1.0, 1.0)
    return (apply_rotary_pos_emb(q, freqs, q_scale, interleaved),
            apply_rotary_pos_emb(k, freqs, k_scale, interleaved))


if __name__ == "__main__":
    xposcheck_candidate.run(rotary, tensors="torch")
