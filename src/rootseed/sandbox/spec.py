"""What one sandboxed command is: a frozen description, no behaviour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rootseed.sandbox.limits import StepLimits

#: The hostname every sandbox reports (Docker would show a random container id).
DEFAULT_HOSTNAME = "rootseed"


@dataclass(frozen=True)
class SandboxSpec:
    """One command to run in ``rootfs`` (bound read-write at ``/``).

    ``env`` is the *whole* environment the command sees (nothing is inherited from the
    host). ``ro_binds`` are extra ``(host path, path inside)`` read-only bind mounts.
    ``runner`` is an optional emulator prefix (e.g. ``("/usr/bin/qemu-i386-static",)``):
    its first element is a host path, bound read-only at the same path inside.
    ``timeout`` is a wall-clock limit in seconds: past it the whole sandbox is killed and
    :func:`rootseed.sandbox.run` raises :class:`rootseed.sandbox.timeout.StepTimeoutError`.
    ``entered``: the root filesystem lives in another mount namespace (see
    :class:`EnteredRoot`); ``rootfs`` is then the same tree as rootseed sees it (for its
    checks).
    """

    rootfs: Path
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: str = "/"
    hostname: str = DEFAULT_HOSTNAME
    ro_binds: Sequence[tuple[Path, str]] = ()
    umask: int = 0o022
    runner: Sequence[str] = ()
    #: Wall-clock limit in seconds (None: none); the step is killed when it is exceeded.
    timeout: float | None = None
    #: Files made from bytes, ``(content, path inside, mode)``: read-only, with no host
    #: path behind them (bwrap's --ro-bind-data), e.g. a heredoc script.
    data_files: Sequence[tuple[bytes, str, int]] = ()
    entered: EnteredRoot | None = None
    #: Processes, memory, /tmp, log and disk limits (None: the run's, see
    #: :func:`rootseed.sandbox.limits.current`).
    limits: StepLimits | None = None
    #: Where only this step's writes land (an overlay's upper directory), measured against
    #: the disk limit while the step runs; None where writes cannot be told apart.
    upper: Path | None = None


@dataclass(frozen=True)
class EnteredRoot:
    """A root filesystem mounted in a mount namespace of its own (whoever made it: the
    sandbox does not care how): ``enter`` is the argv prefix that starts bwrap in that
    namespace, ``path`` the root filesystem's path there."""

    enter: tuple[str, ...]
    path: Path
