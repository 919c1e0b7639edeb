"""The candidate's side of the xposcheck work-directory protocol (docs/protocol.md).

The harness starts the candidate with a batch's work directory as its last argument
(and may hand a running process further batches). manifest.json lists the cases; for
each one, in order, the candidate reads the inputs, computes, and writes q_out and k_out
as .npy (or an error record), then a result record with its timings. A backward case
also reads the upstream gradients and writes dq and dk instead (backward.py).
"""

import itertools
import json
import os
import sys
import time

import numpy as np

from . import backward as backward_pass
from . import dtypes, packed as packed_batches, streams
from .errors import error_record
from .names import (BACKWARD_CAPABILITY, BACKWARD_PASS, CAPABILITIES_FILE, DONE_FILE,
                    FORWARD_PASS, HARNESS_PID_ENV, MANIFEST_FILE, NEXT_FILE, PASS_KEY, PROTOCOL,
                    PROTOCOL_VERSION, SERVE_ENV, WAIT_FOR_MANIFEST_ENV)

_PARAMS = ("head_dim", "rotary_dim", "base", "base_rescale", "interpolation", "xpos",
           "scale_base", "layout", "seq_len", "mem_len", "center", "batch", "heads")


class ProtocolError(RuntimeError):
    """The work directory or its manifest is not what this helper understands."""


class Case:
    """One case: its parameters (every default resolved), dtype and identifiers."""

    def __init__(self, entry):
        self.id = entry["id"]
        self.case_id = entry.get("case_id", self.id)
        self.dtype = entry["dtype"]
        self.pass_ = entry.get(PASS_KEY, FORWARD_PASS)  # "forward" or "backward"
        self.params = dict(entry["params"])
        for name in _PARAMS:
            setattr(self, name, self.params[name])
        # The frame (docs/protocol.md): the position of key row 0; -M unless the grid
        # says otherwise (0 is the cache frame).
        self.first_position = self.params.get("first_position", -self.mem_len)
        # True when this case is the next call of the previous case's stream
        # (docs/streams.md): the same process serves them in order.
        self.continues_stream = bool(entry.get("continues_stream", False))
        self.q_shape = tuple(entry["shapes"]["q_out"])
        self.k_shape = tuple(entry["shapes"]["k_out"])
        # A packed batch (docs/streams.md): its sequences' sizes, frames and centres;
        # None for a plain case. `center` then means nothing: each sequence has its own.
        self.packed = self.params.get("packed")
        self._entry = entry

    def sequences(self):
        """A packed batch's sequences, each a plain Case (its own N, M, frame, centre)."""
        if self.packed is None:
            return [self]
        return [Case(sub) for _, sub, _, _ in packed_batches.sequence_entries(self._entry)]

    def cu_seqlens_q(self):
        """Where each sequence's query rows start, and the total (S + 1 entries)."""
        return self._cu_seqlens()[0]

    def cu_seqlens_k(self):
        """Where each sequence's key rows (memory first) start, and the total."""
        return self._cu_seqlens()[1]

    def _cu_seqlens(self):
        if self.packed is None:
            return (np.asarray([0, self.seq_len], dtype=np.int64),
                    np.asarray([0, self.mem_len + self.seq_len], dtype=np.int64))
        return packed_batches.cu_seqlens(self.params)

    def query_positions(self):
        """Positions of the query rows: the last N key positions (0 .. N-1 by default);
        in a packed batch, every sequence's own, one after the other."""
        if self.packed is not None:
            return np.concatenate([s.query_positions() for s in self.sequences()])
        return self.key_positions()[self.mem_len:]

    def key_positions(self):
        """Positions of the key rows: -M .. N-1 by default (memory keys are negative),
        0 .. M+N-1 in the cache frame, or the case's explicit positions (any integers,
        e.g. random position ids) when it gives them."""
        if "positions" in self.params:
            return np.asarray(self.params["positions"], dtype=np.int64)
        if self.packed is not None:
            return np.concatenate([s.key_positions() for s in self.sequences()])
        first = self.first_position
        return np.arange(first, first + self.mem_len + self.seq_len, dtype=np.int64)

    def cast(self, values):
        """Rounds a NumPy array to this case's dtype (bf16 values held in float32)."""
        return dtypes.cast(values, self.dtype)

    @property
    def torch_dtype(self):
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.dtype]

    def __repr__(self):
        return "Case(%s, %s)" % (self.case_id, self.dtype)


_temporaries = itertools.count()


