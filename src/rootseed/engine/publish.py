"""The publisher: a built stage becomes ``<out>/<image>/`` (OCI layout + provenance).

It checks ``[outputs]`` before anything is written, copies exactly the image's files
from the cache and writes its ``provenance.json`` into a temporary directory, reads both
back through the verifying reader (every blob re-hashed, the manifest digest and the
provenance subject compared with what was built) and only then gives the directory its
name, one publisher per ``out/`` at a time (:func:`out_lock`). A layout already in
``out/`` with the same digest is kept (vouched for by its seal, see
:mod:`rootseed.engine.seal`) unless it has links where its directories belong or holds
more than its image; a changed one is reported and written again. An entry of ``out/``
that is not an image layout is never replaced.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rootseed import safefs
from rootseed.engine.cache import BuildCache, CachedStage
from rootseed.engine.errors import PublishError
from rootseed.engine.fsops import remove_tree
from rootseed.engine.record import BuildRecord
from rootseed.engine.statements import Statements
from rootseed.engine.verify import layout_problem, seal_layout
from rootseed.errors import ErrorKind, RootseedError
from rootseed.fsutil import atomic_write, private_dir
from rootseed.oci.verified import (
    MAX_JSON,
    LayoutError,
    check_digest,
    indexed_digest,
    open_image,
)
from rootseed.provenance.companions import is_companion
from rootseed.provenance.statement import PROVENANCE_FILE
from rootseed.sandbox.rootpath import resolve
from rootseed.tree import Package


def check_outputs(package: Package, final: CachedStage, out: Path) -> None:
    """``[outputs]`` of ``package`` against the tree its image was written from."""
    if not package.outputs:
        return
    problems: list[str] = []
    for path, (sha, size) in sorted(package.outputs.items()):
        host = resolve(final.rootfs, path)
        if not host.is_file():
            problems.append(f"  {path}: missing from the image (expected sha256 {sha}, "
                            f"{size} bytes)")
            continue
        with host.open("rb") as f:  # streamed: a pinned output may be large
            actual = hashlib.file_digest(f, "sha256").hexdigest()
            actual_size = os.fstat(f.fileno()).st_size
        if actual != sha or actual_size != size:
            problems.append(f"  {path}: expected sha256 {sha} ({size} bytes), "
                            f"got sha256 {actual} ({actual_size} bytes)")
    if problems:
        raise RootseedError(
            f"{package.name}: {len(problems)} declared output(s) do not match the built "
            f"image {final.manifest_digest} (nothing was written to {out}):\n"
            + "\n".join(problems),
            hint="the build is not what package.toml [outputs] pins: find the cause "
                 "before updating the pins", kind=ErrorKind.DIGEST_MISMATCH,
            package=package.name)


@contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """One publisher at a time in ``out``, whatever process or cache it belongs to (a
    lock in the cache would not keep two builds with caches of their own apart): an
    ``flock`` of the directory itself, so nothing is left behind in out/. Each call
    opens its own descriptor, so threads of one process exclude each other too."""
    try:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise PublishError(f"cannot open the output directory {out}: {e.strerror or e}") \
            from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:  # a file system without locks (some network ones)
            raise PublishError(f"cannot lock the output directory {out}: "
                               f"{e.strerror or e}",
                               hint="use an output directory on a local file system") \
                from None
        yield
    finally:
        os.close(fd)  # releases the lock


#: The temporary names the publisher gives a layout in out/ before (and after) its rename.
_TEMP = re.compile(r"\..+\.[0-9a-f]{12}\.(partial|old)")


def _sweep(out: Path) -> None:
    """Remove what a killed publisher left in ``out`` (its temporary copies). Called
    with :func:`out_lock` held: no other publisher is writing there now. A link among
    them is removed as a link (what it leads to is never touched)."""
    for entry in out.iterdir():
        if _TEMP.fullmatch(entry.name):
            remove_tree(entry)


#: What an entry of out/ written by rootseed holds (a layout, or its provenance).
_OURS = ("oci-layout", "index.json", "provenance.json")


def _refuse_foreign(image: Path) -> None:
    """An entry of out/ that is no image layout (a file, a directory of someone's data)
    is never removed to make room: out/ may be a directory the user also keeps other
    things in. (A symlink is replaced as a link; what it points to is never touched.)"""
    try:
        st = os.lstat(image)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        names = {p.name for p in image.iterdir()}
        if not names or names & set(_OURS):
            return
    raise PublishError(f"{image} exists and is not an image layout (no {', '.join(_OURS)}): "
                       "rootseed will not replace it",
                       hint="move it away, or pass another --out")


def _real_dirs(*paths: Path) -> bool:
    """Each of ``paths`` is a directory itself, not a symlink to one."""
    try:
        return all(stat.S_ISDIR(os.lstat(p).st_mode) for p in paths)
    except OSError:
        return False


def _open_regular(root: Path, path: Path) -> int:
    """A descriptor of ``path`` below ``root`` if it is a regular file (no link followed
    on the way, no FIFO waited on: :mod:`rootseed.safefs`); OSError otherwise."""
    try:
        return safefs.open_regular(root, path)[0]
    except safefs.UnsafePath as e:
        raise OSError(errno.EINVAL, e.message, str(path)) from None


def layout_files(layout: Path, digest: str) -> list[str]:
    """The files of ``digest``'s image in ``layout``, relative: ``oci-layout``,
    ``index.json`` and the blobs its manifest names. The manifest is read without being
    verified (what is copied is verified after the copy), but every name is checked to
    be a digest, so no other path can be named."""
    fd = _open_regular(layout,
                       layout / "blobs" / "sha256" / check_digest(digest).partition(":")[2])
    with os.fdopen(fd, "rb") as f:
        manifest = json.loads(f.read(MAX_JSON))
    named = [digest, manifest["config"]["digest"], *(d["digest"] for d in manifest["layers"])]
    with os.fdopen(_open_regular(layout, layout / "index.json"), "rb") as f:  # an index
        named.append(json.loads(f.read(MAX_JSON))["manifests"][0]["digest"])  # (BuildKit's)
    return ["oci-layout", "index.json",
            *dict.fromkeys(f"blobs/sha256/{check_digest(d).partition(':')[2]}" for d in named)]


def _copy_files(src: Path, dest: Path, files: list[str]) -> None:
    """Copy ``files`` (regular files, see :func:`layout_files`) of ``src`` into the new
    directory ``dest``, each with its permission bits (never setuid/setgid)."""
    (dest / "blobs" / "sha256").mkdir(parents=True)
    for d in (dest, dest / "blobs", dest / "blobs" / "sha256"):
        os.chmod(d, 0o755)
    for rel in files:
        with os.fdopen(_open_regular(src, src / rel), "rb") as fin:
            mode = stat.S_IMODE(os.fstat(fin.fileno()).st_mode) & 0o777
            with open(dest / rel, "xb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        os.chmod(dest / rel, mode)


def linked_dirs(layout: Path) -> str | None:
    """What is wrong when ``layout``'s directories are not its own (None: they are).
    The verifying reader opens blob files without following links, but the directories
    above them are followed: a ``blobs`` linked elsewhere verifies and can change later."""
    if _real_dirs(layout, layout / "blobs", layout / "blobs" / "sha256"):
        return None
    return "blobs/ or blobs/sha256/ is not a directory of the layout itself (a link?)"


class Publisher:
    """Writes images to ``out`` (a private directory, see fsutil.private_dir)."""

    def __init__(self, out: Path, cache: BuildCache, warn: Callable[[str], None]):
        self.out = out
        self.cache = cache
        self.seals = cache.dir / "seals"
        self.warn = warn
        self.statements = Statements(cache.dir, cache.verifier.records)

    def publish(self, name: str, final: CachedStage, record: BuildRecord) -> Path:
        """Write ``final``'s image and ``record`` as ``<out>/<name>/``, atomically and
        verified; returns the layout's path."""
        if final.layout is None or final.manifest_digest is None:
            raise PublishError(f"{name}: the stage has no image to publish")
        digest = final.manifest_digest
        if record.manifest_digest != digest:
            raise PublishError(f"{name}: the provenance names {record.manifest_digest}, "
                               f"the image is {digest}")
        statement = self.statements.validated(record)  # deterministic bytes
        private_dir(self.out, "output directory")
        image = self.out / name
        with out_lock(self.out):
            _sweep(self.out)
            _refuse_foreign(image)
            if self._same_output(image, digest):
                if not self.statements.holds(image, statement):  # else: exactly these bytes
                    try:
                        atomic_write(image / PROVENANCE_FILE, statement)
                    except OSError as e:
                        raise PublishError(f"{name}: cannot write {image / PROVENANCE_FILE}: "
                                           f"{e.strerror or e}",
                                           hint="free some space, or check the output "
                                                "directory") from None
                    self.statements.read_back(image, name, digest, statement)
            else:
                self._write(final.layout, image, name, digest, statement)
                seal_layout(image, self.seals)
        return image

    def _write(self, layout: Path, image: Path, name: str, digest: str,
               statement: bytes) -> None:
        """Copy exactly the image's files from the cache (anything else in the cached
        layout, a link to the host or a FIFO, is never copied), add the provenance, read
        both back, then give the copy its name (the old entry moved aside first)."""
        try:
            files = layout_files(layout, digest)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PublishError(f"{name}: the cached image {layout} cannot be read: {e}",
                               hint="the cache is damaged: run `rootseed cache prune --all` and "
                                    "build again") from None
        tmp = self.out / f".{name}.{secrets.token_hex(6)}.partial"
        try:
            _copy_files(layout, tmp, files)
            atomic_write(tmp / PROVENANCE_FILE, statement)
            self._check_copy(tmp, name, digest, statement)
            if os.path.lexists(image):
                old = self.out / f".{name}.{secrets.token_hex(6)}.old"
                os.replace(image, old)
                os.replace(tmp, image)
                remove_tree(old)
            else:
                os.replace(tmp, image)
        except OSError as e:
            remove_tree(tmp)
            raise PublishError(f"{name}: cannot write the image to {self.out}: "
                               f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""),
                               hint="free some space, or check the output directory") from None
        except BaseException:
            remove_tree(tmp)
            raise

    def _check_copy(self, layout: Path, name: str, digest: str, statement: bytes) -> None:
        """The copy about to take its name reads back as the image that was built."""
        linked = linked_dirs(layout)
        if linked is not None:
            raise PublishError(f"{name}: the image written to {self.out}: {linked}",
                               hint="the cache is damaged: run `rootseed cache prune --all` and "
                                    "build again")
        try:
            found = open_image(layout).manifest_digest
        except LayoutError as e:
            raise PublishError(f"{name}: the image written to {self.out} does not read "
                               f"back: {e.message}", package=name,
                               hint="the disk or the cache is damaged: run `rootseed cache "
                                    "prune` and build again") from e
        if found != digest:
            raise PublishError(f"{name}: the image written to {self.out} reads back as "
                               f"{found}, not the {digest} that was built")
        self.statements.read_back(layout, name, digest, statement)

    def _same_output(self, image: Path, digest: str) -> bool:
        """``image`` in out/ holds exactly ``digest``'s image (a damaged out/ is written
        again, i.e. repaired)."""
        if linked_dirs(image) is not None:
            # a link (to the host) is never written through, nor kept even when what it
            # leads to verifies: it could change after the check; the entry is rewritten
            return False
        try:
            if indexed_digest(image) != digest:  # another image (or none): no warning
                return False
        except LayoutError:
            return False
        # sealed: vouched for without re-hashing; otherwise every blob is verified (a
        # changed one is named, then out/ is repaired)
        problem = layout_problem(image, self.seals)
        if problem is not None:
            self.warn(f"{image}: {problem}; writing it again")
            return False
        try:
            wanted = {*layout_files(image, digest), PROVENANCE_FILE, "blobs", "blobs/sha256"}
        except (OSError, ValueError, KeyError, TypeError):
            return False
        found = {os.path.relpath(os.path.join(top, n), image)
                 for top, dirs, names in os.walk(image) for n in [*dirs, *names]}
        try:
            if not stat.S_ISREG(os.lstat(image / PROVENANCE_FILE).st_mode):
                return False  # a directory, FIFO, link: the whole entry is written again
        except FileNotFoundError:
            pass
        except OSError:
            return False
        # rootseed's own records about this image (crosscheck.json, ...) are kept
        extra = {n for n in found - wanted if not is_companion(image, n)}
        if extra:  # something was put beside the image (a link, a FIFO, ...)
            self.warn(f"{image}: holds more than the image ({', '.join(sorted(extra))})"
                      "; writing it again")
            return False
        return True
