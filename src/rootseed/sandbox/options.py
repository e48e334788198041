"""bubblewrap option builders: one function per concern, each returning an argv fragment.

:func:`bwrap_argv` concatenates them in a fixed order. The order matters to bwrap: the
root bind comes first, then the API filesystems, then extra binds (so a bind below
``/tmp`` lands in the tmpfs, not in the root filesystem).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rootseed.errors import RootseedError
from rootseed.sandbox.spec import SandboxSpec

#: Mount points of the API filesystems, as Docker provides them to a RUN step.
API_MOUNTS: tuple[tuple[str, str], ...] = (("--proc", "/proc"), ("--dev", "/dev"),
                                           ("--tmpfs", "/tmp"))


def namespace_options() -> list[str]:
    """Unshare every namespace bwrap knows: user, ipc, pid, net (no network), uts, cgroup.

    (bwrap always creates a new mount namespace.) The cgroup namespace is best effort
    because some kernels lack it; everything else is required.
    """
    return ["--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-net",
            "--unshare-uts", "--unshare-cgroup-try"]


def process_options() -> list[str]:
    """Die with rootseed; run in a new session (no access to a controlling terminal)."""
    return ["--die-with-parent", "--new-session"]


def identity_options(hostname: str, uid: int = 0, gid: int = 0) -> list[str]:
    """uid/gid inside the user namespace (0 by default) and a fixed hostname."""
    if not hostname or "/" in hostname or "\0" in hostname:
        raise RootseedError(f"invalid sandbox hostname {hostname!r}")
    return ["--uid", str(uid), "--gid", str(gid), "--hostname", hostname]


def env_options(env: Mapping[str, str]) -> list[str]:
    """Start from an empty environment and set exactly ``env`` (in sorted order)."""
    argv = ["--clearenv"]
    for key in sorted(env):
        value = env[key]
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise RootseedError(
                f"invalid environment variable for the sandbox: {key!r}={value!r}",
                hint="names must be non-empty without '=' and values without NUL bytes")
        argv += ["--setenv", key, value]
    return argv


def root_options(rootfs: Path | str) -> list[str]:
    """The root filesystem, read-write at ``/``."""
    return ["--bind", str(rootfs), "/"]


def data_options(files: Sequence[tuple[int, str, int]]) -> list[str]:
    """Read-only files whose content bwrap reads from an fd: ``(fd, path inside, mode)``."""
    argv: list[str] = []
    for fd, dest, mode in files:
        if not dest.startswith("/"):
            raise RootseedError(f"sandbox file destination must be absolute: {dest!r}")
        argv += ["--perms", f"{mode:04o}", "--ro-bind-data", str(fd), dest]
    return argv


def api_fs_options(tmp_size: int | None = None) -> list[str]:
    """A fresh ``/proc`` for the pid namespace, bwrap's minimal ``/dev``, a ``/tmp`` tmpfs
    (of at most ``tmp_size`` bytes: bwrap's ``--size`` applies to the next ``--tmpfs``)."""
    argv: list[str] = []
    for option, dest in API_MOUNTS:
        if option == "--tmpfs" and tmp_size is not None:
            argv += ["--size", str(tmp_size)]
        argv += [option, dest]
    return argv


def ro_bind_options(binds: Sequence[tuple[Path, str]]) -> list[str]:
    """Read-only bind mounts of host paths (e.g. the build context, an emulator)."""
    argv: list[str] = []
    for src, dest in binds:
        if not dest.startswith("/"):
            raise RootseedError(f"sandbox bind destination must be absolute: {dest!r}")
        argv += ["--ro-bind", str(src), dest]
    return argv


def cwd_options(cwd: str) -> list[str]:
    """The working directory inside the sandbox."""
    if not cwd.startswith("/"):
        raise RootseedError(f"sandbox working directory must be absolute: {cwd!r}")
    return ["--chdir", cwd]


def command_options(argv: Sequence[str], runner: Sequence[str] = ()) -> list[str]:
    """End of options, then the (optionally emulated) command."""
    if not argv:
        raise RootseedError("empty command for the sandbox")
    return ["--", *runner, *argv]


def runner_binds(runner: Sequence[str]) -> list[tuple[Path, str]]:
    """The emulator binary is a host file, made visible at the same path inside."""
    if not runner:
        return []
    if not runner[0].startswith("/"):
        raise RootseedError(f"the emulator runner must be an absolute host path: {runner[0]!r}")
    return [(Path(runner[0]), runner[0])]


def all_binds(spec: SandboxSpec) -> list[tuple[Path, str]]:
    return [*spec.ro_binds, *runner_binds(spec.runner)]


def bwrap_argv(spec: SandboxSpec, bwrap: str = "bwrap", *, root_source: str | None = None,
               data_fds: Sequence[int] = (), tmp_size: int | None = None) -> list[str]:
    """The complete bwrap command line for ``spec`` (umask is applied by :func:`run`).

    ``root_source`` replaces ``spec.rootfs`` as what is bound at ``/`` (the neutral root's
    mount point); ``data_fds`` are the fds holding ``spec.data_files``, in order;
    ``tmp_size`` bounds the ``/tmp`` tmpfs."""
    if len(data_fds) != len(spec.data_files):
        raise RootseedError("internal: one fd per sandbox data file is needed")
    return [
        *(spec.entered.enter if spec.entered is not None else ()),
        bwrap,
        *namespace_options(),
        *process_options(),
        *identity_options(spec.hostname),
        *env_options(spec.env),
        *root_options(root_source if root_source is not None
                      else str(spec.entered.path if spec.entered is not None
                               else spec.rootfs)),
        *api_fs_options(tmp_size),
        *ro_bind_options(all_binds(spec)),
        *data_options([(fd, dest, mode) for fd, (_, dest, mode)
                       in zip(data_fds, spec.data_files, strict=True)]),
        *cwd_options(spec.cwd),
        *command_options(spec.argv, spec.runner),
    ]
