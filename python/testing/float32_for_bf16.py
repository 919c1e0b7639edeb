"""Broken on purpose: returns float32 outputs, not rounded to bf16, whatever the case's
dtype (for a bf16 case, float32 values that bf16 cannot hold)."""

import numpy_rope
import xposcheck_candidate


def rotary(q, k, case):
    return (numpy_rope.rotate(q, case, *numpy_rope.tables(case, case.query_positions(), +1)).astype("float32"),
            numpy_rope.rotate(k, case, *numpy_rope.tables(case, case.key_positions(), -1)).astype("float32"))


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
