"""Outputs of several calls of a candidate joined into one case's q_out and k_out: the
calls of a stream sent whole (streams.py) and the sequences of a packed batch
(packed.py). Each call's outputs are checked before they are placed."""

import numpy as np

from . import dtypes
from .errors import ShapeError


class JoinedOutputs:
    def __init__(self, q_shape, k_shape, earlier):
        self._shapes = (tuple(q_shape), tuple(k_shape))
        self._earlier = earlier  # "earlier calls", "the sequences before"
        self.q = self.k = None

    def place(self, result, q_rows, k_rows, q_want, k_want):
        """Checks one call's result (q_out, k_out) against the shapes it should have and
        writes it to the row slices q_rows and k_rows of the joined outputs."""
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise TypeError("the candidate function must return (q_out, k_out), got %s" % type(result).__name__)
        q_out, k_out = dtypes.output_to_numpy(result[0]), dtypes.output_to_numpy(result[1])
        for name, got, want in (("q_out", q_out, q_want), ("k_out", k_out, k_want)):
            if tuple(got.shape) != tuple(want):
                raise ShapeError("returned %s of shape %s, expected %s" % (name, list(got.shape), list(want)))
        if self.q is None:
            self.q = np.empty(self._shapes[0], dtype=q_out.dtype)
            self.k = np.empty(self._shapes[1], dtype=k_out.dtype)
        if q_out.dtype != self.q.dtype or k_out.dtype != self.k.dtype:
            raise TypeError("returned %s/%s, %s %s/%s" % (q_out.dtype, k_out.dtype, self._earlier, self.q.dtype,
                                                          self.k.dtype))
        self.q[..., q_rows, :] = q_out
        self.k[..., k_rows, :] = k_out
