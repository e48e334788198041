"""Tar headers exactly as Go's ``archive/tar`` writes them (the writer BuildKit uses).

BuildKit's layers pass through Go's ``archive/tar`` twice (containerd's ``ChangeWriter``,
then the ``rewrite-timestamp`` converter), so their bytes are Go's choices, which differ
from Python's ``tarfile``: plain USTAR whenever the entry fits (a long ASCII path is split
into ``prefix``/``name`` when it can be), every numeric field ``%0No`` with a NUL
(``devmajor``/``devminor`` ``0000000\\0`` even for files), the checksum ``%06o\\0 ``,
and a PAX extended header (named ``<dir>/PaxHeaders.0/<base>``, ASCII only, records
sorted by key) only when a value does not fit USTAR. The archive ends with exactly two
zero blocks (no padding to a record size). Sources: Go 1.25 ``src/archive/tar/writer.go``
(``writeUSTARHeader``, ``writePAXHeader``, ``templateV7Plus``, ``writeRawFile``) and
``common.go`` (``allowedFormats``, ``splitUSTARPath``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import BinaryIO

BLOCK = 512
NAME_SIZE = 100
PREFIX_SIZE = 155


class Kind(Enum):
    """A tar entry's type flag."""

    FILE = b"0"
    HARDLINK = b"1"
    SYMLINK = b"2"
    CHAR = b"3"
    BLOCK = b"4"
    DIR = b"5"
    FIFO = b"6"


@dataclass(frozen=True)
class Header:
    """One entry. ``name`` and ``linkname`` are bytes as the file system has them
    (directory names end with ``/``); ``mode`` holds permission, setuid/setgid and
    sticky bits only."""

    name: bytes
    kind: Kind
    mode: int
    mtime: int
    size: int = 0
    linkname: bytes = b""
    uid: int = 0
    gid: int = 0
    devmajor: int = 0
    devminor: int = 0
    #: extra PAX records (e.g. ``SCHILY.xattr.security.capability``)
    pax: Mapping[str, bytes] = field(default_factory=dict)


def _ascii(value: bytes) -> bool:
    return all(b < 0x80 for b in value)


def _to_ascii(value: bytes) -> bytes:
    """Go's ``toASCII``: every non-ASCII rune dropped (for UTF-8, every byte >= 0x80)."""
    return bytes(b for b in value if b < 0x80)


def _octal(width: int, value: int) -> bytes:
    """Go's ``formatOctal`` into a field of ``width`` bytes: zero-padded digits, NUL."""
    digits = format(value, "o").encode()
    if len(digits) < width - 1:
        digits = b"0" * (width - 1 - len(digits)) + digits
    return _string(width, digits)


def _fits_octal(width: int, value: int) -> bool:
    return 0 <= value < (1 << (3 * (width - 1)))


def _string(width: int, value: bytes) -> bytes:
    """Go's ``formatString``: the value cut to the field, NUL-terminated if shorter (and a
    cut that ends in ``/`` loses its trailing slashes, as Go does for buggy readers)."""
    out = bytearray(width)
    out[:min(width, len(value))] = value[:width]
    if len(value) > width and out[width - 1] == ord("/"):
        n = len(value[:width - 1].rstrip(b"/"))
        out[n] = 0
    return bytes(out)


