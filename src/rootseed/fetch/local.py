"""Read a local source file (a ``file:`` mirror or a ``--mirror DIR`` entry) safely.

The path comes from a package.toml, which is hostile: it may name ``/proc/kcore`` (a
"regular" file of 128 TiB), ``/proc/kmsg`` (a read that blocks, and consumes the kernel
log), a FIFO (an ``open`` that blocks), ``/dev/zero`` (endless), a directory, or a symlink
to any of these. So a local source is copied only when it is a regular file, and never
more bytes than its size says:

* the path is resolved (symlinks followed) and must name a regular file (``stat``) before
  it is opened, so no device, FIFO or socket is ever opened (opening some devices has side
  effects);
* it is opened with ``O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`` and ``fstat`` must show the
  same regular file (a swap between the two is refused), and reads never block;
* at most ``st_size`` bytes are read, and a size above ``limit`` is refused before any read.
  A pseudo-file that claims 0 bytes (procfs) yields 0 bytes, which cannot match a pin of
  real content; a file that claims 128 TiB is refused outright.

Written here rather than with ``shutil.copyfile`` because that follows the path blindly
and reads to EOF.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from rootseed import safefs
from rootseed.fsutil import CHUNK

__all__ = ["LocalUnavailable", "copy_local", "describe_mode"]


class LocalUnavailable(Exception):
    """A local file that cannot (or may not) be read as a source; the text says why."""


def describe_mode(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink"))
    return next((text for test, text in kinds if test(mode)), "not a regular file")


def _reason(e: OSError | ValueError) -> str:
    if isinstance(e, ValueError):  # an embedded NUL
        return "not a usable path"
    if e.errno == errno.ENOENT:
        return "no such file"
    return f"cannot read it: {e.strerror or e}"


def copy_local(path: Path, dest: Path, limit: int) -> None:
    """Copy the regular file at ``path`` (at most ``limit`` bytes) to ``dest``, or raise
    :class:`LocalUnavailable` without having opened anything that is not a regular file."""
    try:
        real = os.path.realpath(path)
        before = os.stat(real)
    except (OSError, ValueError) as e:
        raise LocalUnavailable(_reason(e)) from None
    if not stat.S_ISREG(before.st_mode):
        raise LocalUnavailable(f"not a regular file ({describe_mode(before.st_mode)})")
    if before.st_size > limit:
        raise LocalUnavailable(f"larger ({before.st_size} bytes) than the {limit} bytes a "
                               "source may have")
    try:  # the one safe open (no link, no blocking, a regular file): rootseed.safefs
        fd, _ = safefs.open_regular(Path(real).parent, Path(real))
    except safefs.UnsafePath as e:
        raise LocalUnavailable(f"{e.problem.value}") from None
    except OSError as e:
        raise LocalUnavailable(_reason(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (before.st_dev,
                                                                       before.st_ino):
            raise LocalUnavailable("changed while it was opened (not the regular file that "
                                   "was checked)")
        remaining = min(st.st_size, limit)
        with dest.open("wb") as w:
            while remaining > 0:
                try:
                    chunk = os.read(fd, min(CHUNK, remaining))
                except BlockingIOError:
                    raise LocalUnavailable("reading it would block (not a plain file)"
                                           ) from None
                except OSError as e:
                    raise LocalUnavailable(_reason(e)) from None
                if not chunk:
                    break  # shorter than it said: the sha256 decides
                w.write(chunk)
                remaining -= len(chunk)
    finally:
        os.close(fd)
