"""Error records: what a case that raised leaves for the harness.

A shape error raised inside a candidate (the x-transformers XPOS bug raised "The size
of tensor a (1024) must match the size of tensor b (1124)") is a dimension mismatch,
not a crash: such errors get "kind": "shape" and the harness reports DIM_MISMATCH,
relating the sizes in the message to the case (1024 = N, 1124 = M + N).
"""

import re
import traceback


class ShapeError(ValueError):
    """Raise this from a candidate for a shape problem the patterns do not recognise."""


# Messages of shape errors in PyTorch, NumPy and JAX.
SHAPE_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"The size of tensor a \(\d+\) must match the size of tensor b \(\d+\)",
        r"(?i)shape mismatch",
        r"(?i)size mismatch",
        r"operands could not be broadcast together",
        r"Sizes of tensors must match",
        r"shapes cannot be multiplied",
        r"shapes \([\d, ]*\) and \([\d, ]*\) not aligned",
        r"(?i)incompatible shapes",
        r"cannot reshape array of size \d+ into shape",
        r"shape '\[[\d, -]*\]' is invalid for input of size \d+",
    )
)


def is_shape_error(exc):
    if isinstance(exc, ShapeError):
        return True
    text = str(exc)
    return any(p.search(text) for p in SHAPE_PATTERNS)


def error_record(exc, **extra):
    """The JSON-ready error record of an exception raised for one case."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = "%s:%d in %s" % (last.filename, last.lineno, last.name)
    record = {
        "kind": "shape" if is_shape_error(exc) else "error",
        "type": type(exc).__name__,
        "message": "%s: %s" % (type(exc).__name__, exc),
        "where": where,
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    }
    record.update(extra)
    return record