def split_ustar_path(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's ``splitUSTARPath``: (prefix, name) for a long ASCII path, else None."""
    length = len(name)
    if length <= NAME_SIZE or not _ascii(name):
        return None
    if length > PREFIX_SIZE + 1:
        length = PREFIX_SIZE + 1
    elif name[length - 1] == ord("/"):
        length -= 1
    i = name.rfind(b"/", 0, length)
    nlen = len(name) - i - 1
    if i <= 0 or nlen > NAME_SIZE or nlen == 0 or i > PREFIX_SIZE:
        return None
    return name[:i], name[i + 1:]


def _block(kind: bytes, name: bytes, linkname: bytes, mode: int, uid: int, gid: int,
           size: int, mtime: int, *, devices: tuple[int, int] | None,
           prefix: bytes = b"") -> bytes:
    """A header block (V7 fields + USTAR magic), checksum filled in. ``devices`` None
    leaves devmajor/devminor NUL (as Go's ``writeRawFile`` does for a PAX header)."""
    b = bytearray(BLOCK)
    b[0:100] = _string(100, name)
    b[100:108] = _octal(8, mode)
    b[108:116] = _octal(8, uid)
    b[116:124] = _octal(8, gid)
    b[124:136] = _octal(12, size)
    b[136:148] = _octal(12, mtime)
    b[156:157] = kind
    b[157:257] = _string(100, linkname)
    b[257:263] = b"ustar\0"
    b[263:265] = b"00"
    if devices is not None:
        b[329:337] = _octal(8, devices[0])
        b[337:345] = _octal(8, devices[1])
    if prefix:
        b[345:500] = _string(155, prefix)
    b[148:156] = b" " * 8
    checksum = sum(b)
    b[148:155] = _octal(7, checksum)
    b[155] = ord(" ")
    return bytes(b)


def pax_record(key: str, value: bytes) -> bytes:
    """Go's ``formatPAXRecord``: ``"<len> <key>=<value>\\n"``, len counting itself."""
    body = key.encode() + b"=" + value + b"\n"
    size = len(body) + 1
    size += len(str(size))
    record = str(size).encode() + b" " + body
    if len(record) != size:
        record = str(len(record)).encode() + b" " + body
    return record


def _pad(size: int) -> bytes:
    return b"\0" * (-size % BLOCK)


def encode(h: Header) -> bytes:
    """The header block(s) of ``h`` (a PAX extended header first when needed)."""
    pax: dict[str, bytes] = {}
    ustar = True
    for key, value, size in (("path", h.name, NAME_SIZE), ("linkpath", h.linkname, NAME_SIZE)):
        if not _ascii(value) or len(value) > size:
            if key != "path" or split_ustar_path(value) is None:
                ustar = False
            pax[key] = value
    for key, number, width in (("uid", h.uid, 8), ("gid", h.gid, 8), ("size", h.size, 12),
                               ("mtime", h.mtime, 12)):
        if not _fits_octal(width, number):
            ustar = False
            pax[key] = str(number).encode()
    if h.pax:
        ustar = False
        for key, value in h.pax.items():
            pax.setdefault(key, value)
    if ustar:
        split = split_ustar_path(h.name)
        prefix, name = split if split is not None else (b"", h.name)
        return _block(h.kind.value, name, h.linkname, h.mode, h.uid, h.gid, h.size,
                      h.mtime, devices=(h.devmajor, h.devminor), prefix=prefix)
    data = b"".join(pax_record(k, pax[k]) for k in sorted(pax))
    directory, _, base = h.name.rpartition(b"/")
    pax_name = b"/".join(p for p in (directory, b"PaxHeaders.0", base) if p)
    pax_name = _to_ascii(pax_name)[:NAME_SIZE].rstrip(b"/")
    extended = _block(b"x", pax_name, b"", 0, 0, 0, len(data), 0, devices=None)
    main = _block(h.kind.value, _to_ascii(h.name), _to_ascii(h.linkname), h.mode,
                  h.uid if _fits_octal(8, h.uid) else 0, h.gid if _fits_octal(8, h.gid) else 0,
                  h.size if _fits_octal(12, h.size) else 0,
                  h.mtime if _fits_octal(12, h.mtime) else 0,
                  devices=(h.devmajor, h.devminor))
    return extended + data + _pad(len(data)) + main


class TarWriter:
    """Writes entries to ``out`` as Go's ``tar.Writer`` does; :meth:`close` ends the
    archive with two zero blocks."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out

    def add(self, header: Header, content: BinaryIO | None = None) -> None:
        """Write ``header`` and, for a file, exactly ``header.size`` bytes of ``content``."""
        self.out.write(encode(header))
        if header.kind is not Kind.FILE or header.size == 0:
            return
        if content is None:
            raise ValueError(f"{header.name!r}: a file entry needs its content")
        left = header.size
        while left:
            chunk = content.read(min(left, 1 << 20))
            if not chunk:
                raise OSError(f"{header.name!r}: the file shrank while it was being written")
            self.out.write(chunk)
            left -= len(chunk)
        self.out.write(_pad(header.size))

    def close(self) -> None:
        self.out.write(b"\0" * (2 * BLOCK))
