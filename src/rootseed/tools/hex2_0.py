"""hex2-0: stage0-posix x86's minimal hex2 linker (``hex2_x86.hex1``), ``hex2-0 IN OUT``.

Format, as ``hex2_x86.hex1`` describes it: hex0 (pairs of hex digits, ``#``/``;``
comments to the end of the line) plus labels ``:name`` and pointers to them, where a
name runs to the next space, tab, newline or ``>``: ``!`` (1-byte), ``@`` (2-byte) and
``%`` (4-byte) relative to the end of the pointer, ``$`` (2-byte) and ``&`` (4-byte)
absolute. ``%a>b`` measures from label ``b`` instead. Output is little-endian and the
image starts at 0x8048000. Values are truncated to the pointer's size, never checked.

Differences from mescc-tools' hex2 that we keep: the first pass counts a byte at the
first digit of a pair (a label between two digits lands one byte later), the character
ending a label is dropped, and ``~``, ``<``, ``^`` have no meaning.

Where the original never finishes (a name or comment running into the end of the input,
a missing input file) or writes to stdout because the output cannot be opened, we stop
or end cleanly with a message instead; an undefined label is an error in both.
"""

from __future__ import annotations

import binascii
import re

from rootseed.tools._util import ToolError, file_to_file_main

BASE_ADDRESS = 0x8048000
_SIZE = {ord("!"): 1, ord("@"): 2, ord("$"): 2, ord("%"): 4, ord("&"): 4}
_ITEM = re.compile(rb"[#;][^\n\r]*[\n\r]?"
                   rb"|:([^ \t\n>]*)[ \t\n>]?"
                   rb"|([!@$%&])([^ \t\n>]*)(?:>([^ \t\n>]*)[ \t\n>]?|[ \t\n]?)")
_NOT_HEX = bytes(b for b in range(256) if b not in b"0123456789abcdefABCDEF")


def _name(token: bytes) -> bytes:
    return token.split(b"\0", 1)[0]  # names compare as C strings


def link(source: bytes, base_address: int = BASE_ADDRESS) -> bytes:
    """Link hex2-0 source into bytes (raises :class:`ToolError` on an undefined label)."""
    # items: (0, digits) | (1, name) label | (ch, target, base-or-None) pointer
    items: list[tuple[int, bytes, bytes | None]] = []
    pos = 0
    for m in _ITEM.finditer(source):
        if m.start() > pos:
            items.append((0, source[pos:m.start()].translate(None, _NOT_HEX), None))
        pos = m.end()
        if m.group(1) is not None:
            items.append((1, _name(m.group(1)), None))
        elif m.group(2) is not None:
            base = m.group(4)
            items.append((m.group(2)[0], _name(m.group(3)),
                          None if base is None else _name(base)))
    if pos < len(source):
        items.append((0, source[pos:].translate(None, _NOT_HEX), None))

    labels: dict[bytes, int] = {}
    digits = 0
    extra = base_address
    for kind, text, _ in items:
        if kind == 0:
            digits += len(text)
        elif kind == 1:
            labels[text] = ((digits + 1) // 2 + extra) & 0xFFFFFFFF  # first digit counts
        else:
            extra += _SIZE[kind]

    def target(name: bytes) -> int:
        try:
            return labels[name]
        except KeyError:
            raise ToolError(f"target label {name.decode('latin-1')!r} is not defined") from None

    out = bytearray()
    pending = b""
    for kind, text, base in items:
        if kind == 0:
            text = pending + text
            even = len(text) & ~1
            out += binascii.unhexlify(text[:even])
            pending = text[even:]
        elif kind != 1:
            size = _SIZE[kind]
            value = target(text)
            origin = base_address + len(out) + size if base is None else target(base)
            if kind in b"!@%":
                value -= origin
            out += (value & 0xFFFFFFFF).to_bytes(4, "little")[:size]
    return bytes(out)


def main(argv: list[str]) -> int:
    return file_to_file_main("hex2-0", link, argv, create_mode=0o700)
