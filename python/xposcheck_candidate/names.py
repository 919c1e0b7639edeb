"""The protocol's names (docs/protocol.md), spelled here alone on the Python side.

The harness spells them in harness/src/external/protocol.hpp; a test checks that the
two agree.
"""

PROTOCOL = "xposcheck-candidate"
PROTOCOL_VERSION = 1

MANIFEST_FILE = "manifest.json"
# Written by the candidate: what it supports, and that its last case is done.
CAPABILITIES_FILE = "candidate.json"
DONE_FILE = "done.json"
# Written by the harness after done.json for a serving process: the next batch.
NEXT_FILE = "next.json"

# A harness that starts the next batch's process early, or keeps a process for
# further batches, sets these.
WAIT_FOR_MANIFEST_ENV = "XPOSCHECK_WAIT_FOR_MANIFEST"
SERVE_ENV = "XPOSCHECK_SERVE"
HARNESS_PID_ENV = "XPOSCHECK_HARNESS_PID"

# The files of one case are its id followed by these (the manifest names each file
# in full, so the helper itself never builds one).
CASE_FILE_SUFFIXES = {
    "q_in": ".q_in.npy",
    "k_in": ".k_in.npy",
    "q_out": ".q_out.npy",
    "k_out": ".k_out.npy",
    "error": ".error.json",
    "result": ".result.json",
    # A backward case (docs/protocol.md, "The backward pass"): the upstream gradients
    # in, the gradients with respect to q and k out.
    "g_q": ".g_q.npy",
    "g_k": ".g_k.npy",
    "dq": ".dq.npy",
    "dk": ".dk.npy",
}

# A manifest case's "pass" (absent: forward), and the candidate.json key that says a
# candidate computes the backward pass (only then is it sent backward cases).
PASS_KEY = "pass"
FORWARD_PASS = "forward"
BACKWARD_PASS = "backward"
BACKWARD_CAPABILITY = "backward"
