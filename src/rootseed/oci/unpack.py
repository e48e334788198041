"""Unpack an OCI image layout into a directory, exactly and safely.

Modes (setuid, setgid, sticky included), symlinks, hardlinks and mtimes are
reproduced; ownership too when running as root. FIFOs, sockets and device nodes are
refused (:mod:`rootseed.oci.entries`: no image rootseed makes holds them). Member paths
that are absolute, contain ``..`` or lead through a symlink are refused, so a layer can
never write outside ``dest``.
Several layers are applied in order with OCI whiteouts (``.wh.<name>`` removes a lower
entry, ``.wh..wh..opq`` empties a lower directory); a whiteout must name an entry of its
own directory (never ``.``, ``..`` or nothing), and other ``.wh..wh.*`` names are refused.
Every layer is checked against its
blob digest and ``diff_id`` while it streams. The result appears atomically: unpacked in a
temporary directory beside ``dest`` and renamed into place.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from rootseed.errors import ErrorKind, RootseedError
from rootseed.oci.layout import Image
from rootseed.oci.verified import open_image


class UnpackError(RootseedError):
    """An image layer that cannot be unpacked safely (a hostile member, a wrong blob);
    ``member`` names the layer member when one is at fault (also in ``--json``)."""

    kind = ErrorKind.REFUSED

    def __init__(self, message: str, *, hint: str | None = None,
                 member: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.member = member

    def as_json(self) -> dict[str, Any]:
        extra = {} if self.member is None else {"member": self.member}
        return {**super().as_json(), **extra}


WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class HashingReader:
    """A read-only file object that hashes what is read through it."""

    def __init__(self, inner: BinaryIO | gzip.GzipFile) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.hash.update(data)
        return data

    def seek(self, n: int, /) -> int:
        raise OSError("a layer stream cannot seek")

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return f"sha256:{self.hash.hexdigest()}"


def member_path(name: str) -> str:
    """A tar member name as a safe relative path ('' for the root itself)."""
    if name.startswith("/"):
        raise UnpackError(f"layer member {name!r} has an absolute path")
    if "\0" in name:  # a PAX record can hold one; the OS cannot
        raise UnpackError(f"layer member {name!r} has a NUL byte in its name",
                          hint="the image layer is malformed or hostile")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"layer member {name!r} contains '..'")
    return "/".join(parts)


@dataclass
class _State:
    root: Path
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    # Directory metadata applied once everything is written (a 0555 dir must stay writable
    # until then): relative path → (mode, mtime).
    dirs: dict[str, tuple[int, int]] = field(default_factory=dict)

    def host(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def parent(self, rel: str) -> None:
        """Make sure every parent of ``rel`` is a real directory inside the root."""
        parts = rel.split("/")[:-1]
        for i in range(len(parts)):
            sub = "/".join(parts[: i + 1])
            host = self.root / sub
            try:
                st = os.lstat(host)
            except FileNotFoundError:
                os.mkdir(host, 0o700)
                self.dirs.setdefault(sub, (0o755, 0))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise UnpackError(f"layer member {rel!r} leads through /{sub}, "
                                  "which is not a directory (a symlink?)",
                                  hint="the image layer is malformed or hostile")

    def clear(self, rel: str, keep_dir: bool) -> None:
        """Remove what is at ``rel`` (a lower layer's entry), unless it is a dir to keep."""
        host = self.host(rel)
        try:
            st = os.lstat(host)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(host)
            for d in [d for d in self.dirs if d == rel or d.startswith(rel + "/")]:
                del self.dirs[d]
        else:
            os.unlink(host)


def _finish_entry(state: _State, host: Path, info: tarfile.TarInfo) -> None:
    if state.as_root:
        os.lchown(host, info.uid, info.gid)
    if not info.issym():
        os.chmod(host, info.mode)
    os.utime(host, (info.mtime, info.mtime), follow_symlinks=False)


def _whiteout(state: _State, rel: str, current: set[str]) -> None:
    directory, _, base = rel.rpartition("/")
    state.parent(rel)
    if base == OPAQUE:
        host = state.host(directory)
        if host.is_dir():
            for child in os.listdir(host):
                child_rel = f"{directory}/{child}" if directory else child
                if child_rel not in current:
                    state.clear(child_rel, keep_dir=False)
    else:
        target = base[len(WHITEOUT):]
        if target in ("", ".", "..") or target.startswith(WHITEOUT):
            raise UnpackError(f"layer member {rel!r} is a whiteout that names no entry of "
                              f"/{directory} ({target!r})",
                              hint="the image layer is malformed or hostile", member=rel)
        state.clear(f"{directory}/{target}" if directory else target, keep_dir=False)


def _extract(state: _State, tar: tarfile.TarFile) -> None:
    current: set[str] = set()
    for info in tar:
        rel = member_path(info.name)
        if rel.rpartition("/")[2].startswith(WHITEOUT):
            _whiteout(state, rel, current)
            continue
        current.add(rel)
        if rel == "":
            if info.isdir():
                state.dirs[""] = (info.mode, int(info.mtime))
            continue
        state.parent(rel)
        host = state.host(rel)
        state.clear(rel, keep_dir=info.isdir())
        if info.isdir():
            if not host.exists():
                os.mkdir(host, 0o700)
            if state.as_root:
                os.lchown(host, info.uid, info.gid)
            state.dirs[rel] = (info.mode, int(info.mtime))
        elif info.isreg():
            src = tar.extractfile(info)
            assert src is not None
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            _finish_entry(state, host, info)
        elif info.issym():
            if "\0" in info.linkname:
                raise UnpackError(f"layer symlink {rel!r} has a NUL byte in its target",
                                  hint="the image layer is malformed or hostile")
            os.symlink(info.linkname, host)
            _finish_entry(state, host, info)
        elif info.islnk():
            target = member_path(info.linkname)
            state.parent(target)
            target_host = state.host(target)
            if not target or not os.path.lexists(target_host) or target_host.is_dir():
                raise UnpackError(f"layer hardlink {rel!r} points to {info.linkname!r}, "
                                  "which is not an earlier file of the image")
            os.link(target_host, host, follow_symlinks=False)
        elif info.isfifo():
            raise UnpackError(f"layer member {rel!r} is a FIFO; rootseed does not unpack "
                              "those (no image it makes holds one)",
                              hint="the image layer is malformed or hostile", member=rel)
        else:
            raise UnpackError(f"layer member {rel!r} is a device node or of unknown type "
                              f"{info.type!r}; rootseed does not unpack those")


def _apply_layer(state: _State, blob: Path, media_type: str, digest: str,
                 diff_id: str | None) -> None:
    with open(blob, "rb") as raw:
        compressed = HashingReader(raw)
        if media_type.endswith("gzip"):
            stream: HashingReader = HashingReader(gzip.GzipFile(fileobj=compressed, mode="rb"))
        elif media_type.endswith(".tar"):
            stream = compressed
        else:
            raise UnpackError(f"unsupported layer media type {media_type!r} ({blob})",
                              hint="rootseed reads tar and tar+gzip layers")
        try:
            with tarfile.open(fileobj=stream, mode="r|",  # type: ignore[call-overload]
                              encoding="utf-8", errors="surrogateescape") as tar:
                _extract(state, tar)
            stream.drain()
            compressed.drain()
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise UnpackError(f"layer blob {blob} ({digest}) is not a readable "
                              f"{media_type}: {e}",
                              hint="the layout is corrupt; rebuild or re-fetch the image"
                              ) from e
    if compressed.digest != digest:
        raise UnpackError(f"layer blob {blob} does not match its digest {digest}",
                          hint="the layout is corrupt; rebuild or re-fetch the image")
    if diff_id is not None and stream.digest != diff_id:
        raise UnpackError(f"layer {digest} does not match its diff_id {diff_id}",
                          hint="the layout is corrupt; rebuild or re-fetch the image")


def _apply_dirs(state: _State) -> None:
    # Deepest first, so setting a parent's mtime is not undone by its children.
    for rel in sorted(state.dirs, key=lambda r: r.count("/"), reverse=True):
        mode, mtime = state.dirs[rel]
        host = state.host(rel)
        os.chmod(host, mode)
        os.utime(host, (mtime, mtime), follow_symlinks=False)


def unpack_image(layout_dir: Path, dest: Path) -> Image:
    """Unpack the image of ``layout_dir`` into ``dest`` (absent or an empty directory).

    Every blob is verified (:func:`rootseed.oci.verified.open_image`) before anything is
    unpacked; each layer is hashed again while it streams (blob digest and ``diff_id``).
    """
    verified = open_image(Path(layout_dir))
    image = Image(
        manifest_digest=verified.manifest_digest, manifest=verified.manifest,
        config=verified.config, layer_blob_paths=tuple(b.path for b in verified.layers),
        config_json=verified.config_json, ref_name=verified.ref_name)
    dest = Path(dest)
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise UnpackError(f"cannot unpack into {dest}: it exists and is not an empty "
                          "directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        state = _State(root=tmp)
        state.dirs[""] = (0o755, 0)
        diff_ids = verified.diff_ids
        for i, blob in enumerate(verified.layers):
            _apply_layer(state, blob.path, blob.media_type, blob.digest,
                         diff_ids[i] if diff_ids else None)
        _apply_dirs(state)
        if dest.exists():
            dest.rmdir()
        os.replace(tmp, dest)
    except BaseException:
        _make_removable(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return image


def _make_removable(root: Path) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            if not os.path.islink(p):
                os.chmod(p, 0o700)
