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

from rootseed.errors import RootseedError
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
    """``mkdir -p`` inside ``root`` (new directories 0755); the host path of the result."""
    host = root
    for i, part in enumerate(split(clean(path))):
        host = resolve(root, "/".join(split(clean(path))[: i + 1]))
        if not host.exists():
            host.mkdir(mode=0o755)
            os.chmod(host, 0o755)
        elif not host.is_dir():
            raise RootseedError(f"/{'/'.join(split(clean(path))[: i + 1])} exists in the image "
                                f"and is not a directory (needed for {part!r} of {path})")
    return host


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
        self._first: dict[tuple[int, int], Path] = {}

    def link_or_remember(self, src_stat: os.stat_result, dest: Path) -> bool:
        """Hardlink ``dest`` to an earlier copy of the same inode (True), or remember
        ``dest`` as that inode's copy (False: the caller copies the file)."""
        if src_stat.st_nlink < 2:
            return False
        key = (src_stat.st_dev, src_stat.st_ino)
        first = self._first.get(key)
        if first is None or not first.is_file() or first.is_symlink():
            self._first[key] = dest
            return False
        os.link(first, dest, follow_symlinks=False)
        return True


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
    if not src.is_file():
        raise RootseedError(f"cannot copy {src.name}: not a regular file, directory or symlink")
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        dest.unlink()
    elif dest.is_dir():
        remove_tree(dest)
    src_stat = src.stat()
    if links is not None and links.link_or_remember(src_stat, dest):
        return
    shutil.copyfile(src, dest, follow_symlinks=False)
    os.chmod(dest, stat.S_IMODE(src_stat.st_mode) if mode is None else mode)


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


def _member_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    if member.ischr() or member.isblk() or member.isfifo():
        return None  # device nodes cannot be represented in rootseed's images
    safe = tarfile.tar_filter(member, dest)  # refuses absolute paths and escapes
    mode = safe.mode if member.issym() or member.islnk() else member.mode
    return safe.replace(mode=mode, uid=0, gid=0, uname="", gname="", deep=False)


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a local tar archive into ``dest`` as Docker's ADD does (modes kept)."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(dest, filter=_member_filter)
    except (tarfile.TarError, OSError) as e:
        raise RootseedError(f"cannot unpack {archive.name}: {e}") from e


def hash_tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file (symlink: of its target text), sorted."""
    hashes: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(
                os.path.join(dirpath, d))]):
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                hashes[rel] = hashlib.sha256(b"symlink:" + os.readlink(path).encode()).hexdigest()
            else:
                h = hashlib.sha256()
                with path.open("rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
                hashes[rel] = h.hexdigest()
    return dict(sorted(hashes.items()))


def mode_bits(root: Path, rel: str) -> int:
    path = root / rel
    return 0 if path.is_symlink() else stat.S_IMODE(path.stat().st_mode) & 0o111
