"""gzip byte-identical to Go 1.25's ``compress/gzip`` at ``DefaultCompression``.

BuildKit v0.26.3 (``util/compression/gzip.go``) compresses every layer it exports with
``gzip.NewWriterLevel(w, gzip.DefaultCompression)`` and no header fields, so the layer
digests StageX publishes are digests of Go's DEFLATE. Other compressors (zlib at any level,
Go >= 1.27, which rewrote ``compress/flate``) give different bytes for the same input, so
rootseed carries its own port of Go's level-6 algorithm, in C (``_goflate.c``: why C, and
how it is checked against Go, is said there). This module adds the gzip framing Go writes:

- header ``1f8b 08 00 00000000 00 ff`` (deflate, no flags, no mtime, XFL 0, OS 255),
- one DEFLATE stream, ending with Go's empty final stored block,
- CRC-32 and the input size modulo 2**32, little endian.

**How the input is split matters, and BuildKit's split is followed.** Go's
``Writer.Write`` slides its 64 KiB window only between the pieces it is handed, so a piece
that ends in the last 257 bytes before a slide point (offsets 32511..32767 modulo 32 KiB)
can move that slide one step earlier and change which matches are found: a match more
than 32506 bytes back at that one position is then out of reach. Pieces ending at
multiples of 512 bytes never do. BuildKit's exporter (rewrite-timestamp:
``util/converter``) feeds ``gzip.Writer`` through ``io.Copy`` from a pipe that
``tar.Writer`` writes: its pieces end at tar headers and paddings (multiples of 512), at
32 KiB points of the source layer (multiples of 512) and at the end of each entry's data,
which is anywhere. So the input is handed to the compressor in pieces that end exactly at
those entry data ends (:class:`_TarCuts` reads the tar headers as the bytes go by) and
otherwise at multiples of 32 KiB: for a tar, BuildKit's blob; for anything else (no valid
tar header), Go's output for one ``Write`` of everything. Both are checked against Go
(tests/test_gogzip.py runs BuildKit's converter path itself).
"""

from __future__ import annotations

import importlib
import struct
import zlib
from typing import BinaryIO, Protocol

from rootseed.errors import RootseedError

HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: Bytes read at a time: a multiple of Go's 32 KiB window slide (and of tar's 512-byte
#: blocks), so reading in chunks changes nothing (see the module docstring).
CHUNK = 32 * 32768


class GzipError(RootseedError):
    """gzip compression failed (the kinds below say why)."""


class GzipExtensionMissing(GzipError):
    """The compiled compressor is not importable (a broken or source-only install)."""


class GzipReadError(GzipError):
    """The input could not be read, or is not a binary stream."""


class GzipWriteError(GzipError):
    """The output could not be written (disk full, closed, broken pipe)."""


class _Deflater(Protocol):
    def write(self, data: bytes | bytearray | memoryview, /) -> bytes: ...

    def close(self) -> bytes: ...


def _new_deflater() -> _Deflater:
    """The one place the extension is imported: a clear error, not a traceback, without it."""
    try:
        native = importlib.import_module("rootseed.oci._goflate")
    except ImportError as e:
        raise GzipExtensionMissing(
            f"rootseed's compiled gzip compressor (rootseed.oci._goflate) is missing: {e}",
            hint="reinstall rootseed from a wheel, or from source with a C compiler and "
                 "the Python headers present (Debian: apt-get install gcc python3-dev), "
                 "e.g. ./scripts/setup in a checkout") from None
    deflater: _Deflater = native.Deflater()
    return deflater


def _trailer(crc: int, size: int) -> bytes:
    return struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


_ZERO_BLOCK = bytes(512)
_HEADER_ONLY_TYPES = b"123456"  # link, symlink, char, block, dir, fifo: never any data


def _octal(field: bytes) -> int | None:
    """A tar numeric field (octal, or base-256 when the top bit is set), as Go reads it."""
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big") | ((field[0] & 0x7F) << (8 * (len(field) - 1)))
        return None if field[0] & 0x40 else value  # negative: not a size
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _checksum_ok(block: bytes) -> bool:
    stored = _octal(block[148:156])
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b >= 0x80)
    return stored is not None and stored in (unsigned, signed)


