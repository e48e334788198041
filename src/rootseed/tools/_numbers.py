"""Number parsing and rendering shared by M1 and blood-elf (mescc-tools semantics).

The mescc-tools programs run on 32-bit ``int``: values wrap modulo 2**32 and shifts of
negative numbers keep the sign. Numbers are written as fixed-width digit strings in one
of three "byte modes" (hex, octal, binary) and, for little-endian targets, the digit
groups that stand for one byte are put in reverse order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

_DIGITS = "0123456789ABCDEF"




@dataclass(frozen=True)
class _Mode:
    base: int  # the digit base
    bits: int  # bits per digit
    per_byte: int  # digits that stand for one byte


class ByteMode(enum.Enum):
    HEX = _Mode(16, 4, 2)
    OCTAL = _Mode(8, 3, 3)
    BINARY = _Mode(2, 1, 8)

    @property
    def per_byte(self) -> int:
        return self.value.per_byte


def int32(value: int) -> int:
    """``value`` as a C ``int`` (two's complement, 32 bits)."""
    value &= 0xFFFFFFFF
    return value - 0x100000000 if value & 0x80000000 else value


_SETS = {2: "01", 8: "01234567", 10: "0123456789", 16: "0123456789ABCDEF"}


def _read_digits(text: str, base: int) -> int:
    """Digits in ``base`` with an optional leading ``-``; anything else makes it 0."""
    negative = text.startswith("-")
    if negative:
        text = text[1:]
    allowed = _SETS[base]
    n = 0
    for ch in text:
        digit = allowed.find(ch.upper() if base == 16 else ch)
        if digit < 0:
            return 0
        n = int32(n * base + digit)
    return int32(-n) if negative else n


def strtoint(text: str) -> int:
    """M2libc's ``strtoint``: ``0b`` binary, ``0x`` hex, leading ``0`` octal, else decimal.

    A sign is only understood after the prefix (``0x-10`` is -16, ``-0x10`` is 0); any
    character outside the base's digits makes the whole value 0.
    """
    if text.startswith("0b"):
        return _read_digits(text[2:], 2)
    if text.startswith("0x"):
        return _read_digits(text[2:], 16)
    if text.startswith("0"):
        return _read_digits(text[1:], 8)
    return _read_digits(text, 10)


def stringify(value: int, digits: int, mode: ByteMode) -> str:
    """``digits`` digits of ``value`` in ``mode``, most significant first.

    ``value`` is a C int: the digits above bit 31 repeat its sign (octal words have 36 bits).
    """
    bits, mask = mode.value.bits, mode.value.base - 1
    value = int32(value)
    return "".join(_DIGITS[(value >> (bits * k)) & mask] for k in range(digits - 1, -1, -1))


def little_endian(text: str, mode: ByteMode) -> str:
    """Reverse the order of the byte-sized digit groups of ``text``."""
    size = mode.per_byte
    groups = [text[i:i + size] for i in range(0, len(text), size)]
    return "".join(reversed(groups))


def render(value: int, nbytes: int, mode: ByteMode, big_endian: bool) -> str:
    """``nbytes`` of ``value`` as digits in ``mode`` and the requested byte order."""
    text = stringify(value, nbytes * mode.per_byte, mode)
    return text if big_endian else little_endian(text, mode)


def decimal(value: int) -> str:
    """A C int in decimal, as M2libc's ``int2str(x, 10, TRUE)`` prints it."""
    return str(int32(value))
