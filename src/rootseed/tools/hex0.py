"""hex0: pairs of hex digits become bytes; ``#`` and ``;`` start comments to end of line.

Written from the format's description (stage0's hex0): every other character — spaces,
tabs, newlines, anything that is not a hex digit — is ignored; a lone digit left at the
end of input is dropped, as the seed drops it.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HEX = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}


class Hex0Error(Exception):
    pass


def assemble(source: bytes) -> bytes:
    """Assemble hex0 source text into bytes."""
    out = bytearray()
    high: int | None = None
    in_comment = False
    for ch in source.decode("latin-1"):
        if in_comment:
            in_comment = ch != "\n"
            continue
        if ch in "#;":
            in_comment = True
            continue
        digit = _HEX.get(ch)
        if digit is None:
            continue
        if high is None:
            high = digit
        else:
            out.append(high << 4 | digit)
            high = None
    return bytes(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: hex0 INPUT OUTPUT", file=sys.stderr)
        return 2
    src, dst = Path(argv[0]), Path(argv[1])
    try:
        data = src.read_bytes()
    except OSError as e:
        print(f"hex0: cannot read {src}: {e.strerror}", file=sys.stderr)
        return 1
    try:
        dst.write_bytes(assemble(data))
        dst.chmod(0o750)
    except OSError as e:
        print(f"hex0: cannot write {dst}: {e.strerror}", file=sys.stderr)
        return 1
    return 0
