"""A correct candidate in NumPy: float64 math, one rounding to the dtype."""

import numpy_rope
import xposcheck_candidate

if __name__ == "__main__":
    xposcheck_candidate.run(numpy_rope.rotary)
