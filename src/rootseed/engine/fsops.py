"""File operations on a stage's root filesystem, never escaping it (COPY/ADD/WORKDIR).

Paths inside a root are resolved the way the container would see them: ``..`` stops at the
root and symlinks (absolute ones relative to the root) are followed inside it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox.rootpath import resolve, split

_MAGIC = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


def clean(path: str) -> str:
    """Lexically clean an absolute path; ``..`` stops at ``/``."""
    parts: list[str] = []
    for part in split(path):
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def makedirs(root: Path, path: str) -> Path:
    """``mkdir -p`` inside ``root`` (new directories 0755); the host path of the result.

    Symlinks on the way are followed inside ``root`` (as the container sees them); when a
    link's target has missing parents, those are created too, inside ``root``."""
    host = root
    parts = split(clean(path))
    for i in range(len(parts)):
        host = resolve(root, "/".join(parts[: i + 1]))
        _mkdir_resolved(root, host, f"/{'/'.join(parts[: i + 1])} (needed for {path})")
    return host


def _mkdir_resolved(root: Path, host: Path, what: str) -> None:
    """Create ``host`` (a path :func:`resolve` returned: no symlink in it) and any missing
    parents, each checked with lstat so no link is ever followed."""
    current = root
    for part in host.relative_to(root).parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            current.mkdir(mode=0o755)
            os.chmod(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            inside = "/" + current.relative_to(root).as_posix()
            raise RootseedError(f"{inside} exists in the image and is not a directory: "
                                f"cannot create {what}")


def copy_tree(src: Path, dest: Path) -> None:
    """Copy a whole root filesystem exactly (modes, symlinks, hardlinks): ``cp -a``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["cp", "-a", "--", str(src), str(dest)], capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        raise RootseedError(f"cannot copy {src} to {dest}: {result.stderr.strip()}")


def remove_tree(path: Path) -> None:
    """Remove a directory tree, even with read-only directories inside."""
    if not path.exists() and not path.is_symlink():
        return

    def fix(func: object, p: str, _exc: object) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o700)
            if os.path.isdir(p) and not os.path.islink(p):
                os.chmod(p, 0o700)
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=fix)


def expand_sources(root: Path, pattern: str) -> list[tuple[str, Path]]:
    """(name, host path) of the sources matching ``pattern`` (Go-style wildcards) in
    ``root``, sorted; symlinks among them are followed (inside ``root``), as Docker does."""
    parts = split(clean(pattern))
    if not any(ch in pattern for ch in "*?["):
        path = resolve(root, "/".join(parts))
        return [(parts[-1] if parts else "", path)] if path.exists() else []
    matches: list[list[str]] = [[]]
    for part in parts:
        nxt: list[list[str]] = []
        for base in matches:
            real = resolve(root, "/".join(base))
            if any(ch in part for ch in "*?["):
                if real.is_dir():
                    nxt += [[*base, n] for n in sorted(os.listdir(real))
                            if fnmatch.fnmatchcase(n, part)]
            else:
                nxt.append([*base, part])
        matches = nxt
    found = [(m[-1], resolve(root, "/".join(m))) for m in matches if m]
    return [(name, path) for name, path in found if path.exists()]


def _chmod(path: Path, mode: int | None) -> None:
    if mode is not None and not path.is_symlink():
        os.chmod(path, mode)


class LinkMap:
    """Hardlinks within one copied set: source inode → the first copy made of it.

    BuildKit's copier (tonistiigi/fsutil ``copy/copy.go``, ``getLinkSource``) keeps one
    such map per copied source: a regular file with more than one link whose inode was
    already copied becomes a hardlink to that copy, so links *within* what a COPY copies
    survive and nothing links back to the source.
    """

    def __init__(self) -> None:
        # source inode → (path of its first copy, that copy's own (dev, inode))
        self._first: dict[tuple[int, int], tuple[Path, tuple[int, int]]] = {}

    def link(self, src_stat: os.stat_result, dest: Path) -> bool:
        """Hardlink ``dest`` to the earlier copy of the same source inode, if that copy is
        still what its path names (True); False: the caller copies the file.

        The copy's path is checked by inode, not trusted: a later entry of the same COPY
        may have replaced one of its directories by a symlink (to ``/etc``, say), and
        ``link()`` follows symlinks in the directories of its source path, so the path
        alone could name a *host* file."""
        if src_stat.st_nlink < 2:
            return False
        found = self._first.get((src_stat.st_dev, src_stat.st_ino))
        if found is None:
            return False
        first, identity = found
        try:
            st = os.lstat(first)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != identity:
            return False
        os.link(first, dest, follow_symlinks=False)
        return True

    def remember(self, src_stat: os.stat_result, dest: Path) -> None:
        """``dest`` (just written, a regular file) is the copy of ``src_stat``'s inode."""
        if src_stat.st_nlink < 2:
            return
        key = (src_stat.st_dev, src_stat.st_ino)
        if key in self._first:
            first, identity = self._first[key]
            try:
                st = os.lstat(first)
                if (st.st_dev, st.st_ino) == identity:
                    return  # the first copy is still in place: keep linking to it
            except OSError:
                pass
        st = os.lstat(dest)
        self._first[key] = (dest, (st.st_dev, st.st_ino))


def copy_entry(src: Path, dest: Path, mode: int | None, links: LinkMap | None = None) -> None:
    """Copy one file/symlink/directory's contents to ``dest`` (host paths); with
    ``links``, hardlinks among the files copied with the same map are kept."""
    if src.is_symlink():
        if dest.is_symlink() or dest.exists():
            if dest.is_dir() and not dest.is_symlink():
                remove_tree(dest)
            else:
                dest.unlink()
        os.symlink(os.readlink(src), dest)
        return
    if src.is_dir():
        if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
            dest.unlink()
        if not dest.exists():
            dest.mkdir()
        st = src.stat()
        os.chmod(dest, stat.S_IMODE(st.st_mode) if mode is None else mode)
        for name in sorted(os.listdir(src)):
            copy_entry(src / name, dest / name, mode, links)
        return
    st = os.lstat(src)
    if not stat.S_ISREG(st.st_mode):
        raise SpecialFileError(
            f"cannot copy {src.name}: it is {_special_kind(st.st_mode) or 'not a regular file'}"
            ", not a regular file, directory or symlink",
            hint="rootseed never creates special files from what it copies")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()
    elif dest.is_dir():
        remove_tree(dest)
    src_stat = src.stat()
    if links is not None and links.link(src_stat, dest):
        return
    shutil.copyfile(src, dest, follow_symlinks=False)
    os.chmod(dest, stat.S_IMODE(src_stat.st_mode) if mode is None else mode)
    if links is not None:
        links.remember(src_stat, dest)


def is_archive(path: Path) -> bool:
    """True if ``path`` is a tar archive (plain, gzip, bzip2 or xz), as ADD recognizes."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        head = f.read(6)
    compressed = any(head.startswith(magic) for magic, _ in _MAGIC)
    try:
        with tarfile.open(path, "r:*") as tar:
            return tar.next() is not None or compressed
    except (tarfile.TarError, OSError, EOFError):
        return False


class SpecialFileError(RootseedError):
    """A FIFO, socket or device node where rootseed only takes files, dirs and symlinks."""

    kind = ErrorKind.REFUSED


def _special_kind(mode: int) -> str | None:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return None


def _refuse_special(path: Path, mode: int) -> None:
    kind = _special_kind(mode) or "not a regular file"
    raise SpecialFileError(
        f"{path} is {kind}: a build context may hold only regular files, directories and "
        "symlinks", hint="remove it from the package directory (rootseed never reads or "
                         "copies special files: reading a FIFO would block forever)")


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file (symlink: of its target text), sorted.

    A FIFO, socket or device node anywhere in the tree is refused (SpecialFileError):
    files are opened with O_NONBLOCK | O_NOFOLLOW and checked with fstat, so nothing can
    make this block or read through a link."""
    hashes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(
                os.path.join(dirpath, d))]):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                hashes[rel] = hashlib.sha256(b"symlink:" + os.readlink(path).encode()).hexdigest()
                continue
            if not stat.S_ISREG(st.st_mode):
                _refuse_special(path, st.st_mode)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    _refuse_special(path, os.fstat(fd).st_mode)
                h = hashlib.sha256()
                while chunk := f.read(1 << 20):
                    h.update(chunk)
                hashes[rel] = h.hexdigest()
    return dict(sorted(hashes.items()))


def mode_bits(root: Path, rel: str) -> int:
    path = root / rel
    return 0 if path.is_symlink() else stat.S_IMODE(path.stat().st_mode) & 0o111
