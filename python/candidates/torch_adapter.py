"""Point xposcheck at your own PyTorch rotary code without writing glue.

    xposcheck sweep --grid cases/smoke.toml --candidate-name mine \\
        --candidate-cmd '/usr/bin/python3 python/candidates/torch_adapter.py \\
                         --path src --module mypkg.rotary --attr RotaryEmbedding'

Two kinds of code are understood (docs/protocol.md, "PyTorch adapter"):

1. A RotaryEmbedding-like class with the x-transformers signature

       RotaryEmbedding(dim, use_xpos=True, scale_base=512, interpolation_factor=1.,
                       base=10000, base_rescale_factor=1.)
       forward(t) -> (freqs, scale)        t: positions (LongTensor [P]),
                                           freqs: [P, dim], scale: [P, dim] or 1.

   together with a module-level function (--apply, default apply_rotary_pos_emb)

       apply_rotary_pos_emb(t, freqs, scale) -> t rotated   t: [..., rows, D]

   that uses the last `rows` rows of freqs and scale. The adapter builds the
   embedding with dim = R, asks for the tables at the true positions -M..N-1, and
   applies them as x-transformers' attention does: queries with scale, keys with
   scale ** -1. --layout says how the module pairs features: half (rotate_half, the
   default) or interleaved (neighbours (2j, 2j+1), as current x-transformers does);
   a case of the other layout runs through an exact feature permutation, both ways.
   --frame says which positions the module's forward expects: the case's own
   (default: -M..N-1 in SPEC's segment frame), or cache (0..M+N-1, counted from the
   first cached key). The module picks its own XPOS centre from those positions; a
   different frame or centre than the case's is diagnosed as the origin or centre
   convention (docs/diagnosis.md), or set the case's frame in the grid.

2. A plain function rotary(q, k, case) -> (q_out, k_out) on torch tensors, as the
   xposcheck_candidate helper calls it.
"""

import argparse
import importlib
import importlib.util
import inspect
import pathlib
import sys

try:
    import xposcheck_candidate
except ImportError:  # run from a source checkout without installing the helper
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import xposcheck_candidate

import torch


def load_module(name):
    """A module by import path ("pkg.mod") or by file ("path/to/mod.py")."""
    if name.endswith(".py"):
        path = pathlib.Path(name).resolve()
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


def interleaved_to_half(rotary_dim):
    """Feature order that moves pair (2j, 2j+1) to (j, j + R/2)."""
    return list(range(0, rotary_dim, 2)) + list(range(1, rotary_dim, 2))


def permute_features(t, order):
    rotated = t[..., order]
    return torch.cat((rotated, t[..., len(order):]), dim=-1)


def inverse(order):
    back = [0] * len(order)
    for new, old in enumerate(order):
        back[old] = new
    return back


def half_to_interleaved(rotary_dim):
    """Feature order that moves pair (j, j + R/2) to (2j, 2j+1)."""
    return inverse(interleaved_to_half(rotary_dim))


def pairing_order(case_layout, module_layout, rotary_dim):
    """The exact feature permutation that presents a case's pairs the way the module
    pairs features (None when they agree)."""
    if case_layout == module_layout:
        return None
    if case_layout == "interleaved":
        return interleaved_to_half(rotary_dim)
    return half_to_interleaved(rotary_dim)


def module_positions(case, frame):
    """The key positions handed to the module's forward: the case's own (its frame),
    or 0..M+N-1 for a module that counts from the first cached key."""
    if frame == "cache":
        return torch.arange(0, case.mem_len + case.seq_len)
    return torch.from_numpy(case.key_positions())


class EmbeddingAdapter:
    """Runs a RotaryEmbedding class + apply function as x-transformers' attention does."""

    def __init__(self, cls, apply, layout, frame="case"):
        self.cls, self.apply, self.layout, self.frame = cls, apply, layout, frame

    def __call__(self, q, k, case):
        rope = self.cls(case.rotary_dim, use_xpos=case.xpos, scale_base=case.scale_base,
                        interpolation_factor=case.interpolation, base=case.base,
                        base_rescale_factor=case.base_rescale)
        # The module chooses its own XPOS centre from the positions it is given; where
        # that differs from the case's, the diagnosis names the convention.
        freqs, scale = rope(module_positions(case, self.frame))
        q_scale, k_scale = (scale, scale ** -1.0) if isinstance(scale, torch.Tensor) else (1.0, 1.0)
        order = pairing_order(case.layout, self.layout, case.rotary_dim)
        if order is not None:
            q, k = permute_features(q, order), permute_features(k, order)
        q_out, k_out = self.apply(q, freqs, q_scale), self.apply(k, freqs, k_scale)
        if order is not None:
            back = inverse(order)
            q_out, k_out = permute_features(q_out, back), permute_features(k_out, back)
        return q_out, k_out


def make_candidate(args):
    if args.path:
        sys.path.insert(0, args.path)
    module = load_module(args.module)
    target = getattr(module, args.attr)
    if inspect.isclass(target):
        apply = getattr(module, args.apply, None)
        if apply is None:
            raise SystemExit("torch_adapter: %s has no %s function (give --apply NAME)"
                             % (args.module, args.apply))
        return EmbeddingAdapter(target, apply, args.layout, args.frame)
    if callable(target):
        return target
    raise SystemExit("torch_adapter: %s.%s is neither a class nor a function" % (args.module, args.attr))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", required=True, help="import path (pkg.mod) or a .py file")
    parser.add_argument("--attr", default="RotaryEmbedding",
                        help="a RotaryEmbedding-like class, or a rotary(q, k, case) function")
    parser.add_argument("--apply", default="apply_rotary_pos_emb",
                        help="with a class: the module's apply function")
    parser.add_argument("--path", help="directory added to sys.path first")
    parser.add_argument("--layout", choices=("half", "interleaved"), default="half",
                        help="with a class: how the module pairs features")
    parser.add_argument("--frame", choices=("case", "cache"), default="case",
                        help="with a class: the positions its forward expects: the case's own "
                             "(default), or 0..M+N-1 counted from the first cached key")
    parser.add_argument("work_dir", help="the batch's work directory (given by xposcheck)")
    args = parser.parse_args(argv)
    candidate = make_candidate(args)
    xposcheck_candidate.run(candidate, tensors="torch", argv=[sys.argv[0], args.work_dir])


if __name__ == "__main__":
    main()
