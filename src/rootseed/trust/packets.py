"""Just enough OpenPGP packet framing (RFC 9580 §4.2) to bound a signature before parsing it.

Written here rather than left to the library: pysequoia inflates a compressed message
completely in memory, with no output limit, so a hostile signature file of a few KiB
could expand to gigabytes (a compression bomb). This module only walks packet headers
(tags and lengths; no cryptography, no interpretation), inflates a Compressed Data packet
with a hard output limit, and refuses compression inside compression. Real container
signatures are one Compressed Data packet (gpg's default, as in StageX's store) or a
plain one-pass-signature/literal/signature sequence.
"""

from __future__ import annotations

import bz2
import enum
import zlib
from collections.abc import Iterator

TAG_COMPRESSED = 8


class Framing(enum.StrEnum):
    """What is wrong with the framing (for a program; the message is for people)."""

    TRUNCATED = "truncated"
    NOT_A_PACKET = "not-a-packet"
    UNKNOWN_COMPRESSION = "unknown-compression"
    DAMAGED = "damaged"
    TOO_LARGE = "too-large"
    EMPTY = "empty"
    NESTED = "nested"


class FramingError(Exception):
    """The bytes are not well-framed OpenPGP packets, or inflate past the limit."""

    def __init__(self, reason: Framing, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _length(data: bytes, pos: int, size: int) -> int:
    if pos + size > len(data):
        raise FramingError(Framing.TRUNCATED, "truncated packet header")
    return int.from_bytes(data[pos:pos + size], "big")


def packets(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Each packet's ``(tag, body)``, in order; partial body lengths are joined."""
    pos = 0
    while pos < len(data):
        first = data[pos]
        pos += 1
        if not first & 0x80:
            raise FramingError(Framing.NOT_A_PACKET,
                               f"byte {pos - 1} does not start an OpenPGP packet")
        if first & 0x40:  # new format
            tag = first & 0x3F
            chunks: list[bytes] = []
            while True:
                octet = _length(data, pos, 1)
                if octet < 192:
                    size, pos, partial = octet, pos + 1, False
                elif octet < 224:
                    size = ((octet - 192) << 8) + _length(data, pos + 1, 1) + 192
                    pos, partial = pos + 2, False
                elif octet == 255:
                    size, pos, partial = _length(data, pos + 1, 4), pos + 5, False
                else:
                    size, pos, partial = 1 << (octet & 0x1F), pos + 1, True
                if pos + size > len(data):
                    raise FramingError(Framing.TRUNCATED, "truncated packet body")
                chunks.append(data[pos:pos + size])
                pos += size
                if not partial:
                    break
            yield tag, b"".join(chunks)
        else:  # old format
            tag = (first >> 2) & 0x0F
            kind = first & 0x03
            if kind == 3:  # indeterminate: to the end of the data
                size = len(data) - pos
            else:
                width = (1, 2, 4)[kind]
                size = _length(data, pos, width)
                pos += width
            if pos + size > len(data):
                raise FramingError(Framing.TRUNCATED, "truncated packet body")
            yield tag, data[pos:pos + size]
            pos += size


def inflate(algorithm: int, data: bytes, limit: int) -> bytes:
    """The content of a Compressed Data packet, refusing more than ``limit`` bytes."""
    try:
        if algorithm == 0:
            out = data
        elif algorithm in (1, 2):  # ZIP (raw deflate), ZLIB
            inflater = zlib.decompressobj(-15 if algorithm == 1 else 15)
            out = inflater.decompress(data, limit + 1)
        elif algorithm == 3:
            out = bz2.BZ2Decompressor().decompress(data, limit + 1)
        else:
            raise FramingError(Framing.UNKNOWN_COMPRESSION,
                               f"unknown compression algorithm {algorithm}")
    except (zlib.error, OSError, EOFError) as e:
        raise FramingError(Framing.DAMAGED, f"compressed data is damaged: {e}") from e
    if len(out) > limit:
        raise FramingError(Framing.TOO_LARGE, f"compressed content is larger than {limit} bytes")
    return out


def check_bounded(data: bytes, limit: int) -> None:
    """Raise :class:`FramingError` unless ``data`` is well framed and inflates to ≤ ``limit``."""
    for tag, body in packets(data):
        if tag != TAG_COMPRESSED:
            continue
        if not body:
            raise FramingError(Framing.EMPTY, "empty compressed data packet")
        for inner, _ in packets(inflate(body[0], body[1:], limit)):
            if inner == TAG_COMPRESSED:
                raise FramingError(Framing.NESTED, "compressed data inside compressed data")
