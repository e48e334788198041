"""Shared plumbing for the Python stage0 tools: one error type, safe reads and writes."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rootseed.errors import ErrorKind, RootseedError


class ToolError(RootseedError):
    """A failure a tool reports to people (its ``message``), then a non-zero exit."""

    kind = ErrorKind.TOOL

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message, exit_code=exit_code)


def fail(tool: str, err: ToolError) -> int:
    """Print ``tool: message`` on stderr and return the exit code to use."""
    print(f"{tool}: {err.message}", file=sys.stderr)
    return err.exit_code


def read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror or e}") from e


def read_source(name: str) -> bytes:
    """Read an input as the C tools' ``fopen`` + ``fgetc`` do: a directory reads as empty."""
    try:
        return Path(name).read_bytes()
    except IsADirectoryError:
        return b""  # fopen() opens a directory and the first read ends it
    except OSError as e:
        raise ToolError(f"The file: {name} can not be opened!\n") from e


def option_argument(tool: str, argv: list[str], i: int) -> str:
    """The value after option ``argv[i]`` (the originals crash when it is missing)."""
    if i + 1 >= len(argv):
        raise ToolError(f"{tool}: option {argv[i]} needs an argument\n")
    return argv[i + 1]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_output(path: str, data: bytes, *, create_mode: int, force_mode: int | None = None
                 ) -> None:
    """Write ``data`` to ``path`` as the original tools' ``open(O_CREAT|O_TRUNC)`` would,
    but atomically: a temp file in the same directory, then ``os.replace``.

    The file keeps its old mode when it existed (``O_TRUNC`` keeps it), else gets
    ``create_mode`` minus the umask; ``force_mode`` is a later ``chmod``. Devices and FIFOs
    (``/dev/null``, ``/dev/stdout``) are written in place.
    """
    target = os.path.realpath(path)
    try:
        try:
            st: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            with open(target, "wb") as f:
                f.write(data)
            return
        mode = stat.S_IMODE(st.st_mode) if st is not None else create_mode & ~_umask()
        if force_mode is not None:
            mode = force_mode
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".rootseed-tool.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise ToolError(f"cannot write {path}: {e.strerror or e}") from e


def file_to_file_main(tool: str, transform: Callable[[bytes], bytes], argv: list[str], *,
                      create_mode: int, force_mode: int | None = None) -> int:
    """``TOOL INPUT OUTPUT``: read, transform, write atomically; errors as ``tool: message``."""
    if len(argv) != 2:
        print(f"usage: {tool} INPUT OUTPUT", file=sys.stderr)
        return 2
    try:
        write_output(argv[1], transform(read_input(argv[0])), create_mode=create_mode,
                     force_mode=force_mode)
    except ToolError as e:
        return fail(tool, e)
    return 0
