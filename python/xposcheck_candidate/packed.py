"""Packed batches (docs/streams.md, "Packed batches"): one manifest entry holds several
sequences of different lengths in one tensor, flash-attention's varlen layout: the
queries of sequence i are rows cu_seqlens_q[i] .. cu_seqlens_q[i+1]-1, its keys (its
M_i memory rows, then its N_i rows) rows cu_seqlens_k[i] .. cu_seqlens_k[i+1]-1, each
sequence with its own frame and XPOS centre (params["packed"]).

A candidate that says `run(fn, packed=True)` gets the packed tensors whole and the
sequences from the Case; any other gets one call per sequence, a plain case of its
own, and the helper packs the outputs.
"""

import numpy as np

from .joined import JoinedOutputs


class SequenceError(Exception):
    """A call for one sequence failed: the message names the sequence."""

    def __init__(self, label, cause):
        super().__init__("%s: %s: %s" % (label, type(cause).__name__, cause))
        self.cause = cause


def cu_seqlens(params):
    """(cu_seqlens_q, cu_seqlens_k): where each sequence's query and key rows start,
    with the total at the end (S + 1 entries each)."""
    q, k = [0], [0]
    for s in params["packed"]:
        q.append(q[-1] + s["seq_len"])
        k.append(k[-1] + s["mem_len"] + s["seq_len"])
    return np.asarray(q, dtype=np.int64), np.asarray(k, dtype=np.int64)


def sequence_params(params, i):
    """The parameters of sequence i as a plain case (every default resolved)."""
    s = params["packed"][i]
    one = {key: value for key, value in params.items() if key != "packed"}
    one["seq_len"], one["mem_len"] = s["seq_len"], s["mem_len"]
    one["first_position"], one["center"] = s["first_position"], s["center"]
    return one


def _rows(shape, rows):
    return tuple(shape[:2]) + (rows,) + tuple(shape[3:])


def _label(params, i):
    s = params["packed"][i]
    return "sequence %d of %d (N = %d, M = %d)" % (i, len(params["packed"]), s["seq_len"], s["mem_len"])


def sequence_entries(entry):
    """For every sequence: (its manifest entry as a plain case, its query rows, its key
    rows) as slices along the row axis."""
    params = entry["params"]
    cu_q, cu_k = cu_seqlens(params)
    for i in range(len(params["packed"])):
        one = sequence_params(params, i)
        n, keys = one["seq_len"], one["mem_len"] + one["seq_len"]
        shapes = {"q_in": _rows(entry["shapes"]["q_in"], n), "k_in": _rows(entry["shapes"]["k_in"], keys)}
        shapes["q_out"], shapes["k_out"] = shapes["q_in"], shapes["k_in"]
        sub = dict(entry, params=one, shapes=shapes)
        yield i, sub, slice(int(cu_q[i]), int(cu_q[i + 1])), slice(int(cu_k[i]), int(cu_k[i + 1]))


def run_by_sequence(call, entry):
    """call(sub_entry, q_rows, k_rows) -> (q-shaped, k-shaped) for every sequence, where
    q_rows and k_rows are the slices of its rows; the results packed back into tensors
    shaped like the case's outputs. Raises SequenceError naming the sequence."""
    joined = JoinedOutputs(entry["shapes"]["q_out"], entry["shapes"]["k_out"], "earlier sequences")
    for i, sub, q_rows, k_rows in sequence_entries(entry):
        try:
            joined.place(call(sub, q_rows, k_rows), q_rows, k_rows, sub["shapes"]["q_out"], sub["shapes"]["k_out"])
        except Exception as e:  # every failure of a call is the batch's, naming the sequence
            raise SequenceError(_label(entry["params"], i), e) from e
    return joined.q, joined.k
