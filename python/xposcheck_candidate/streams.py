"""Streams sent whole (docs/streams.md, docs/protocol.md): one manifest entry holds the
whole case with its `stream` shape; the helper makes the calls a decoder would make, in
order, each with only its new rows at their true positions and the stream's centre,
and writes the joined outputs. The call cases follow the harness's Case::stream_call.
"""

import time

from .joined import JoinedOutputs


class StepError(Exception):
    """A call of a stream failed: the message names the step and its positions."""

    def __init__(self, label, cause):
        super().__init__("%s: %s: %s" % (label, type(cause).__name__, cause))
        self.cause = cause


def call_params(params, i):
    """The parameters of call i (0: the prefill) of a stream case."""
    stream = params["stream"]
    prefill, step_rows = stream["prefill"], stream["step_rows"]
    mem = params["mem_len"]
    first_query_row = 0 if i == 0 else prefill + (i - 1) * step_rows
    first_key_row = 0 if i == 0 else mem + first_query_row
    call = {key: value for key, value in params.items() if key != "stream"}
    call["seq_len"] = prefill if i == 0 else step_rows
    call["mem_len"] = mem if i == 0 else 0
    call["first_position"] = params["first_position"] + first_key_row
    return call, first_query_row, first_key_row


def call_count(params):
    stream = params["stream"]
    return 1 + (params["seq_len"] - stream["prefill"]) // stream["step_rows"]


def label(call, i):
    first = call["first_position"] + call["mem_len"]
    last = first + call["seq_len"] - 1
    if i == 0:
        return "prefill (positions %d..%d)" % (first, last)
    if first == last:
        return "step %d (position %d)" % (i, first)
    return "step %d (positions %d..%d)" % (i, first, last)


def _expected(shape_of, rows):
    return tuple(shape_of[:2]) + (rows,) + tuple(shape_of[3:])


def run_stream(fn, entry, q, k, make_case):
    """Calls fn once per call of the stream; returns (q_out, k_out, compute_s).

    Raises StepError naming the failing call."""
    params = entry["params"]
    joined = JoinedOutputs(entry["shapes"]["q_out"], entry["shapes"]["k_out"], "earlier calls")
    compute_s = 0.0
    for i in range(call_count(params)):
        call, q0, k0 = call_params(params, i)
        n, keys = call["seq_len"], call["mem_len"] + call["seq_len"]
        shapes = {"q_in": _expected(entry["shapes"]["q_in"], n), "k_in": _expected(entry["shapes"]["k_in"], keys)}
        shapes["q_out"], shapes["k_out"] = shapes["q_in"], shapes["k_in"]
        case = make_case({"id": entry["id"], "case_id": entry.get("case_id", ""), "dtype": entry["dtype"],
                          "params": call, "shapes": shapes, "continues_stream": i > 0})
        where = label(call, i)
        try:
            t0 = time.perf_counter()
            result = fn(q[..., q0:q0 + n, :], k[..., k0:k0 + keys, :], case)
            compute_s += time.perf_counter() - t0
            joined.place(result, slice(q0, q0 + n), slice(k0, k0 + keys), shapes["q_out"], shapes["k_out"])
        except Exception as e:  # every failure of a call is the stream's, naming the call
            raise StepError(where, e) from e
    return joined.q, joined.k, compute_s
