"""Output files that appear whole or not at all.

The original tools open (and truncate) their output when they meet ``-o`` on the command
line and leave a partial file behind when they fail later. Ours reserve a temporary file
beside the target at the same moment (so an unwritable target fails at the same point),
and only :meth:`PendingOutput.commit` puts the finished bytes in place.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from rootseed.tools._util import ToolError


class PendingOutput:
    """A temporary file next to ``target``, renamed onto it by :meth:`commit`."""

    def __init__(self, target: str) -> None:
        self.target = Path(target)
        fd, name = tempfile.mkstemp(dir=self.target.parent, prefix=f".{self.target.name}.")
        self._fd: int | None = fd
        self._temp = Path(name)

    def commit(self, data: bytes, mode: int = 0o666) -> None:
        assert self._fd is not None, "output already committed or discarded"
        fd, self._fd = self._fd, None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(self._temp, mode & ~_umask())
            os.replace(self._temp, self.target)
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._temp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def reserve(target: str) -> PendingOutput | None:
    """A pending output for ``target``, or None when it cannot be created there."""
    if not target or Path(target).is_dir():
        return None
    try:
        return PendingOutput(target)
    except OSError:
        return None


def emit(output: PendingOutput | None, data: bytes, mode: int = 0o666) -> None:
    """Commit ``data`` to ``output``, or write it to stdout when there is no output file."""
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.commit(data, mode)


def discard(outputs: list[PendingOutput]) -> None:
    for output in outputs:
        with contextlib.suppress(OSError):
            output.discard()


def guarded_main(run: Callable[[list[str], list[PendingOutput]], int], argv: list[str]) -> int:
    """Run a tool whose failures are :class:`ToolError`: print the message verbatim, exit 1,
    and discard every output it reserved (nothing half-written is left behind)."""
    outputs: list[PendingOutput] = []
    try:
        return run(argv, outputs)
    except ToolError as e:
        sys.stdout.flush()
        sys.stderr.write(e.message)
        return 1
    finally:
        discard(outputs)
