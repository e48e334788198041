"""hex2's byte-oriented linking (every architecture but RISC-V).

The input is scanned once into items; both passes then walk the items. Digits are read
in groups (2 hex, 3 octal or 8 binary digits per byte), across labels and pointers, and
the pending digits start over with every file. A byte counts when its last digit is read.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from typing import Literal

from rootseed.tools.hex2_core import (
    PADDING,
    Arch,
    Displacement,
    Labels,
    Options,
    Scratch,
    check_range,
    encode,
    s32,
)

_SPECIAL = re.compile(rb"[#;:!@$~%&<^]")
_COMMENT = re.compile(rb"[^\n\r]*[\n\r]?")
_NAME = re.compile(rb"([^ \t\n>]*)([ \t\n>]?)")
_SIZE = {ord("!"): 1, ord("@"): 2, ord("$"): 2, ord("~"): 3, ord("%"): 4, ord("&"): 4}
_DIGITS = {16: b"0123456789abcdefABCDEF", 8: b"01234567", 2: b"01"}
_GROUP = {16: 2, 8: 3, 2: 8}
_RANGE = {a: {n: (0, (1 << 8 * n) - 1) if a else (-(1 << 8 * n - 1), (1 << 8 * n - 1) - 1)
              for n in (1, 2, 3)} for a in (False, True)}
_SIMPLE = {Arch.KNIGHT, Arch.X86, Arch.AMD64, Arch.RISCV32, Arch.RISCV64}

# item kinds
_RUN, _LABEL, _POINTER, _PAD, _WORD = range(5)
Item = tuple[int, bytes, int, bytes | None]  # kind, text, newlines or pointer char, base


def _name(data: bytes, pos: int) -> tuple[bytes, int, int]:
    """A name starting at ``pos``: (name, byte that ended it or -1, position after)."""
    m = _NAME.match(data, pos)
    assert m is not None
    token, end = m.group(1, 2)
    if not end:  # the name ran into the end of the input
        # an empty name there reads as the byte 0xFF (C's EOF stored as a char)
        return token or b"\xff", -1, m.end()
    return token, end[0], m.end()


def scan(data: bytes, radix: int) -> list[Item]:
    """Split one file into runs of digits (with their newline count) and marks."""
    drop = bytes(b for b in range(256) if b not in _DIGITS[radix])
    items: list[Item] = []
    append = items.append
    search = _SPECIAL.search
    pos = 0
    while (m := search(data, pos)) is not None:
        start = m.start()
        if start > pos:
            run = data[pos:start]
            append((_RUN, run.translate(None, drop), run.count(b"\n"), None))
        first = data[start]
        if first == 0x3A:  # ':'
            name, _, pos = _name(data, start + 1)
            append((_LABEL, name, 0, None))
        elif first in b"#;":
            pos = _COMMENT.match(data, start + 1).end()  # type: ignore[union-attr]
            append((_RUN, b"", 1, None))
        elif first in b"<^":
            pos = start + 1
            append((_PAD if first == 0x3C else _WORD, b"", 0, None))
        else:
            name, end, pos = _name(data, start + 1)
            base = None
            if end == 0x3E:  # '>': measured from another label
                base, _, pos = _name(data, pos)
            append((_POINTER, name, first, base))
    if pos < len(data):
        run = data[pos:]
        append((_RUN, run.translate(None, drop), run.count(b"\n"), None))
    return items


def _pad(ip: int) -> int:
    return -ip & 3  # '<': zeros up to the next multiple of 4


def _where(filename: str, items: list[Item], index: int) -> str:
    """``file:line`` of item ``index``, counting lines as hex2 does (only when needed)."""
    return f"{filename}:{1 + sum(i[2] for i in items[:index] if i[0] == _RUN)}"


def link(files: Sequence[tuple[str, bytes]], opts: Options) -> bytes:
    group = _GROUP[opts.radix]
    scanned = [(name, scan(data, opts.radix)) for name, data in files]
    scratch = Scratch()
    labels = Labels()
    pads = opts.arch in PADDING

    ip = opts.base_address
    for filename, items in scanned:
        pending = 0
        for kind, text, arg, _ in items:
            if kind == _RUN:
                pending += len(text)
                ip += pending // group
                pending %= group
            elif kind == _LABEL:
                labels[scratch.read(text, filename)] = ip & 0xFFFFFFFF
                scratch.clear()
            elif kind == _POINTER:
                ip += _SIZE[arg]
            elif kind == _PAD and pads:
                ip += _pad(ip)

    out = bytearray()
    displacement = Displacement(opts.arch)
    simple = opts.arch in _SIMPLE
    order: Literal["big", "little"] = "big" if opts.big_endian else "little"
    ip = opts.base_address
    for filename, items in scanned:
        digits = b""
        for index, (kind, text, arg, base) in enumerate(items):
            if kind == _RUN:
                if not text:
                    continue
                if digits:
                    text = digits + text
                full = len(text) - len(text) % group
                if group == 2:
                    out += binascii.unhexlify(text[:full])
                else:
                    out += bytes(int(text[i:i + group], opts.radix) & 0xFF
                                 for i in range(0, full, group))
                ip += full // group
                digits = text[full:]
            elif kind == _POINTER:
                size = _SIZE[arg]
                ip += size
                scratch.clear()
                name = scratch.read(text, filename)
                target = labels.get(name)
                if target is None:
                    raise labels.missing(name, _where(filename, items, index))
                target = s32(target)
                if base is not None:
                    scratch.clear()
                    base_name = scratch.read(base, filename)
                    origin = labels.get(base_name)
                    if origin is None:
                        raise labels.missing(base_name, _where(filename, items, index))
                    value = s32(target - origin)
                elif simple:
                    value = s32(target - ip)
                else:
                    value = displacement(target, s32(ip), name, _where(filename, items, index))
                absolute = arg in b"$&"
                if absolute:
                    value = s32(target)
                if size != 4:
                    low, high = _RANGE[absolute][size]
                    if not low <= value <= high:
                        check_range(value, size, absolute, _where(filename, items, index))
                    out += encode(value, size, opts.big_endian)
                else:
                    out += (value & 0xFFFFFFFF).to_bytes(4, order)
            elif kind == _PAD:
                if pads:
                    n = _pad(ip)
                    out += bytes(n)
                    ip += n
            elif kind == _WORD:
                displacement.aligned = True
    return bytes(out)

