"""hex1 (stage0-posix x86): hex0 plus one-character labels and 4-byte relative pointers.

Format, as stage0-posix-x86's ``hex1_x86.hex0`` describes it: pairs of hex digits become
bytes; ``#`` and ``;`` start comments that end at a newline or carriage return; ``:c``
defines label ``c`` (any single byte) at the current address; ``%c`` emits the 4-byte
little-endian distance from the end of the pointer to label ``c``. Everything else is
ignored. At this commit the x86 hex1 has no ``!`` pointer: a ``!`` is ignored like any
other non-hex character (so in ``!a`` the ``a`` is a hex digit).

Two passes, as the original: the first pass counts a byte when it sees the *first* digit
of a pair, the second when it writes it. The two only differ for a label or pointer
placed between the two digits of a pair, and we keep that difference.

Where the original misbehaves we stop with an error instead: a pointer to a label that
was never defined (the original silently uses address 0), a ``%`` at the very end of the
input (it reads a code byte), and we end a comment at end of input (it loops forever).
"""

from __future__ import annotations

import binascii
import re

from rootseed.tools._util import ToolError, file_to_file_main

_ITEM = re.compile(rb"[#;][^\n\r]*[\n\r]?|[:%][\s\S]?")
_NOT_HEX = bytes(b for b in range(256) if b not in b"0123456789abcdefABCDEF")


def assemble(source: bytes) -> bytes:
    """Assemble hex1 source into bytes (raises :class:`ToolError` on bad input)."""
    # One scan: (digits, None) runs and (b":" or b"%", label byte) items.
    items: list[tuple[bytes, int]] = []
    pos = 0
    for m in _ITEM.finditer(source):
        if m.start() > pos:
            items.append((source[pos:m.start()].translate(None, _NOT_HEX), -1))
        text = m.group()
        pos = m.end()
        if text[0] in b":%":
            if len(text) == 1:
                if text == b"%":
                    raise ToolError("'%' at end of input has no label name")
                continue  # ':' at the very end defines nothing usable
            items.append((text[:1], text[1]))
    if pos < len(source):
        items.append((source[pos:].translate(None, _NOT_HEX), -1))

    labels: dict[int, int] = {}
    digits = pointers = 0
    for text, label in items:
        if label < 0:
            digits += len(text)
        elif text == b":":
            labels[label] = (digits + 1) // 2 + 4 * pointers  # counted at the first digit
        else:
            pointers += 1

    out = bytearray()
    pending = b""
    for text, label in items:
        if label < 0:
            text = pending + text
            even = len(text) & ~1
            out += binascii.unhexlify(text[:even])
            pending = text[even:]
        elif text == b"%":
            if label not in labels:
                raise ToolError(f"pointer %{chr(label)!r} refers to a label that is not "
                                f"defined (add ':{chr(label)}')")
            out += ((labels[label] - (len(out) + 4)) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out)


def main(argv: list[str]) -> int:
    return file_to_file_main("hex1", assemble, argv, create_mode=0o700)
