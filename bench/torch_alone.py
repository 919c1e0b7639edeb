"""Re-runs the PyTorch candidate over the work directories a sweep kept
(--keep-work-dirs), in one process with nothing else running, and prints the seconds
spent inside torch: the candidate's own time, without the harness's verification
sharing the cores with it.

    /usr/bin/python3 bench/torch_alone.py WORK_DIR_PARENT
"""

import json
import pathlib
import sys

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
