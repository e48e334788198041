"""sha256sum (mescc-tools-extra): ``sha256sum [-o OUT] FILE...`` and ``sha256sum -c FILE...``.

Output as upstream: ``<64 lowercase hex>  <name>`` per file; a missing file prints
``<name>: No such file or directory`` (to the same output) and stops with status 1.
``--check`` reads lines ``<64 hex>  <name>``, prints ``<name>: OK`` or
``<name>: FAILED`` with ``Wanted:``/``Received:`` lines, and exits 1 if any failed. A
malformed line prints ``<checkfile>: no properly formatted SHA256 checksum lines found``
and stops with status 1 (the digits upstream accepts are 0-9, a-f and, of the capitals,
only F; an empty line counts as malformed). ``-h`` prints the usage. All arguments are read
before anything is printed.

Unlike upstream: a last line without a newline ends at the end of the file (upstream reads
past its buffer), a directory is an error, and ``-o`` without a file name is an error.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import BinaryIO

from rootseed.tools._util import ToolError, fail, write_output

_HEX = {c: int(chr(c), 16) for c in b"0123456789abcdefF"}


def _read(name: str) -> bytes | None:
    try:
        with open(name, "rb") as f:
            return f.read()
    except IsADirectoryError as e:
        raise ToolError(f"{name}: is a directory") from e
    except OSError:
        return None


def digest_lines(files: list[tuple[str, bytes | None]]) -> tuple[str, int]:
    """The text ``sha256sum FILE...`` prints and its exit status."""
    text = []
    for name, data in files:
        if data is None:
            text.append(f"{name}: No such file or directory\n")
            return "".join(text), 1
        text.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    return "".join(text), 0


def check(checkfile: str, lines: bytes, out: BinaryIO) -> int:
    """Verify one check file's lines, printing as upstream; 0 if all matched, else 1.

    Raises :class:`ToolError` (after printing upstream's message) when it must stop.
    """
    status = 0
    pos = 0
    while True:
        wanted = bytearray()
        for i in range(32):
            pair = lines[pos + 2 * i:pos + 2 * i + 2]
            if len(pair) < 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                return _bad(checkfile, out)
            wanted.append(_HEX[pair[0]] << 4 | _HEX[pair[1]])
        pos += 64
        if lines[pos:pos + 2] != b"  ":
            return _bad(checkfile, out)
        pos += 2
        newline = lines.find(b"\n", pos, pos + 4096)
        end = newline if newline >= 0 else min(pos + 4096, len(lines))
        raw = lines[pos:end].split(b"\0", 1)[0]
        pos = end + 1 if newline >= 0 else end
        name = os.fsdecode(raw)
        try:
            with open(raw, "rb") as f:
                data = f.read()
        except OSError:
            out.write(os.fsencode(f"{name}: No such file or directory\n"))
            raise ToolError(f"{name}: cannot read", exit_code=1) from None
        received = hashlib.sha256(data).digest()
        if received == bytes(wanted):
            out.write(os.fsencode(f"{name}: OK\n"))
        else:
            out.write(os.fsencode(f"{name}: FAILED\nWanted:   {wanted.hex()}\n"
                                  f"Received: {received.hex()}\n"))
            status = 1
        if pos >= len(lines) or lines[pos] == 0:
            return status


def _bad(checkfile: str, out: BinaryIO) -> int:
    out.write(os.fsencode(f"{checkfile}: no properly formatted SHA256 checksum lines found\n"))
    raise ToolError(f"{checkfile}: malformed checksum line", exit_code=1)


def main(argv: list[str]) -> int:
    checking = False
    output: str | None = None
    files: list[tuple[str, bytes | None]] = []
    try:
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg in ("-c", "--check"):
                checking = True
            elif arg in ("-o", "--output"):
                if i + 1 >= len(argv):
                    raise ToolError(f"option {arg} needs a file name")
                output = argv[i + 1]
                i += 1
            elif arg in ("-h", "--help"):
                sys.stdout.write("Usage: sha256sum <file> [--check]\n")
                return 0
            else:
                files.append((arg, _read(arg)))
            i += 1
        if checking:
            status = 0
            for name, data in files:
                if data is None:
                    sys.stdout.buffer.write(os.fsencode(f"{name}: No such file or directory\n"))
                    return 1
                try:
                    status |= check(name, data, sys.stdout.buffer)
                except ToolError as e:
                    return e.exit_code
                finally:
                    sys.stdout.buffer.flush()
            return status
        text, status = digest_lines(files)
        if output is None:
            sys.stdout.buffer.write(os.fsencode(text))
            sys.stdout.buffer.flush()
        else:
            write_output(output, os.fsencode(text), create_mode=0o666)
        return status
    except ToolError as e:
        return fail("sha256sum", e)
