"""What M1 prints for one distinct token (the encoding half of M1).

M1 works on *distinct* token texts: a text gets one expression, wherever it appears. The
expression comes from, in this order: a ``DEFINE`` naming the text; the text being a
string (``'..'`` verbatim, ``".."`` as hex bytes plus a NUL); an immediate of the target
architecture (:func:`immediate`); or the text itself when it starts with one of
``! @ $ ~ % & : ^`` (left for hex2), ``<N`` becoming N zero bytes of padding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rootseed.tools._numbers import ByteMode, decimal, int32, render, strtoint
from rootseed.tools._util import ToolError


class Family(enum.Enum):
    KNIGHT = "knight"  # bare numbers are 16-bit immediates
    BYTES = "bytes"  # ! @ $ ~ % & prefixed numbers are 1-4 byte integers
    RISCV = "riscv"  # ! @ ~ % prefixed numbers are RISC-V instruction fields


ARCHITECTURES: dict[str, Family] = {
    "knight-native": Family.KNIGHT,
    "knight-posix": Family.KNIGHT,
    "x86": Family.BYTES,
    "amd64": Family.BYTES,
    "armv7l": Family.BYTES,
    "aarch64": Family.BYTES,
    "ppc64le": Family.BYTES,
    "riscv32": Family.RISCV,
    "riscv64": Family.RISCV,
}


@dataclass(frozen=True)
class Target:
    family: Family = Family.KNIGHT
    big_endian: bool = True
    mode: ByteMode = ByteMode.HEX


# In M1, string bytes of 0x80 and above index its digit table with a negative
# (sign-extended) number and so read the characters stored just before the table: the
# tail of the message "Macro value must exist\n" and its NUL. Both the gcc build and the
# M2-Planet build of the pinned M1 lay those strings out this way and print e.g. "s3" for
# 0xC3; a NUL read this way ends the expression early. We reproduce that.
_TABLE = " exist\n\0" "0123456789ABCDEF"
_NEG = 8  # index of "0" in _TABLE


def _signed(byte: int) -> int:
    return byte - 256 if byte & 0x80 else byte


def _hex_byte(byte: int) -> str:
    b = _signed(byte)
    return _TABLE[_NEG + (b >> 4)] + _TABLE[_NEG + (b & 0xF)] + " "


def _octal_byte(byte: int) -> str:
    b = _signed(byte)
    return _TABLE[_NEG + (b >> 6)] + _TABLE[_NEG + ((b >> 3) & 7)] + _TABLE[_NEG + (b & 7)] + " "


def _binary_byte(byte: int) -> str:
    b = _signed(byte)
    return _TABLE[_NEG + (b >> 7)] + "".join(_TABLE[_NEG + ((b >> k) & 1)]
                                              for k in range(6, -1, -1)) + " "


_BYTE_WRITERS = {ByteMode.HEX: _hex_byte, ByteMode.OCTAL: _octal_byte,
                 ByteMode.BINARY: _binary_byte}


def hexify(text: str, target: Target) -> str:
    """A ``"``-string (``text`` keeps its opening quote): its bytes and a NUL, each
    followed by a space; on knight in hex mode, zero-padded to a multiple of 4 bytes."""
    write = _BYTE_WRITERS[target.mode]
    out = "".join(write(ord(ch)) for ch in text[1:]) + write(0)
    if target.family is Family.KNIGHT and target.mode is ByteMode.HEX:
        size = len(text)
        padded = ((((size - 1) >> 2) + 1) << 3) + size
        out += "0" * (padded - len(out))
    return out.split("\0", 1)[0]


_BYTE_SIZES = {"!": (1, False), "@": (2, False), "$": (2, True),
               "~": (3, False), "%": (4, False), "&": (4, True)}
# (bytes, absolute) -> smallest and largest value accepted
_BOUNDS = {(1, False): (-129, 256), (1, True): (-1, 256),
           (2, False): (-32769, 32768), (2, True): (-32769, 65536),
           (3, False): (-8388609, 8388608), (3, True): (-8388609, 16777217)}


def express_number(value: int, prefix: str, target: Target) -> str:
    """A 1-4 byte integer; refuses values outside the prefix's range."""
    nbytes, absolute = _BYTE_SIZES[prefix]
    bounds = _BOUNDS.get((nbytes, absolute))
    if bounds is not None:
        low, high = bounds
        if value < low or value > high:
            raise ToolError(f"A displacement of {decimal(value)} does not fit in "
                            f"{nbytes} bytes\n")
        value &= (1 << (8 * nbytes)) - 1
    return render(value, nbytes, target.mode, target.big_endian)


def express_word(value: int, prefix: str, target: Target) -> str:
    """A RISC-V immediate field placed in a 32-bit word.

    ``!`` I-type (bits 31:20), ``@`` S-type (bits 31:25 and 11:7), ``~`` U-type (upper 20
    bits, rounded so that an I-type low part added to it gives ``value``), ``%`` a plain
    32-bit word. All but ``%`` are prefixed with ``.`` so that hex2 ORs them into the
    previous word.
    """
    if prefix == "!":
        word = (value & 0xFFF) << 20
    elif prefix == "@":
        word = ((value & 0x1F) << 7) | ((value & 0xFE0) << 20)
    elif prefix == "~":
        word = (value & 0xFFFFF000) + (0x1000 if (value & 0xFFF) >= 0x800 else 0)
    else:
        word = value
    digits = render(int32(word), 4, target.mode, target.big_endian)
    return digits if prefix == "%" else "." + digits


def immediate(text: str, target: Target) -> str | None:
    """The expression for a number in ``text``, or None when it is not one."""
    if target.family is Family.KNIGHT:
        value = strtoint(text)
        if text[0] != "0" and value == 0:
            return None
        if value > 65536:
            return None
        return express_number(value, "$" if value > 32767 else "@", target)
    prefixes = "%~@!&$" if target.family is Family.BYTES else "%~@!"
    if text[0] not in prefixes:
        return None
    value = strtoint(text[1:])
    if text[1:2] != "0" and value == 0:
        return None
    if target.family is Family.BYTES:
        return express_number(value, text[0], target)
    return express_word(value, text[0], target)


_PASSED_THROUGH = frozenset("!@$~%&:^")
_MAX_PADDING = 1 << 28


def passthrough(text: str, target: Target) -> str | None:
    """Labels, label references and unevaluated immediates as they are; ``<N`` padding."""
    first = text[0]
    if first in _PASSED_THROUGH:
        return text
    if first != "<":
        return None
    count = strtoint(text[1:])
    if count == 0:
        return text
    if count < 0:
        raise ToolError("negative null padding not possible\n")
    digits = count * target.mode.per_byte
    if digits > _MAX_PADDING:
        raise ToolError("Exhausted available memory\n")
    return "0" * digits
