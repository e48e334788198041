"""What both hex2 linking modes share: architectures, options, names, pointer values.

Facts from mescc-tools (pinned commit 08d5a06, ``hex2 1.5.0``): addresses are C ``int``
(32-bit, wrapping); a name is read up to a space, tab, newline or ``>`` into one reused
4096-byte buffer (:class:`Scratch`), at most 4095 bytes; the latest definition of a
label wins; relative pointers count from the end of the pointer, with per-architecture
rules for ARM, AArch64 and PowerPC (:class:`Displacement`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from rootseed.tools._util import ToolError

MAX_NAME = 4096


class Arch(IntEnum):
    """The architectures hex2 knows, numbered as mescc-tools numbers them (ELF e_machine)."""

    KNIGHT = 0
    X86 = 0x03
    AMD64 = 0x3E
    ARMV7L = 0x28
    AARCH64 = 0xB7
    PPC64LE = 0x15
    RISCV32 = 0xF3
    RISCV64 = 0x100F3


ARCH_NAMES: dict[str, Arch] = {
    "knight-native": Arch.KNIGHT, "knight-posix": Arch.KNIGHT, "x86": Arch.X86,
    "amd64": Arch.AMD64, "armv7l": Arch.ARMV7L, "aarch64": Arch.AARCH64,
    "ppc64le": Arch.PPC64LE, "riscv32": Arch.RISCV32, "riscv64": Arch.RISCV64,
}
#: Architectures for which hex2 warns about big-endian output.
LITTLE_ENDIAN = {Arch.X86, Arch.AMD64, Arch.ARMV7L, Arch.AARCH64, Arch.RISCV32, Arch.RISCV64}
#: Architectures where ``<`` pads to a 4-byte boundary.
PADDING = {Arch.ARMV7L, Arch.AARCH64, Arch.RISCV32, Arch.RISCV64}
#: Architectures linked word by word (``.`` words, instruction-field pointers).
WORD_MODE = {Arch.RISCV32, Arch.RISCV64}


@dataclass(frozen=True)
class Options:
    arch: Arch = Arch.KNIGHT
    big_endian: bool = True
    base_address: int = 0
    radix: int = 16  # 16 (hex), 8 (--octal) or 2 (--binary)


def s32(value: int) -> int:
    """Wrap to a signed 32-bit C ``int``."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


def strtoint(text: str) -> int:
    """M2libc's ``strtoint``: ``0x`` hex, ``0b`` binary, leading ``0`` octal, else decimal
    (with an optional ``-``); anything unparsable is 0, as in the original."""
    if text.startswith("0x"):
        digits, radix = text[2:], 16
    elif text.startswith("0b"):
        digits, radix = text[2:], 2
    elif text.startswith("0"):
        digits, radix = text[1:], 8
    else:
        digits, radix = text, 10
    negative = digits.startswith("-")
    if negative:
        digits = digits[1:]
    value = 0
    for ch in digits:
        d = "0123456789abcdef".find(ch.lower()) if ch.isascii() else -1
        if not 0 <= d < radix:
            return 0
        value = value * radix + d
    return s32(-value if negative else value)


class Scratch:
    """The one name buffer hex2 reads every name into.

    Names are C strings: a NUL byte in the input ends the name, and what followed it stays
    in the buffer, to reappear behind a later, longer name. Every read follows a clear, so
    until a name with a NUL shows up the buffer is all zeros and a name is its token.
    """

    def __init__(self) -> None:
        self._buf: bytearray | None = None  # materialised at the first name with a NUL

    def read(self, token: bytes, where: str) -> bytes:
        if len(token) >= MAX_NAME:
            raise ToolError(f"{where}: name longer than {MAX_NAME - 1} bytes: "
                            f"{token[:40].decode('latin-1')}...")
        buf = self._buf
        if buf is None:
            if b"\0" not in token:
                return token
            buf = self._buf = bytearray(MAX_NAME + 1)
        buf[:len(token)] = token
        return bytes(buf[:buf.index(0)])

    def clear(self) -> None:
        buf = self._buf
        if buf is not None:
            end = buf.index(0, 1)
            buf[:end] = bytes(end)


class Labels(dict[bytes, int]):
    """Label name → address (unsigned 32-bit); the latest definition wins."""

    def target(self, name: bytes, where: str) -> int:
        try:
            return s32(self[name])
        except KeyError:
            raise self.missing(name, where) from None

    @staticmethod
    def missing(name: bytes, where: str) -> ToolError:
        return ToolError(f"{where}: target label {name.decode('latin-1')!r} is not defined")


class Displacement:
    """Relative distances per architecture; holds the ``^`` (word-aligned) flag."""

    def __init__(self, arch: Arch) -> None:
        self.arch = arch
        self.aligned = False

    def __call__(self, target: int, base: int, name: bytes, where: str) -> int:
        arch = self.arch
        if arch is Arch.ARMV7L and self.aligned:
            self.aligned = False
            if target & 3:
                raise ToolError(f"{where}: unaligned branch target: "
                                f"{name.decode('latin-1')}")
            # branch offsets count instructions, from two instructions ahead
            return s32(((s32(target - base + (base & 3))) >> 2) - 2)
        if arch in (Arch.ARMV7L, Arch.AARCH64) and not self.aligned:
            return s32(target - base - 8 + (base & 3))
        if arch is Arch.AARCH64:
            self.aligned = False
            return s32(target - (base & ~3)) >> 2
        if arch is Arch.PPC64LE:
            linked, self.aligned = self.aligned, False
            value = s32(target - (base & ~3))
            return value | 1 if linked else value
        return s32(target - base)


def check_range(value: int, size: int, absolute: bool, where: str) -> None:
    """hex2's range check: absolute values are unsigned, relative ones signed."""
    if size == 4:
        return
    bits = 8 * size
    low, high = (0, (1 << bits) - 1) if absolute else (-(1 << bits - 1), (1 << bits - 1) - 1)
    if not low <= value <= high:
        kind = "An absolute" if absolute else "A relative"
        unit = "byte" if size == 1 else "bytes"
        raise ToolError(f"{where}: {kind} displacement of {value} does not fit in "
                        f"{size} {unit}")


def encode(value: int, size: int, big_endian: bool) -> bytes:
    raw = (value & 0xFFFFFFFF).to_bytes(4, "big" if big_endian else "little")
    return raw[4 - size:] if big_endian else raw[:size]
