"""ADD of a local tar archive into a stage's root filesystem, never touching the host.

Why this is written here instead of ``tarfile.extractall(filter=...)``: Python's filters
check member *names* but not where a hardlink's target or a path through an earlier
symlink member lands, and ``extractall`` operates on host paths, so a hostile archive can
``link()`` a host file into the rootfs (and a later RUN then writes to it on the host), or
write through a symlink it just created. Here:

* every member name is cleaned lexically (a leading ``/`` is dropped, as Docker does) and
  must stay inside the ADD destination; ``..`` that would leave it is refused;
* parent directories are resolved *inside the root filesystem* the way the container would
  see them (:func:`rootseed.sandbox.rootpath.resolve`: symlinks are read, never followed by
  the kernel, and an absolute target is relative to the root), then opened one component at
  a time with ``O_DIRECTORY | O_NOFOLLOW`` relative to a root directory fd: if anything on
  the way is not a real directory, the operation fails instead of following a link;
* the member itself is created relative to that directory fd, never following a symlink
  (``O_CREAT | O_EXCL | O_NOFOLLOW``, ``symlinkat``, ``linkat`` without
  ``AT_SYMLINK_FOLLOW``); whatever was there (a lower file, a symlink) is removed first,
  except a directory for a directory member (Docker's rule);
* a hardlink's target must name an existing, non-directory entry of the same root
  filesystem, found the same way, so a link can never point at a host file;
* modes, including setuid/setgid, and mtimes are applied through file descriptors; the
  directories' modes last (deepest first), re-opened the same safe way, so a directory that
  a later member replaced by a symlink is skipped, never chmod-ed through the link;
* device nodes and FIFOs are **refused** with a clear error naming the archive and member
  (rootseed never creates special files from its inputs: the same rule as for COPY sources
  and build contexts). Tar cannot hold sockets.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.engine.archive_budget import ArchiveBudget
from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox.rootpath import resolve, split

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ArchiveError(RootseedError):
    """An archive member rootseed refuses to unpack (names the archive and member)."""

    kind = ErrorKind.ARCHIVE


def _clean_member(name: str) -> list[str] | None:
    """Lexically cleaned parts of a member name, relative to the destination, or None if
    it would leave the destination."""
    parts: list[str] = []
    for part in split(name):
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return parts


def _open_dir(root_fd: int, parts: list[str]) -> int:
    """An fd of the directory ``parts`` below ``root_fd``, no symlink followed anywhere."""
    fd = os.dup(root_fd)
    try:
        for part in parts:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


@dataclass
class _Extraction:
    archive: str
    root: Path
    root_fd: int
    dest: list[str]  # the destination inside the root (already resolved, no symlinks)
    dirs: dict[tuple[str, ...], tuple[int, int]] = field(default_factory=dict)
    budget: ArchiveBudget | None = None

    def fail(self, member: str, what: str) -> ArchiveError:
        return ArchiveError(f"ADD {self.archive}: member {member!r} {what}",
                            hint="the archive is malformed or hostile; nothing outside the "
                                 "image was touched")

    def in_root(self, member: str, parts: list[str], *, create: bool = True
                ) -> tuple[list[str], str]:
        """(resolved parent directory inside the root, final name) for a member path
        below the destination; missing parent directories are created (0755)."""
        if not parts:
            raise self.fail(member, "names the destination itself")
        parent = "/" + "/".join([*self.dest, *parts[:-1]])
        try:
            host = resolve(self.root, parent)
        except RootseedError as e:
            raise self.fail(member, f"leads through a symlink loop ({e.message})") from None
        rel = host.relative_to(self.root).parts
        if create:
            self.mkdirs(member, list(rel))
        return list(rel), parts[-1]

    def mkdirs(self, member: str, parts: list[str]) -> None:
        fd = os.dup(self.root_fd)
        try:
            for i, part in enumerate(parts):
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                    os.fchmod(nxt, 0o755)
                except (NotADirectoryError, OSError) as e:
                    raise self.fail(member, f"needs /{'/'.join(parts[:i + 1])} to be a "
                                            f"directory, and it is not ({e.strerror})"
                                    ) from None
                os.close(fd)
                fd = nxt
        finally:
            os.close(fd)

    def clear(self, dir_fd: int, name: str, keep_dir: bool) -> None:
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if not keep_dir:
                shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)

    def extract(self, tar: tarfile.TarFile) -> None:
        # next() one member at a time, forgetting each (TarFile keeps every member it
        # read: hundreds of MB for an archive of many tiny entries)
        while (info := tar.next()) is not None:
            if self.budget is not None:
                self.budget.entry()
            self.member(tar, info)
            tar.members.clear()  # type: ignore[attr-defined]  # (typeshed omits it)
        self.apply_dirs()

    def member(self, tar: tarfile.TarFile, info: tarfile.TarInfo) -> None:
        name = info.name
        if "\0" in name or "\0" in info.linkname:  # a PAX record can hold one; the OS cannot
            raise self.fail(name, "has a NUL byte in its name or link target")
        parts = _clean_member(name)
        if parts is None:
            raise self.fail(name, "leaves the destination ('..')")
        if info.ischr() or info.isblk() or info.isfifo():
            kind = "a FIFO" if info.isfifo() else "a device node"
            raise self.fail(name, f"is {kind}; rootseed does not create special files")
        if not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
            raise self.fail(name, f"has an unsupported type {info.type!r}")
        if not parts:
            if info.isdir():  # "./": the destination's own mode, as Docker applies it
                self.dirs[tuple(self.dest)] = (stat.S_IMODE(info.mode), int(info.mtime))
                return
            raise self.fail(name, "names the destination itself")
        parent, base = self.in_root(name, parts)
        dir_fd = _open_dir(self.root_fd, parent)
        try:
            self.clear(dir_fd, base, keep_dir=info.isdir())
            if info.isdir():
                with contextlib.suppress(FileExistsError):
                    os.mkdir(base, 0o700, dir_fd=dir_fd)
                self.dirs[(*parent, base)] = (stat.S_IMODE(info.mode), int(info.mtime))
            elif info.isreg():
                self.regular(tar, info, dir_fd, base)
            elif info.issym():
                os.symlink(info.linkname, base, dir_fd=dir_fd)  # times: as tarfile, none
            else:
                self.hardlink(info, dir_fd, base)
        finally:
            os.close(dir_fd)

    def regular(self, tar: tarfile.TarFile, info: tarfile.TarInfo, dir_fd: int,
                base: str) -> None:
        src = tar.extractfile(info)
        assert src is not None
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dir_fd)
        with os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):  # a sparse member reads as its full size
                if self.budget is not None:
                    self.budget.write(len(chunk))
                dst.write(chunk)
            dst.flush()
            self.attributes(fd, info)

    def attributes(self, fd: int, info: tarfile.TarInfo) -> None:
        if os.geteuid() == 0:
            os.fchown(fd, 0, 0)  # images are owned by root: uid/gid 0 like the layer writer
        os.fchmod(fd, stat.S_IMODE(info.mode))
        os.utime(fd, (info.mtime, info.mtime))

    def hardlink(self, info: tarfile.TarInfo, dir_fd: int, base: str) -> None:
        target = _clean_member(info.linkname)
        if target is None or not target:
            raise self.fail(info.name, f"is a hardlink to {info.linkname!r}, which is "
                                       "outside the destination")
        t_parent, t_base = self.in_root(info.name, target, create=False)
        try:
            t_fd = _open_dir(self.root_fd, t_parent)
        except OSError:
            raise self.fail(info.name, f"is a hardlink to {info.linkname!r}, which is not an "
                                       "earlier file of the archive or image") from None
        try:
            try:
                st = os.stat(t_base, dir_fd=t_fd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is None or stat.S_ISDIR(st.st_mode):
                raise self.fail(info.name, f"is a hardlink to {info.linkname!r}, which is "
                                           "not an earlier file of the archive or image")
            os.link(t_base, base, src_dir_fd=t_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):  # Docker applies the header's mode and times
                fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                try:
                    self.attributes(fd, info)
                finally:
                    os.close(fd)
        finally:
            os.close(t_fd)

    def apply_dirs(self) -> None:
        # Deepest first, so a parent's mtime is not undone by work on its children; each
        # directory is re-opened without following links (a later member may have replaced
        # it or a parent by a symlink: then it is not ours to change any more).
        for parts in sorted(self.dirs, key=len, reverse=True):
            mode, mtime = self.dirs[parts]
            try:
                fd = _open_dir(self.root_fd, list(parts))
            except OSError:
                continue
            try:
                os.fchmod(fd, mode)
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)


def extract_archive(archive: Path, root: Path, dest: str, *,
                    budget: ArchiveBudget | None = None) -> None:
    """Unpack the local tar archive ``archive`` (plain, gzip, bzip2 or xz) into the
    directory ``dest`` of the root filesystem ``root``, as Docker's ADD does (within
    ``budget``: entries, bytes, time)."""
    try:
        host = resolve(root, dest)
    except RootseedError as e:
        raise ArchiveError(f"ADD {archive.name}: destination {dest}: {e.message}") from None
    root_fd = os.open(root, _DIR_FLAGS)
    try:
        extraction = _Extraction(archive=archive.name, root=root, root_fd=root_fd, dest=[],
                                 budget=budget)
        dest_parts = list(host.relative_to(root).parts)
        extraction.mkdirs(f"(destination {dest})", dest_parts)
        extraction.dest = dest_parts
        with tarfile.open(archive, "r:*") as tar:
            extraction.extract(tar)
    except (tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"ADD {archive.name}: not a readable tar archive: {e}") from e
    except OSError as e:
        raise ArchiveError(f"ADD {archive.name}: cannot unpack: {e}") from e
    finally:
        os.close(root_fd)
