"""hex2's word-oriented linking, used for RISC-V (riscv32, riscv64).

RISC-V immediates are scattered over an instruction's bits, so here pointers do not
write bytes of their own: ``!label`` (I-type), ``@label`` (B-type), ``$label`` (J-type)
and ``~label`` (U-type) turn the distance from the current address into the bits of that
instruction format and XOR them onto the next four bytes written; ``.`` followed by four
bytes XORs those bytes the same way. ``%`` and ``&`` write 4-byte relative/absolute values
(``%a>b`` measured from ``b``), ``<`` pads with zeros to a multiple of 4.

Written as a character loop: after a ``.`` the next four bytes are read as plain digits,
whatever other characters come between them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rootseed.tools._util import ToolError
from rootseed.tools.hex2_core import Displacement, Labels, Options, Scratch, encode, s32

_NAME = re.compile(rb"[^ \t\n>]*")
_EOF = -1


class _Source:
    """One input file read byte by byte, counting lines as hex2 does."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self.data = data
        self.pos = 0
        self.line = 1

    @property
    def where(self) -> str:
        return f"{self.name}:{self.line}"

    def getc(self) -> int:
        if self.pos < len(self.data):
            self.pos += 1
            return self.data[self.pos - 1]
        return _EOF

    def name_token(self) -> tuple[bytes, int]:
        """Read a name and the byte that ended it (``_EOF`` at the end)."""
        m = _NAME.match(self.data, self.pos)
        assert m is not None
        token = m.group()
        self.pos = m.end()
        end = self.getc()
        if not token and end == _EOF:
            token = b"\xff"  # C's EOF stored as a char
        return token, end

    def comment(self) -> None:
        while self.getc() not in (0x0A, 0x0D, _EOF):
            pass
        self.line += 1


class _WordLinker:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.group = {16: 2, 8: 3, 2: 8}[opts.radix]
        self.digit = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"
                      if int(chr(c), 16) < opts.radix}
        self.labels = Labels()
        self.scratch = Scratch()
        self.displacement = Displacement(opts.arch)
        self.out = bytearray()
        self.ip = opts.base_address
        self.count = 0  # digits of the current byte read so far
        self.hold = 0
        self.shift = 0  # bits XORed onto the next bytes written, low byte first
        self.word = 0
        self.words = 0

    def byte_char(self, src: _Source, c: int, write: bool, word: bool) -> None:
        d = self.digit.get(c)
        if d is None:
            if c in b"#;":
                src.comment()
            elif c == 0x0A:
                src.line += 1
            return
        self.count += 1
        if self.count < self.group:
            self.hold = self.hold * self.opts.radix + d if self.count > 1 else d
            return
        value = self.hold * self.opts.radix + d
        if write:
            self.out.append((value ^ self.shift) & 0xFF)
            self.shift >>= 8
        self.ip += 1
        if word:
            self.word = ((self.word << 8) ^ value) & 0xFFFFFFFF
            self.words += 1
        self.hold = self.count = 0

    def read_word(self, src: _Source) -> None:
        self.word = self.words = 0
        while self.words < 4:
            c = src.getc()
            if c == _EOF:
                raise ToolError(f"{src.where}: '.' needs four bytes before the end of the "
                                "file")
            self.byte_char(src, c, False, True)
        self.ip -= 4

    def pad(self, write: bool) -> None:
        n = -self.ip & 3
        self.ip += n
        if write:
            self.out += bytes(n)

    def first_pass(self, src: _Source) -> None:
        self.count = 0
        c = src.getc()
        while c != _EOF:
            if c == 0x3A:  # ':' label; the byte that ended the name is handled below
                token, c = src.name_token()
                self.labels[self.scratch.read(token, src.where)] = self.ip & 0xFFFFFFFF
                self.scratch.clear()
            if c == 0x2E:  # '.'
                self.read_word(src)
            elif c in b"!@$~":
                src.name_token()
            elif c in b"%&":
                self.ip += 4
                if src.name_token()[1] == 0x3E:
                    src.name_token()
            elif c == 0x3C:
                self.pad(False)
            elif c != 0x5E:
                self.byte_char(src, c, False, False)
            c = src.getc()

    def target(self, src: _Source) -> tuple[int, bytes, int]:
        self.scratch.clear()
        token, end = src.name_token()
        name = self.scratch.read(token, src.where)
        return self.labels.target(name, src.where), name, end

    def second_pass(self, src: _Source) -> None:
        self.count = self.hold = 0
        c = src.getc()
        while c != _EOF:
            if c == 0x3A:
                src.name_token()
            elif c == 0x2E:
                self.read_word(src)
                word = self.word
                if not self.opts.big_endian:
                    word = int.from_bytes(word.to_bytes(4, "big"), "little")
                self.shift ^= word
            elif c in b"%&":
                self.ip += 4
                target, name, end = self.target(src)
                if end == 0x3E:
                    base, _, _ = self.target(src)
                    value = s32(target - base)
                else:
                    value = self.displacement(target, s32(self.ip), name, src.where)
                self.out += encode(target if c == 0x26 else value, 4, self.opts.big_endian)
            elif c in b"!@$~":
                target, name, _ = self.target(src)
                value = self.displacement(target, s32(self.ip), name, src.where)
                self.shift ^= _field(c, value, src.where)
            elif c == 0x3C:
                self.pad(True)
            elif c == 0x5E:
                self.displacement.aligned = True
            else:
                self.byte_char(src, c, True, False)
            c = src.getc()


def _field(kind: int, v: int, where: str) -> int:
    """The bits of a RISC-V immediate of format I (!), B (@), J ($) or U (~)."""
    if kind == 0x21:  # I: no range check, offset from the AUIPC 4 bytes earlier
        bits = (s32(v + 4) & 0xFFF) << 20
    elif kind == 0x40:  # B
        if not -0x1000 <= v <= 0xFFF or v & 1:
            raise ToolError(f"{where}: value {v} out of range for field type B")
        bits = ((v & 0x1E) << 7) | ((v & 0x7E0) << 20) | ((v & 0x800) >> 4) | (
            (v & 0x1000) << 19)
    elif kind == 0x24:  # J
        if not -0x100000 <= v <= 0xFFFFF or v & 1:
            raise ToolError(f"{where}: value {v} out of range for field type J")
        bits = ((v & 0x7FE) << 20) | ((v & 0x800) << 9) | (v & 0xFF000) | (
            (v & 0x100000) << 11)
    else:  # U, rounded so that the low 12 bits can be added back signed
        bits = (v & 0xFFFFF000) + (0x1000 if v & 0xFFF >= 0x800 else 0)
    return bits & 0xFFFFFFFF


def link(files: Sequence[tuple[str, bytes]], opts: Options) -> bytes:
    linker = _WordLinker(opts)
    for name, data in files:
        linker.first_pass(_Source(name, data))
    linker.ip = opts.base_address
    for name, data in files:
        linker.second_pass(_Source(name, data))
    return bytes(linker.out)
