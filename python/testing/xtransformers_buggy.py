"""Broken on purpose: x-transformers' rotary embedding as it was before the early-2024
fix of rotary XPOS with Transformer-XL memory, for the PyTorch adapter's tests.

apply_rotary_pos_emb slices the angle table to the last `seq_len` rows but not the
XPOS scale, so with memory the N query rows meet a scale of M + N rows and PyTorch
raises "The size of tensor a (1024) must match the size of tensor b (1124) at
non-singleton dimension 2". Without memory the shapes agree and the bug is
invisible. Run it with:

    xposcheck sweep --grid cases/regressions/x-transformers-xpos-mems.toml \\
        --candidate-cmd '/usr/bin/python3 python/candidates/torch_adapter.py \\
                         --module python/testing/xtransformers_buggy.py'
"""

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim, use_xpos=False, scale_base=512, interpolation_factor=1.0, base=10000,
                 base_rescale_factor=1.0):
        super().__init__()
        base *= base_rescale_factor ** (dim / (dim - 2)) if base_rescale_factor != 1.0 else 1.0
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
        self.register_buffer("inv_freq", inv_freq)
        self.interpolation_factor = interpolation_factor
        self.scale_base = scale_base
        scale = (torch.arange(0, dim, 2) + 0.4 * dim) / (1.4 * dim) if use_xpos else None
        self.register_buffer("scale", scale)

    def forward(self, t):
        max_pos = t.max() + 1
        freqs = torch.einsum("i , j -> i j", t.type_as(self.inv_freq), self.inv_freq)
        freqs = freqs / self.interpolation_factor
        freqs = torch.cat((freqs, freqs), dim=-1)
        if self.scale is None:
            return freqs, 1.0
        power = (t - (max_pos // 2)) / self.scale_base
        scale = self.scale ** power.unsqueeze(-1)
        return freqs, torch.cat((scale, scale), dim=-1)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(t, freqs, scale=1.0):
    rot_dim, seq_len, orig_dtype = freqs.shape[-1], t.shape[-2], t.dtype
    freqs = freqs[-seq_len:, :]  # the bug: `scale` is not sliced like this
    t, t_unrotated = t[..., :rot_dim], t[..., rot_dim:]
    t = (t * freqs.cos() * scale) + (rotate_half(t) * freqs.sin() * scale)
    return torch.cat((t.type(orig_dtype), t_unrotated), dim=-1)
