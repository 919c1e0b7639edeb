"""Broken on purpose: returns float64 outputs whatever the case's dtype."""

import numpy_rope
import xposcheck_candidate


def rotary(q, k, case):
    return (numpy_rope.rotate(q, case, *numpy_rope.tables(case, case.query_positions(), +1)),
            numpy_rope.rotate(k, case, *numpy_rope.tables(case, case.key_positions(), -1)))


if __name__ == "__main__":
    xposcheck_candidate.run(rotary)
