"""catm (mescc-tools): ``catm OUTPUT [INPUT...]`` writes the inputs, in order, to OUTPUT.

As upstream: OUTPUT is truncated first (so an input that *is* the output reads as what has
been written so far), a new OUTPUT gets mode 0600 minus the umask, and a missing input is
an error. Unlike upstream, a failure leaves no partial OUTPUT, and an input that is the
output and has grown to 4096 bytes or more is an error (upstream copies it forever).
"""

from __future__ import annotations

import os
import sys

from rootseed.tools._util import ToolError, fail, read_input, write_output

_CHUNK = 4096


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # the output need not exist yet: upstream creates it first
        return os.path.realpath(a) == os.path.realpath(b)


def concatenate(output: str, inputs: list[str]) -> bytes:
    """The bytes ``catm output inputs...`` writes (reading the inputs from disk)."""
    out = bytearray()
    for name in inputs:
        if _same_file(name, output):
            if len(out) >= _CHUNK:
                raise ToolError(f"input {name} is the output file and would be copied "
                                "without end")
            out += bytes(out)
        else:
            try:
                out += read_input(name)
            except ToolError as e:
                raise ToolError(f"the file {name} is not a valid input file name "
                                f"({e.message})") from e
    return bytes(out)


def main(argv: list[str]) -> int:
    if not argv:
        print("catm requires 2 or more arguments (usage: catm OUTPUT [INPUT...])",
              file=sys.stderr)
        return 1
    try:
        write_output(argv[0], concatenate(argv[0], argv[1:]), create_mode=0o600)
    except ToolError as e:
        return fail("catm", e)
    return 0
