"""Re-runs the PyTorch candidate over the work directories a sweep kept
(--keep-work-dirs), in one process with nothing else running, and prints the seconds
spent inside torch: the candidate's own time, without the harness's verification
sharing the cores with it.

    /usr/bin/python3 bench/torch_alone.py WORK_DIR_PARENT [ENV_FILE]

ENV_FILE holds the environment a candidate process got from the harness (`env -0`, as
bench/torch_overhead.sh records it): torch alone then runs in it, less the protocol's
own XPOSCHECK_ variables, so that both sides of the ratio see the harness's defaults
for a candidate (docs/protocol.md, "A candidate's environment"). glibc reads its
tunables as a process starts, so the script starts itself again in that environment.
"""

import json
import os
import pathlib
import sys

_APPLIED = "XPOSCHECK_BENCH_CANDIDATE_ENV"


def run_in_recorded_environment(env_file):
    if os.environ.get(_APPLIED) == env_file:
        return
    env = {}
    with open(env_file, "rb") as f:
        for item in f.read().split(b"\0"):
            name, eq, value = item.partition(b"=")
            if eq and not name.startswith(b"XPOSCHECK_"):
                env[os.fsdecode(name)] = os.fsdecode(value)
    env[_APPLIED] = env_file
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


if __name__ == "__main__" and len(sys.argv) > 2:
    run_in_recorded_environment(sys.argv[2])

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "python" / "candidates"))

import torch_xtransformers  # noqa: E402
from xposcheck_candidate import protocol  # noqa: E402


def main(parent):
    total = 0.0
    cases = 0
    for manifest in sorted(pathlib.Path(parent).glob("*/manifest.json")):
        batch = protocol.read_manifest(str(manifest.parent))
        encoding = batch.get("bf16_encoding", "bits")
        for entry in batch["cases"]:
            protocol.run_case(torch_xtransformers.rotary, entry, encoding, "torch")
            with open(entry["result"]) as f:
                total += json.load(f).get("compute_s", 0.0)
            cases += 1
    print("%d cases, inside torch %.2f s" % (cases, total))


if __name__ == "__main__":
    main(sys.argv[1])