def _pax_size(data: bytes) -> int | None:
    """The ``size`` record of PAX extended header data, if any."""
    for record in data.split(b"\n"):
        _, _, kv = record.partition(b" ")
        key, eq, value = kv.partition(b"=")
        if eq and key == b"size":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _TarCuts:
    """Where BuildKit's ``tar.Writer`` ends a ``Write`` inside a layer: the end of each
    entry's data (paddings and headers end at multiples of 512 and do not matter).

    Fed the stream in order, in pieces whose starts are multiples of 512 (so no header
    is split). Anything that is not a valid tar header (checksum), or the end-of-archive
    block, stops the cutting for the rest of the stream.
    """

    def __init__(self) -> None:
        self.header_at = 0          # stream offset of the next header
        self.active = True
        self.next_size: int | None = None  # from a PAX "size" record
        self.pending: list[int] = []       # cut offsets not reached yet, ascending

    def cuts(self, base: int, piece: bytes | memoryview) -> list[int]:
        """Offsets inside ``piece`` (which starts at stream offset ``base``) to cut at."""
        end = base + len(piece)
        while self.active and self.header_at + 512 <= end:
            at = self.header_at - base
            block = bytes(piece[at:at + 512])
            if block == _ZERO_BLOCK or not _checksum_ok(block):
                self.active = False
                break
            size = _octal(block[124:136])
            if self.next_size is not None:
                size, self.next_size = self.next_size, None
            if size is None:
                self.active = False
                break
            kind = block[156:157]
            if kind and kind in _HEADER_ONLY_TYPES:
                size = 0
            data_at = self.header_at + 512
            if kind in (b"x", b"X"):
                if data_at + size > end:
                    self.active = False  # PAX data across pieces: cannot be read here
                    break
                self.next_size = _pax_size(bytes(piece[data_at - base:data_at - base + size]))
            if size % 512:
                self.pending.append(data_at + size)
            self.header_at = data_at + size + (-size % 512)
        cut = [c - base for c in self.pending if base < c < end]
        self.pending = [c for c in self.pending if c >= end]
        return cut


def _compress(deflater: _Deflater, cuts: _TarCuts, base: int,
              piece: bytes | memoryview) -> bytes:
    """Hand piece to the compressor, cut where BuildKit's writes end."""
    view = memoryview(piece)
    out: list[bytes] = []
    start = 0
    for cut in (*cuts.cuts(base, view), len(view)):
        if cut > start:
            out.append(deflater.write(view[start:cut]))
            start = cut
    return b"".join(out)


def gzip_bytes(data: bytes) -> bytes:
    """BuildKit's (Go's) gzip of ``data``: for a tar, cut into the pieces BuildKit writes;
    otherwise one ``Write`` of everything; then ``Close``."""
    deflater = _new_deflater()
    body = _compress(deflater, _TarCuts(), 0, data)
    return b"".join((HEADER, body, deflater.close(), _trailer(zlib.crc32(data), len(data))))


def _read_chunk(src: BinaryIO) -> bytes:
    """Up to CHUNK bytes, fewer only at the end of the input (short reads are joined)."""
    parts: list[bytes] = []
    have = 0
    while have < CHUNK:
        try:
            got = src.read(CHUNK - have)
        except (OSError, ValueError) as e:
            raise GzipReadError(f"cannot read the input to compress: {_reason(e)}",
                                hint="check the input file or pipe") from None
        if not isinstance(got, bytes | bytearray):
            raise GzipReadError(
                f"the input to compress is not a binary stream (read gave "
                f"{type(got).__name__})", hint="open the input in binary mode ('rb')")
        if not got:
            break
        parts.append(bytes(got))
        have += len(got)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _write_all(dst: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = dst.write(view)
        except (OSError, ValueError) as e:
            raise GzipWriteError(f"cannot write the compressed output: {_reason(e)}",
                                 hint="check free space and the output file or pipe") from None
        if not isinstance(n, int) or n <= 0:
            raise GzipWriteError("cannot write the compressed output: the stream took no "
                                 "bytes", hint="write to a blocking binary file or pipe")
        view = view[n:]


def _reason(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror if e.filename is None else f"{e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


def gzip_file(src: BinaryIO, dst: BinaryIO) -> None:
    """Stream the gzip of everything ``src`` gives into ``dst``: the bytes
    :func:`gzip_bytes` gives for the same input, in bounded memory (a few MiB whatever the
    input size). ``dst`` is written, not closed or flushed.

    Raises :class:`GzipReadError` / :class:`GzipWriteError` on I/O failures (what was
    already written to ``dst`` is then incomplete: the caller discards it).
    """
    deflater = _new_deflater()
    cuts = _TarCuts()
    crc = 0
    size = 0
    _write_all(dst, HEADER)
    while True:
        chunk = _read_chunk(src)
        if chunk:
            crc = zlib.crc32(chunk, crc)
            out = _compress(deflater, cuts, size, chunk)
            size += len(chunk)
            if out:
                _write_all(dst, out)
        if len(chunk) < CHUNK:
            break
    _write_all(dst, deflater.close() + _trailer(crc, size))
