"""Write an xposcheck candidate as one function.

    import xposcheck_candidate

    def rotary(q, k, case):
        ...                      # q [batch, heads, N, D], k [batch, heads, M+N, D]
        return q_out, k_out

    if __name__ == "__main__":
        xposcheck_candidate.run(rotary)                    # NumPy arrays
        # xposcheck_candidate.run(rotary, tensors="torch") # torch tensors

Then: xposcheck sweep --grid cases/smoke.toml --candidate-cmd 'python3 my_rope.py'.
The protocol underneath is described in docs/protocol.md.
"""

from .dtypes import bf16_bits_to_float32, cast, float32_to_bf16_bits, round_to_bf16
from .errors import SHAPE_PATTERNS, ShapeError, error_record, is_shape_error
from .protocol import (PROTOCOL, PROTOCOL_VERSION, SERVE_ENV, Case, ProtocolError, read_manifest,
                       run)

__version__ = "0.1.0"

__all__ = [
    "Case",
    "PROTOCOL",
    "PROTOCOL_VERSION",
    "ProtocolError",
    "SERVE_ENV",
    "SHAPE_PATTERNS",
    "ShapeError",
    "bf16_bits_to_float32",
    "cast",
    "error_record",
    "float32_to_bf16_bits",
    "is_shape_error",
    "read_manifest",
    "round_to_bf16",
    "run",
]
