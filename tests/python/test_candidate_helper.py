"""Tests of the Python candidate helper (python/xposcheck_candidate) on its own:
no harness, only work directories written here as the harness would write them."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import xposcheck_candidate as xc
from xposcheck_candidate import names, protocol

PARAMS = {"head_dim": 4, "rotary_dim": 4, "base": 10000.0, "base_rescale": 1.0,
          "interpolation": 1.0, "xpos": True, "scale_base": 512.0, "layout": "half",
          "seq_len": 3, "mem_len": 2, "center": 1, "batch": 1, "heads": 1}


def write_manifest(work_dir, backward=False, **overrides):
    """A one-case batch in work_dir: fp32 inputs and the manifest naming them; with
    backward, a backward case with its upstream gradients."""
    shapes = {"q_in": [1, 1, 3, 4], "k_in": [1, 1, 5, 4], "q_out": [1, 1, 3, 4],
              "k_out": [1, 1, 5, 4]}
    files = {key: os.path.join(work_dir, "c000" + suffix)
             for key, suffix in names.CASE_FILE_SUFFIXES.items()}
    np.save(files["q_in"], np.arange(12, dtype=np.float32).reshape(shapes["q_in"]))
    np.save(files["k_in"], np.arange(20, dtype=np.float32).reshape(shapes["k_in"]))
    entry = {"id": "c000", "case_id": "D4-N3-M2", "dtype": "fp32", "params": PARAMS,
             "inputs": {"q": files["q_in"], "k": files["k_in"]},
             "outputs": {"q": files["q_out"], "k": files["k_out"]},
             "error": files["error"], "result": files["result"], "shapes": shapes,
             "time_limit_s": 60}
    if backward:
        np.save(files["g_q"], np.linspace(-1, 1, 12, dtype=np.float32).reshape(shapes["q_in"]))
        np.save(files["g_k"], np.linspace(2, -2, 20, dtype=np.float32).reshape(shapes["k_in"]))
        entry.update({names.PASS_KEY: names.BACKWARD_PASS,
                      "outputs": {"q": files["dq"], "k": files["dk"]}})
        entry["inputs"].update({"g_q": files["g_q"], "g_k": files["g_k"]})
    manifest = {"protocol": names.PROTOCOL, "version": names.PROTOCOL_VERSION,
                "candidate": "test", "work_dir": work_dir, "bf16_encoding": "bits",
                "cases": [entry]}
    manifest.update(overrides)
    with open(os.path.join(work_dir, names.MANIFEST_FILE), "w") as f:
        json.dump(manifest, f)
    return files


def read_json(path):
    with open(path) as f:
        return json.load(f)


class Environment:
    """Sets environment variables for a block and restores them after."""

    def __init__(self, **values):
        self.values = values
        self.saved = {}

    def __enter__(self):
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ManifestTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_good_manifest_is_read_with_its_cases(self):
        write_manifest(self.dir)
        manifest = xc.read_manifest(self.dir)
        case = xc.Case(manifest["cases"][0])
        self.assertEqual(case.seq_len, 3)
        self.assertEqual(case.mem_len, 2)
        self.assertEqual(case.q_shape, (1, 1, 3, 4))
        self.assertEqual(list(case.key_positions()), [-2, -1, 0, 1, 2])

    def test_a_stream_call_says_it_continues_the_previous_case(self):
        write_manifest(self.dir)
        entry = xc.read_manifest(self.dir)["cases"][0]
        self.assertFalse(xc.Case(entry).continues_stream)
        entry["continues_stream"] = True
        entry["params"] = dict(entry["params"], first_position=7, mem_len=0, seq_len=1)
        case = xc.Case(entry)
        self.assertTrue(case.continues_stream)
        self.assertEqual(list(case.query_positions()), [7])
        self.assertEqual(list(case.key_positions()), [7])

    def test_another_protocol_is_refused_naming_the_file(self):
        write_manifest(self.dir, protocol="something-else")
        with self.assertRaisesRegex(xc.ProtocolError, "manifest.json: not an xposcheck"):
            xc.read_manifest(self.dir)

    def test_another_version_is_refused_naming_both(self):
        write_manifest(self.dir, version=99)
        with self.assertRaisesRegex(xc.ProtocolError, "version 99, this helper speaks 1"):
            xc.read_manifest(self.dir)

    def test_a_missing_or_broken_manifest_is_a_protocol_error(self):
        with self.assertRaisesRegex(xc.ProtocolError, "cannot read the manifest"):
            xc.read_manifest(self.dir)
        with open(os.path.join(self.dir, names.MANIFEST_FILE), "w") as f:
            f.write("{not json")
        with self.assertRaisesRegex(xc.ProtocolError, "cannot read the manifest"):
            xc.read_manifest(self.dir)


class Bf16Test(unittest.TestCase):
    def test_rounds_to_nearest_even(self):
        one = 0x3F800000
        values = np.array([one, one + 0x7FFF, one + 0x8000, one + 0x18000, one + 0x8001],
                          dtype=np.uint32).view(np.float32)
        # below half: down; a tie: to the even 0x3F80; a tie above odd 0x3F81: up to
        # 0x3F82; just above half: up.
        self.assertEqual(list(xc.float32_to_bf16_bits(values)),
                         [0x3F80, 0x3F80, 0x3F80, 0x3F82, 0x3F81])

    def test_nan_stays_a_quiet_nan_and_overflow_goes_to_infinity(self):
        bits = xc.float32_to_bf16_bits(np.array([np.nan, 3.4e38, -np.inf], dtype=np.float32))
        back = xc.bf16_bits_to_float32(bits)
        self.assertTrue(np.isnan(back[0]))
        self.assertTrue(bits[0] & 0x0040)
        self.assertEqual(back[1], np.inf)
        self.assertEqual(back[2], -np.inf)

    def test_bits_and_float32_round_trip(self):
        bits = np.arange(0, 0x10000, dtype=np.uint32).astype(np.uint16)
        values = xc.bf16_bits_to_float32(bits)
        finite = ~np.isnan(values)
        self.assertTrue(np.array_equal(xc.float32_to_bf16_bits(values)[finite], bits[finite]))
        self.assertTrue(np.array_equal(xc.round_to_bf16(values[finite]), values[finite]))

    def test_cast_and_its_errors(self):
        self.assertEqual(xc.cast(np.array([1.0]), "fp16").dtype, np.float16)
        self.assertEqual(xc.cast(np.array([1.0 + 2 ** -9]), "bf16")[0], 1.0)
        with self.assertRaises(TypeError):
            xc.bf16_bits_to_float32(np.array([1], dtype=np.int32))
        with self.assertRaises(ValueError):
            xc.cast(np.array([1.0]), "fp8")


def raise_in_candidate(exc):
    raise exc


class ErrorRecordTest(unittest.TestCase):
    def record_of(self, exc):
        try:
            raise_in_candidate(exc)
        except Exception as e:  # noqa: BLE001 (any exception is a case's result)
            return xc.error_record(e, case_id="D4")

    def test_shape_errors_are_recognised_by_their_messages(self):
        for message in ("The size of tensor a (1024) must match the size of tensor b (1124)",
                        "operands could not be broadcast together with shapes (3,) (4,)",
                        "cannot reshape array of size 12 into shape (5,)"):
            record = self.record_of(RuntimeError(message))
            self.assertEqual(record["kind"], "shape", message)
            self.assertIn(message, record["message"])
        self.assertEqual(self.record_of(xc.ShapeError("my own words"))["kind"], "shape")

    def test_other_exceptions_are_errors_that_say_where(self):
        record = self.record_of(ZeroDivisionError("division by zero"))
        self.assertEqual(record["kind"], "error")
        self.assertEqual(record["type"], "ZeroDivisionError")
        self.assertEqual(record["case_id"], "D4")
        self.assertRegex(record["where"], r"test_candidate_helper\.py:\d+ in raise_in_candidate")
        self.assertIn("Traceback", record["traceback"])


def identity(q, k, case):
    return q, k


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return str(child.pid)


class ServingTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.first = os.path.join(self.tmp.name, "first")
        self.second = os.path.join(self.tmp.name, "second")
        os.mkdir(self.first)
        os.mkdir(self.second)

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_batch_writes_outputs_results_and_done(self):
        files = write_manifest(self.first)
        self.assertEqual(xc.run(identity, argv=["candidate", self.first]), 0)
        q = np.load(files["q_out"])
        self.assertEqual(q.dtype, np.float32)
        self.assertTrue(np.array_equal(q, np.load(files["q_in"])))
        self.assertTrue(read_json(files["result"])["ok"])
        self.assertEqual(read_json(os.path.join(self.first, names.DONE_FILE)),
                         {"cases": 1, "failures": 0})
        self.assertTrue(read_json(os.path.join(self.first, names.CAPABILITIES_FILE))["serves_batches"])
        self.assertEqual([f for f in os.listdir(self.first) if ".tmp" in f], [])

    def test_a_raising_case_leaves_an_error_record(self):
        files = write_manifest(self.first)
        self.assertEqual(xc.run(lambda q, k, c: raise_in_candidate(KeyError("x")),
                                argv=["candidate", self.first]), 1)
        self.assertEqual(read_json(files["error"])["kind"], "error")
        self.assertFalse(read_json(files["result"])["ok"])

    def test_a_serving_process_follows_next_json_to_the_next_batch(self):
        write_manifest(self.first)
        second = write_manifest(self.second)
        with open(os.path.join(self.first, names.NEXT_FILE), "w") as f:
            json.dump({"work_dir": self.second}, f)
        # The harness's pid is one that has gone: after the second batch the helper
        # stops waiting for a third.
        with Environment(**{names.SERVE_ENV: "1", names.HARNESS_PID_ENV: dead_pid()}):
            self.assertEqual(xc.run(identity, argv=["candidate", self.first]), 0)
        self.assertTrue(os.path.exists(second["k_out"]))
        self.assertEqual(read_json(os.path.join(self.second, names.DONE_FILE))["cases"], 1)


def write_stream_manifest(work_dir):
    """One stream sent whole: N = 3 (a prefill of 1 row, then 2 steps of 1), M = 2."""
    files = write_manifest(work_dir)
    with open(os.path.join(work_dir, names.MANIFEST_FILE)) as f:
        manifest = json.load(f)
    manifest["cases"][0]["params"] = dict(PARAMS, first_position=-2,
                                          stream={"prefill": 1, "step_rows": 1})
    with open(os.path.join(work_dir, names.MANIFEST_FILE), "w") as f:
        json.dump(manifest, f)
    return files


class StreamTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_stream_sent_whole_is_called_step_by_step_and_joined(self):
        files = write_stream_manifest(self.dir)
        calls = []

        def record(q, k, case):
            calls.append((case.seq_len, case.mem_len, list(case.query_positions()),
                          list(case.key_positions()), case.center, case.continues_stream))
            return q, k
        self.assertEqual(xc.run(record, argv=["candidate", self.dir]), 0)
        self.assertEqual(calls, [(1, 2, [0], [-2, -1, 0], 1, False),
                                 (1, 0, [1], [1], 1, True),
                                 (1, 0, [2], [2], 1, True)])
        self.assertTrue(np.array_equal(np.load(files["q_out"]), np.load(files["q_in"])))
        self.assertTrue(np.array_equal(np.load(files["k_out"]), np.load(files["k_in"])))
        self.assertTrue(read_json(os.path.join(self.dir, names.CAPABILITIES_FILE))["streams"])

    def test_a_failing_call_names_its_step(self):
        files = write_stream_manifest(self.dir)

        def fail_at_position_2(q, k, case):
            if case.query_positions()[0] == 2:
                raise RuntimeError("cache miss")
            return q, k
        self.assertEqual(xc.run(fail_at_position_2, argv=["candidate", self.dir]), 1)
        error = read_json(files["error"])
        self.assertEqual(error["kind"], "error")
        self.assertIn("step 2 (position 2): RuntimeError: cache miss", error["message"])

    def test_a_call_returning_the_wrong_shape_is_a_shape_error_naming_it(self):
        files = write_stream_manifest(self.dir)
        self.assertEqual(xc.run(lambda q, k, case: (k, k), argv=["candidate", self.dir]), 1)
        error = read_json(files["error"])
        self.assertEqual(error["kind"], "shape")
        self.assertIn("prefill (positions 0..0): ", error["message"])
        self.assertIn("returned q_out of shape [1, 1, 3, 4], expected [1, 1, 1, 4]", error["message"])


def write_packed_manifest(work_dir):
    """One packed batch: N = 3, M = 2 as two sequences, 2 rows after 2 memory rows at
    position 10, then 1 row in the default frame."""
    files = write_manifest(work_dir)
    with open(os.path.join(work_dir, names.MANIFEST_FILE)) as f:
        manifest = json.load(f)
    manifest["cases"][0]["params"] = dict(PARAMS, packed=[
        {"seq_len": 2, "mem_len": 2, "first_position": 10, "center": 13},
        {"seq_len": 1, "mem_len": 0, "first_position": 0, "center": 0}])
    with open(os.path.join(work_dir, names.MANIFEST_FILE), "w") as f:
        json.dump(manifest, f)
    return files


class PackedTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_packed_batch_is_called_sequence_by_sequence_and_packed(self):
        files = write_packed_manifest(self.dir)
        calls = []

        def record(q, k, case):
            calls.append((case.seq_len, case.mem_len, list(case.key_positions()), case.center, case.packed,
                          q.shape[2], k.shape[2]))
            return q, k
        self.assertEqual(xc.run(record, argv=["candidate", self.dir]), 0)
        self.assertEqual(calls, [(2, 2, [10, 11, 12, 13], 13, None, 2, 4), (1, 0, [0], 0, None, 1, 1)])
        self.assertTrue(np.array_equal(np.load(files["q_out"]), np.load(files["q_in"])))
        self.assertTrue(np.array_equal(np.load(files["k_out"]), np.load(files["k_in"])))

    def test_a_varlen_candidate_gets_the_batch_whole_with_cu_seqlens(self):
        write_packed_manifest(self.dir)
        seen = []

        def whole(q, k, case):
            seen.append((list(case.cu_seqlens_q()), list(case.cu_seqlens_k()), list(case.query_positions()),
                         list(case.key_positions()), [s.center for s in case.sequences()], q.shape[2]))
            return q, k
        self.assertEqual(xc.run(whole, argv=["candidate", self.dir], packed=True), 0)
        self.assertEqual(seen, [([0, 2, 3], [0, 4, 5], [12, 13, 0], [10, 11, 12, 13, 0], [13, 0], 3)])

    def test_a_failing_sequence_is_named(self):
        files = write_packed_manifest(self.dir)

        def fail_on_the_second(q, k, case):
            if case.center == 0:
                raise RuntimeError("bad offsets")
            return q, k
        self.assertEqual(xc.run(fail_on_the_second, argv=["candidate", self.dir]), 1)
        self.assertIn("sequence 1 of 2 (N = 1, M = 0): RuntimeError: bad offsets", read_json(files["error"])["message"])
        self.assertEqual(xc.run(lambda q, k, case: (k, k), argv=["candidate", self.dir]), 1)
        error = read_json(files["error"])
        self.assertEqual(error["kind"], "shape")
        self.assertIn("sequence 0 of 2 (N = 2, M = 2): ", error["message"])


def torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


class BackwardTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def capabilities(self):
        return read_json(os.path.join(self.dir, names.CAPABILITIES_FILE))

    def test_a_given_backward_function_gets_the_upstream_gradients(self):
        files = write_manifest(self.dir, backward=True)
        twice = lambda g_q, g_k, q, k, case: (2 * g_q + 0 * q, k + g_k)
        self.assertEqual(xc.run(identity, argv=["c", self.dir], backward=twice), 0)
        self.assertTrue(np.array_equal(np.load(files["dq"]), 2 * np.load(files["g_q"])))
        self.assertTrue(np.array_equal(np.load(files["dk"]),
                                       np.load(files["k_in"]) + np.load(files["g_k"])))
        self.assertFalse(os.path.exists(files["q_out"]))
        self.assertTrue(self.capabilities()[names.BACKWARD_CAPABILITY])

    def test_numpy_without_backward_says_so_and_fails_a_backward_case(self):
        files = write_manifest(self.dir, backward=True)
        self.assertEqual(xc.run(identity, argv=["c", self.dir]), 1)
        self.assertFalse(self.capabilities()[names.BACKWARD_CAPABILITY])
        record = read_json(files["error"])
        self.assertEqual(record["kind"], "error")
        self.assertIn("has no backward pass", record["message"])

    def test_an_unknown_pass_fails_its_case_naming_it(self):
        files = write_manifest(self.dir)
        with open(os.path.join(self.dir, names.MANIFEST_FILE)) as f:
            manifest = json.load(f)
        manifest["cases"][0][names.PASS_KEY] = "sideways"
        with open(os.path.join(self.dir, names.MANIFEST_FILE), "w") as f:
            json.dump(manifest, f)
        self.assertEqual(xc.run(identity, argv=["c", self.dir]), 1)
        self.assertIn("'sideways'", read_json(files["error"])["message"])


@unittest.skipIf(torch_or_none() is None, "PyTorch is not installed")
class AutogradTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def run_backward(self, fn):
        files = write_manifest(self.dir, backward=True)
        failures = xc.run(fn, tensors="torch", argv=["c", self.dir])
        self.assertTrue(read_json(os.path.join(self.dir, names.CAPABILITIES_FILE))["backward"])
        return failures, files

    def test_autograd_backpropagates_the_upstream_gradients(self):
        failures, files = self.run_backward(lambda q, k, case: (3 * q, k[..., [1, 0, 2, 3, 4], :]))
        self.assertEqual(failures, 0)
        self.assertTrue(np.array_equal(np.load(files["dq"]), 3 * np.load(files["g_q"])))
        g_k = np.load(files["g_k"])
        self.assertTrue(np.array_equal(np.load(files["dk"]), g_k[..., [1, 0, 2, 3, 4], :]))

    def test_an_output_of_the_wrong_shape_is_a_shape_error_naming_it(self):
        failures, files = self.run_backward(lambda q, k, case: (q, k[..., 2:, :]))
        self.assertEqual(failures, 1)
        record = read_json(files["error"])
        self.assertEqual(record["kind"], "shape")
        self.assertIn("k_out shape [1, 1, 3, 4] does not match its upstream gradient's "
                      "[1, 1, 5, 4]", record["message"])

    def test_an_output_outside_autograd_is_an_error_saying_so(self):
        failures, files = self.run_backward(lambda q, k, case: (q.detach(), k))
        self.assertEqual(failures, 1)
        self.assertIn("q_out does not depend on q or k", read_json(files["error"])["message"])

    def test_the_xtransformers_candidate_backward_is_its_transpose(self):
        # The rotary map is linear in q (and in k), so autograd's dq = J^T g_q must
        # satisfy <dq, v> = <g_q, J v> with J v the forward pass of v itself.
        torch = torch_or_none()
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python", "candidates"))
        import torch_xtransformers as tx
        params = dict(PARAMS, head_dim=8, rotary_dim=6, mem_len=2, seq_len=3, center=1)
        case = xc.Case({"id": "c", "dtype": "fp32", "params": params,
                        "shapes": {"q_out": [1, 1, 3, 8], "k_out": [1, 1, 5, 8]}})
        gen = torch.Generator().manual_seed(1)
        q, v_q, g_q = (torch.randn(1, 1, 3, 8, generator=gen, dtype=torch.float64) for _ in range(3))
        k, v_k, g_k = (torch.randn(1, 1, 5, 8, generator=gen, dtype=torch.float64) for _ in range(3))
        from xposcheck_candidate import backward
        dq, dk = backward.autograd(tx.rotary, q, k, g_q, g_k, case)
        out_q, out_k = tx.rotary(v_q, v_k, case)
        self.assertAlmostEqual(float((dq * v_q).sum()), float((g_q * out_q).sum()), places=5)
        self.assertAlmostEqual(float((dk * v_k).sum()), float((g_k * out_k).sum()), places=5)
        self.assertTrue(torch.equal(dq[..., 6:], g_q[..., 6:]))  # pass-through features


class LoadInputTest(unittest.TestCase):
    def test_an_input_is_a_plain_writable_array_that_leaves_its_file_alone(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "q.npy")
            np.save(path, np.arange(6, dtype=np.float32).reshape(2, 3))
            a = protocol.load_input(path)
            self.assertIs(type(a), np.ndarray)
            self.assertEqual(a.dtype, np.float32)
            self.assertTrue(np.array_equal(a, np.arange(6, dtype=np.float32).reshape(2, 3)))
            a[0, 0] = 99  # a candidate updating its input in place: the file keeps its value
            self.assertEqual(np.load(path)[0, 0], 0)
            os.unlink(path)  # the harness removes the batch: the array stays
            self.assertEqual(a[0, 0], 99)
            self.assertEqual(a[1, 2], 5)

    def test_an_empty_array_is_read_where_it_cannot_be_mapped(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "e.npy")
            np.save(path, np.zeros((1, 0, 4), dtype=np.float16))
            a = protocol.load_input(path)
            self.assertEqual(a.shape, (1, 0, 4))
            self.assertEqual(a.dtype, np.float16)


class WriteAtomicallyTest(unittest.TestCase):
    def test_a_device_is_written_not_replaced(self):
        protocol.write_atomically(os.devnull, lambda f: f.write(b"x"))
        self.assertFalse(os.path.isfile(os.devnull))

    def test_a_failing_writer_leaves_no_temporary(self):
        with tempfile.TemporaryDirectory() as d:
            target = os.path.join(d, "out.json")
            with self.assertRaises(ZeroDivisionError):
                protocol.write_atomically(target, lambda f: 1 / 0)
            self.assertEqual(os.listdir(d), [])


if __name__ == "__main__":
    unittest.main()
