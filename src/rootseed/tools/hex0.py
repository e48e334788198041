"""hex0: pairs of hex digits become bytes; ``#`` and ``;`` start comments to end of line.

Written from the format's description (stage0's hex0): every other character — spaces,
tabs, newlines, anything that is not a hex digit — is ignored; a lone digit left at the
end of input is dropped, as the seed drops it.
"""

from __future__ import annotations

from rootseed.tools._util import file_to_file_main

_HEX = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}


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
    # Like the seed: the output is created with mode 0750.
    return file_to_file_main("hex0", assemble, argv, create_mode=0o750, force_mode=0o750)
