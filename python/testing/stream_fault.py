"""Broken on purpose, mid-stream: correct (numpy_rope) until the call whose first query
sits at position --at, where it raises (--fault raise), hangs (--fault hang) or returns
one row too many (--fault shape). Calls before it must have been judged, the failure
named with its step."""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import numpy_rope  # noqa: E402

try:
    import xposcheck_candidate
except ImportError:  # run from a source checkout
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    import xposcheck_candidate


def make(fault, at):
    def rotary(q, k, case):
        if case.continues_stream and case.query_positions()[0] == at:
            if fault == "raise":
                raise RuntimeError("KV cache index out of range")
            if fault == "hang":
                while True:
                    time.sleep(1)
            q_out, k_out = numpy_rope.rotary(q, k, case)
            return q_out, k_out[..., :1, :].repeat(k_out.shape[-2] + 1, axis=-2)
        return numpy_rope.rotary(q, k, case)
    return rotary


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", choices=("raise", "hang", "shape"), required=True)
    parser.add_argument("--at", type=int, required=True)
    parser.add_argument("work_dir")
    args = parser.parse_args()
    xposcheck_candidate.run(make(args.fault, args.at), argv=[sys.argv[0], args.work_dir])
