"""A decoder's rotary XPOS with state kept between calls, the way modules with a KV cache
keep it: cos, sin and scale tables cached on the module and reused by later calls. It
reads each call's positions and XPOS centre from the case (Case.query_positions(),
Case.key_positions(), Case.center), as a decoder is handed its offset.

    --cache positions  tables cached by absolute position and extended when a call needs
                       more: correct in every call
    --cache length     tables cached by the call's length alone, the offset left out of the
                       key (rotary-embedding-torch #11): every later call of a length seen
                       before gets the positions of that first call

The math is SPEC's in fp64, rounded once to the case's dtype.
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


class Rotary:
    def __init__(self, keyed_by):
        self.keyed_by = keyed_by
        self.tables = {}

    def frequencies(self, case):
        r = case.rotary_dim
        base = case.base * case.base_rescale ** (r / (r - 2)) if case.base_rescale != 1 else case.base
        j = np.arange(r // 2, dtype=np.float64)
        zeta = (2 * j + 0.4 * r) / (1.4 * r)
        return base ** (-2 * j / r) / case.interpolation, zeta

    def table(self, case, positions):
        """cos, sin and log-scale rows for the positions, through the module's cache."""
        if self.keyed_by == "length":
            key = len(positions)
            if key not in self.tables:
                self.tables[key] = self.compute(case, positions)
            return self.tables[key]
        missing = [p for p in positions if p not in self.tables]
        if missing:
            rows = self.compute(case, np.array(missing, dtype=np.float64))
            for i, p in enumerate(missing):
                self.tables[p] = tuple(t[i] for t in rows)
        return tuple(np.stack([self.tables[p][t] for p in positions]) for t in range(3))

    def compute(self, case, positions):
        omega, zeta = self.frequencies(case)
        angle = np.outer(positions, omega)
        power = (np.asarray(positions, dtype=np.float64)[:, None] - case.center) / case.scale_base
        log_scale = power * np.log(zeta)[None, :] if case.xpos else np.zeros_like(angle)
        return np.cos(angle), np.sin(angle), log_scale

    def rotate(self, x, case, positions, exponent):
        cos, sin, log_scale = self.table(case, [int(p) for p in positions])
        scale = np.exp(exponent * log_scale)
        r = case.rotary_dim
        if case.layout == "half":
            a, b = np.arange(r // 2), np.arange(r // 2) + r // 2
        else:
            a, b = np.arange(0, r, 2), np.arange(1, r, 2)
        x = x.astype(np.float64)
        out = x.copy()
        out[..., a] = (x[..., a] * cos - x[..., b] * sin) * scale
        out[..., b] = (x[..., b] * cos + x[..., a] * sin) * scale
        return case.cast(out)


def make(keyed_by):
    module = Rotary(keyed_by)

    def rotary(q, k, case):
        if not case.continues_stream:  # a new sequence: a decoder starts a new cache
            module.tables.clear()
        return (module.rotate(q, case, case.query_positions(), 1.0),
                module.rotate(k, case, case.key_positions(), -1.0))
    return rotary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", choices=("positions", "length"), default="positions")
    parser.add_argument("work_dir")
    args = parser.parse_args()
    xposcheck_candidate.run(make(args.cache), argv=[sys.argv[0], args.work_dir])
