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

**How the input is split matters.** Go's ``Writer.Write`` slides its 64 KiB window only
between the pieces it is handed, so a write boundary that falls in the last 262 bytes of a
window can move a slide one step earlier and change which matches are found (rarely: a
match more than 32506 bytes back at one position per 32 KiB). Pieces whose sizes are
multiples of 32 KiB give exactly the bytes of one ``Write`` of everything, and so do
:func:`gzip_file` and :func:`gzip_bytes`: that is what Go gives for a layer written in one
go or through ``io.Copy`` from a file. BuildKit's rewrite-timestamp converter feeds its
compressor from ``io.Copy`` over a pipe whose writes are tar headers and the read sizes of
its decompressor, so an input whose re-compression differs is possible in principle; all
of BuildKit's layers checked (tests/test_gogzip.py) are reproduced by one ``Write``.
"""

from __future__ import annotations

import importlib
import struct
import zlib
from typing import BinaryIO, Protocol

from rootseed.errors import RootseedError

HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
#: Bytes per ``write`` to the compressor: a multiple of Go's 32 KiB window slide, so the
#: output is that of one ``Write`` of everything (see the module docstring).
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


def gzip_bytes(data: bytes) -> bytes:
    """Go's gzip of ``data`` (one ``Write`` of everything, then ``Close``)."""
    deflater = _new_deflater()
    body = deflater.write(data)
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
    """Stream Go's gzip of everything ``src`` gives into ``dst``, in bounded memory
    (a few MiB whatever the input size). ``dst`` is written, not closed or flushed.

    Raises :class:`GzipReadError` / :class:`GzipWriteError` on I/O failures (what was
    already written to ``dst`` is then incomplete: the caller discards it).
    """
    deflater = _new_deflater()
    crc = 0
    size = 0
    _write_all(dst, HEADER)
    while True:
        chunk = _read_chunk(src)
        if chunk:
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            out = deflater.write(chunk)
            if out:
                _write_all(dst, out)
        if len(chunk) < CHUNK:
            break
    _write_all(dst, deflater.close() + _trailer(crc, size))