def write_atomically(path, writer):
    """Writes `path` through writer(binary file) so that a reader (the harness takes an
    existing file as complete) sees the old file or the whole new one: a temporary
    beside it, then renamed. A target that exists and is not a regular file (/dev/null,
    a FIFO) is written directly; on failure the temporary is removed. The same policy
    as the harness's write_atomically (reference/atomic_file.hpp)."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        with open(path, "wb") as f:
            writer(f)
        return
    head, name = os.path.split(path)
    tmp = os.path.join(head, ".%s.tmp-%d-%d" % (name, os.getpid(), next(_temporaries)))
    try:
        with open(tmp, "wb") as f:
            writer(f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _save_npy(path, array):
    write_atomically(path, lambda f: np.save(f, array, allow_pickle=False))


def _save_json(path, value):
    write_atomically(path, lambda f: f.write(json.dumps(value).encode()))


def read_manifest(work_dir):
    path = os.path.join(work_dir, MANIFEST_FILE)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as e:
        raise ProtocolError("%s: cannot read the manifest: %s" % (path, e))
    if manifest.get("protocol") != PROTOCOL:
        raise ProtocolError("%s: not an xposcheck candidate manifest" % path)
    if manifest.get("version") != PROTOCOL_VERSION:
        raise ProtocolError("%s: protocol version %r, this helper speaks %d"
                            % (path, manifest.get("version"), PROTOCOL_VERSION))
    return manifest


def _announce(work_dir, has_backward):
    # Tells the harness that this candidate can be started before its manifest exists,
    # and whether it may be sent backward cases.
    try:
        _save_json(os.path.join(work_dir, CAPABILITIES_FILE),
                   {"helper": "xposcheck_candidate", "protocol_version": PROTOCOL_VERSION,
                    "wait_for_manifest": True, "serves_batches": True, "streams": True,
                    BACKWARD_CAPABILITY: has_backward})
    except OSError:
        pass  # only an optimisation


def _harness_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _wait_for_file(path, poll_s):
    # Returns False when the harness went away first. The first polls come quickly and
    # then slow down to poll_s: the harness usually has the next batch written already
    # and names it within a millisecond of done.json, while a process started ahead may
    # wait seconds for its manifest.
    harness = int(os.environ.get(HARNESS_PID_ENV, "0") or 0)
    next_check = time.monotonic() + 1.0
    delay = min(poll_s, 0.00025)
    while not os.path.exists(path):
        time.sleep(delay)
        delay = min(2 * delay, poll_s)
        if harness and time.monotonic() > next_check:
            if not _harness_alive(harness):
                return False
            next_check = time.monotonic() + 1.0
    return True


def wait_for_manifest(work_dir, poll_s=0.005):
    """Started ahead of its batch: waits until the harness has written manifest.json.

    Returns False when the harness went away first.
    """
    return _wait_for_file(os.path.join(work_dir, MANIFEST_FILE), poll_s)


def wait_for_next(work_dir, poll_s=0.005):
    """After done.json, in a serving process: the next batch's work directory, read
    from next.json, or None when the harness went away (it ends a serving process it
    no longer needs by killing it)."""
    path = os.path.join(work_dir, NEXT_FILE)
    if not _wait_for_file(path, poll_s):
        return None
    with open(path) as f:
        return json.load(f)["work_dir"]


def load_input(path):
    """An input file as an array mapped copy-on-write from the file, not read into fresh
    memory: no copy, and the kernel maps a file's pages a few at a time where fresh
    memory is faulted in page by page (on a small machine most of a load's time).
    Writable: a candidate that updates its inputs in place gets private pages. Read
    normally where mapping fails (an empty array, a file system without mmap)."""
    try:
        return np.asarray(np.load(path, mmap_mode="c", allow_pickle=False))  # a plain ndarray
    except (ValueError, OSError):
        return np.load(path, allow_pickle=False)


def _load_inputs(entry, encoding, tensors, names=("q", "k")):
    convert = dtypes.input_to_torch if tensors == "torch" else dtypes.input_to_numpy
    return tuple(convert(load_input(entry["inputs"][name]), entry["dtype"], encoding)
                 for name in names)


def _outputs_of(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError("the candidate function must return (q_out, k_out), got %s"
                        % type(result).__name__)
    return dtypes.output_to_numpy(result[0]), dtypes.output_to_numpy(result[1])


def _compute(fn, backward, entry, encoding, tensors, timings, packed=False):
    # One case's pass, timed: load_s for its inputs, compute_s for the candidate.
    t0 = time.perf_counter()
    case = Case(entry)
    # A packed batch goes to a candidate that does not take it whole one sequence at a time.
    split = case.packed is not None and not packed
    if case.pass_ == BACKWARD_PASS:
        q, k, g_q, g_k = _load_inputs(entry, encoding, tensors, ("q", "k", "g_q", "g_k"))
        timings["load_s"] = time.perf_counter() - t0
        timings["compute_start"] = time.perf_counter()
        if split:
            return packed_batches.run_by_sequence(
                lambda sub, qr, kr: backward_pass.compute(fn, backward, q[..., qr, :], k[..., kr, :],
                                                          g_q[..., qr, :], g_k[..., kr, :], Case(sub), tensors),
                entry)
        return backward_pass.compute(fn, backward, q, k, g_q, g_k, case, tensors)
    if case.pass_ != FORWARD_PASS:
        raise ProtocolError("unknown pass %r (forward, backward)" % (case.pass_,))
    q, k = _load_inputs(entry, encoding, tensors)
    timings["load_s"] = time.perf_counter() - t0
    timings["compute_start"] = time.perf_counter()
    if split:
        return packed_batches.run_by_sequence(lambda sub, qr, kr: fn(q[..., qr, :], k[..., kr, :], Case(sub)), entry)
    if "stream" in entry["params"]:
        # A stream sent whole: the calls a decoder makes, in order (docs/streams.md);
        # compute_s counts the calls alone.
        q_out, k_out, compute_s = streams.run_stream(fn, entry, q, k, Case)
        timings["compute_start"] = time.perf_counter() - compute_s
        return q_out, k_out
    return fn(q, k, case)


def run_case(fn, entry, encoding, tensors, backward=None, packed=False):
    """Runs one case (either pass); returns True when it produced outputs, which for a
    backward case are dq and dk, written where the manifest names its outputs."""
    timings = {}
    try:
        result = _compute(fn, backward, entry, encoding, tensors, timings, packed)
        timings["compute_s"] = time.perf_counter() - timings.pop("compute_start")
        t1 = time.perf_counter()
        q_out, k_out = _outputs_of(result)
        _save_npy(entry["outputs"]["q"], q_out)
        _save_npy(entry["outputs"]["k"], k_out)
        timings["save_s"] = time.perf_counter() - t1
        ok = True
    except Exception as e:  # every failure of one case is that case's result
        if "compute_start" in timings:
            timings["compute_s"] = time.perf_counter() - timings.pop("compute_start")
        cause = e.cause if isinstance(e, (streams.StepError, packed_batches.SequenceError)) else e
        record = error_record(cause, case_id=entry.get("case_id", ""))
        if cause is not e:
            record["message"] = str(e)  # names the step or the sequence
        _save_json(entry["error"], record)
        ok = False
    _save_json(entry["result"], dict(timings, ok=ok))
    return ok


def run(fn, tensors="numpy", argv=None, backward=None, packed=False):
    """Runs `fn(q, k, case) -> (q_out, k_out)` over the batch named by the last argument.

    backward: `rotary_backward(g_q, g_k, q, k, case) -> (dq, dk)` for backward cases;
    without it, tensors="torch" backpropagates through fn with autograd, and a NumPy
    candidate has no backward pass (the harness then sends it none).

    packed=True: fn takes packed batches whole (its varlen path: case.cu_seqlens_q(),
    case.cu_seqlens_k(), case.sequences(), case.query_positions()); otherwise the helper
    calls fn once per sequence of a packed batch, each a plain case (docs/streams.md).

    tensors="numpy": q and k are NumPy arrays (bf16 as float32 holding bf16 values);
    tensors="torch": torch tensors of the case's dtype (torch.bfloat16 for bf16).
    Outputs may be either; they are written in their own dtype (torch.bfloat16 as bit
    patterns), so a wrong dtype is reported by the harness, not hidden. Returns the
    number of cases that raised; exits with status 2 when the work directory cannot
    be used at all.
    """
    if tensors not in ("numpy", "torch"):
        raise ValueError("tensors must be 'numpy' or 'torch', got %r" % (tensors,))
    argv = sys.argv if argv is None else argv
    if len(argv) < 2:
        sys.stderr.write("usage: %s [options] WORK_DIR (run by xposcheck)\n" % argv[0])
        sys.exit(2)
    work_dir = argv[-1]
    if tensors == "torch":
        import torch  # noqa: F401  (imported before waiting, and before any case is timed)
    if os.environ.get(WAIT_FOR_MANIFEST_ENV) == "1":
        # Started ahead: says what it can do while it waits.
        _announce(work_dir, backward_pass.supported(backward, tensors))
        if not wait_for_manifest(work_dir):
            return 0
    failures = 0
    while work_dir is not None:
        failures += _run_batch(fn, work_dir, tensors, backward, packed)
        # A serving process is handed the next batch instead of being started anew.
        work_dir = wait_for_next(work_dir) if os.environ.get(SERVE_ENV) == "1" else None
    return failures


def _run_batch(fn, work_dir, tensors, backward, packed):
    try:
        manifest = read_manifest(work_dir)
    except ProtocolError as e:
        sys.stderr.write("xposcheck_candidate: %s\n" % e)
        sys.exit(2)
    _announce(work_dir, backward_pass.supported(backward, tensors))
    encoding = manifest.get("bf16_encoding", "bits")
    failures = 0
    for entry in manifest["cases"]:
        if not run_case(fn, entry, encoding, tensors, backward, packed):
            failures += 1
    # Last: the harness may end this process as soon as it sees the file.
    sys.stdout.flush()
    sys.stderr.flush()
    _save_json(os.path.join(work_dir, DONE_FILE),
               {"cases": len(manifest["cases"]), "failures": failures})
    return failures
