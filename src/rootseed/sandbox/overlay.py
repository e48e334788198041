"""Copy-on-write root filesystems: overlayfs in a private user + mount namespace.

Debian 12's bubblewrap (0.8) has no overlay option, but the kernel lets any user mount
overlayfs inside a user namespace it owns. :class:`OverlayNamespace` starts one small
holder process (:mod:`rootseed.sandbox._overlay_holder`) under ``unshare --user
--map-root-user --mount``; it mounts and unmounts on request. The mounts live only in its
namespace:

* rootseed's own code reads and writes them through ``/proc/<holder>/root/<path>``
  (:meth:`OverlayNamespace.view`) — COPY, WORKDIR, checks and image writing need no
  privilege;
* a RUN step's bwrap is started inside the namespace with ``nsenter --user --mount
  --preserve-credentials`` (:meth:`OverlayNamespace.enter`) and binds the merged
  directory at ``/`` as usual.

Overlay is mounted with ``userxattr`` (what the kernel requires in a user namespace):
opaque directories carry ``user.overlay.opaque=y``; whiteouts are 0/0 character devices.
Where a kernel refuses all this, :func:`probe` says why and the builder falls back to
copying (see :mod:`rootseed.engine.snapshots`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from rootseed.errors import ErrorKind, RootseedError

_HOLDER = Path(__file__).with_name("_overlay_holder.py")
#: The kernel's limit on lower layers (OVL_MAX_STACK) is 500; stacks are flattened well
#: before it (see :data:`rootseed.engine.snapshots.MAX_LAYERS`).
KERNEL_MAX_LOWER = 500


class OverlayUnavailable(RootseedError):
    """This kernel (or configuration) refuses overlayfs in a user namespace."""

    kind = ErrorKind.SANDBOX


class OverlayError(RootseedError):
    """A mount or unmount request failed."""

    kind = ErrorKind.SANDBOX

    def __init__(self, message: str, *, errno: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errno = errno


class OverlayNamespace:
    """One holder process and its mounts; thread-safe; close() ends them all."""

    def __init__(self) -> None:
        unshare = shutil.which("unshare")
        nsenter = shutil.which("nsenter")
        if unshare is None or nsenter is None:
            raise OverlayUnavailable("unshare/nsenter (util-linux) are not installed",
                                     hint="apt-get install util-linux")
        self._nsenter = nsenter
        self._lock = threading.Lock()
        self._mounts: set[str] = set()
        try:
            self._proc: subprocess.Popen[str] | None = subprocess.Popen(
                [unshare, "--user", "--map-root-user", "--mount", "--propagation", "private",
                 "--", sys.executable, "-I", "-S", str(_HOLDER)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                close_fds=True)
        except OSError as e:
            raise OverlayUnavailable(f"cannot start the overlay namespace: {e}") from e
        self.pid = self._proc.pid

    # -- requests ----------------------------------------------------------------------
    def _request(self, req: dict[str, object]) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.stdout is None:
                raise OverlayError("the overlay namespace is closed")
            try:
                proc.stdin.write(json.dumps(req) + "\n")
                proc.stdin.flush()
                line = proc.stdout.readline()
            except OSError as e:
                line = ""
                reason = str(e)
            else:
                reason = ""
            if not line:
                err = proc.stderr.read() if proc.stderr is not None and proc.poll() else ""
                raise OverlayError(f"the overlay namespace ended: {(err or reason).strip()}")
            answer = json.loads(line)
        if not answer.get("ok"):
            raise OverlayError(f"overlay {req['op']} of {req['target']}: {answer.get('error')}",
                               errno=int(answer.get("errno", 0)))

    def mount(self, target: Path, lower: Sequence[Path], upper: Path | None = None,
              work: Path | None = None) -> None:
        """Mount ``lower`` (top first) [+ a writable ``upper``] at ``target`` (a directory
        that exists); read-only without ``upper``."""
        if not lower:
            raise OverlayError(f"overlay at {target}: no lower layer")
        if len(lower) > KERNEL_MAX_LOWER:
            raise OverlayError(f"overlay at {target}: {len(lower)} lower layers (the kernel "
                               f"takes at most {KERNEL_MAX_LOWER}); flatten the stack first")
        self._request({"op": "mount", "target": str(target),
                       "lower": [str(p) for p in lower],
                       "upper": None if upper is None else str(upper),
                       "work": None if work is None else str(work)})
        with self._lock:
            self._mounts.add(str(target))

    def umount(self, target: Path) -> None:
        self._request({"op": "umount", "target": str(target)})
        with self._lock:
            self._mounts.discard(str(target))

    # -- access ------------------------------------------------------------------------
    def view(self, path: Path) -> Path:
        """``path`` as this namespace sees it (mounts included), from rootseed's side."""
        if not path.is_absolute():
            raise OverlayError(f"not an absolute path: {path}")
        return Path(f"/proc/{self.pid}/root") / path.relative_to("/")

    def enter(self) -> list[str]:
        """The argv prefix that runs a command in this namespace (keeping the caller's
        credentials: no setgroups, which a user namespace forbids)."""
        return [self._nsenter, f"--target={self.pid}", "--user", "--mount",
                "--preserve-credentials", "--"]

    def close(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            self._mounts.clear()
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> OverlayNamespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def probe(scratch: Path) -> OverlayNamespace:
    """A working namespace, after one real overlay mount + write + umount in ``scratch``
    (a directory on the file system the layers live on); :class:`OverlayUnavailable`
    with the kernel's reason otherwise."""
    scratch.mkdir(parents=True, exist_ok=True)
    ns = OverlayNamespace()
    try:
        with tempfile.TemporaryDirectory(prefix="overlay-probe.", dir=scratch) as tmp:
            base = Path(tmp)
            for name in ("lower", "upper", "work", "merged"):
                (base / name).mkdir()
            try:
                ns.mount(base / "merged", [base / "lower"], base / "upper", base / "work")
                (ns.view(base / "merged") / "probe").write_bytes(b"")
                ns.umount(base / "merged")
            except (OverlayError, OSError) as e:
                raise OverlayUnavailable(
                    f"overlayfs in a user namespace is refused here: {e}",
                    hint="rootseed falls back to copying snapshots (slower, no per-step "
                         "resume); allow unprivileged user namespaces and overlayfs to "
                         "get copy-on-write") from e
            if not (base / "upper" / "probe").is_file():
                raise OverlayUnavailable("overlay probe: the upper layer stayed empty")
    except BaseException:
        ns.close()
        raise
    return ns
