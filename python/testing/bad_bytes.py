"""Broken on purpose: writes, for every case, an error record whose message and
"where" are bytes that are not UTF-8 with terminal escapes among them, then floods
stderr and stdout with the same kind of bytes and exits with status 3. Nothing a
candidate writes may break the results file, the reports or the terminal."""

import sys

import xposcheck_candidate

BAD = b"\xff\xfe\x1b[2J\x1b]0;owned\x07\r"
# As JSON writers write control characters: escaped, leaving the invalid bytes raw.
BAD_JSON = BAD.replace(b"\x1b", b"\\u001b").replace(b"\x07", b"\\u0007").replace(b"\r", b"\\r")

if __name__ == "__main__":
    manifest = xposcheck_candidate.read_manifest(sys.argv[-1])
    for entry in manifest["cases"]:
        with open(entry["error"], "wb") as f:
            f.write(b'{"message": "bad ' + BAD_JSON + b' bytes", "where": "' + BAD_JSON + b'"}')
    sys.stderr.buffer.write(BAD * 3)
    sys.stdout.buffer.write(BAD)
    sys.exit(3)
