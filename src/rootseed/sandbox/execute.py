"""Run a :class:`SandboxSpec`: the one place that starts bwrap."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

from rootseed.console import err
from rootseed.errors import RootseedError
from rootseed.sandbox.options import API_MOUNTS, all_binds, bwrap_argv
from rootseed.sandbox.rootpath import find_command, plan_stubs, remove_stubs, resolve_in_root
from rootseed.sandbox.spec import SandboxSpec

#: What execvp searches when the sandbox environment has no PATH.
_EXECVP_DEFAULT_PATH = "/bin:/usr/bin"
_LOG_TAIL = 2000


def find_bwrap() -> str:
    """The bubblewrap executable, or a RootseedError saying how to install it."""
    path = shutil.which("bwrap")
    if path is None:
        raise RootseedError("bubblewrap (bwrap) is not installed; every RUN step needs it",
                            hint="apt-get install bubblewrap")
    return path


def _check(spec: SandboxSpec) -> None:
    if not spec.rootfs.is_dir():
        raise RootseedError(f"sandbox root filesystem {spec.rootfs} is not a directory")
    if not spec.argv:
        raise RootseedError("empty command for the sandbox")
    cwd = resolve_in_root(spec.rootfs, spec.cwd)
    if cwd is None or not cwd.is_dir():
        raise RootseedError(
            f"working directory {spec.cwd} does not exist in the image's root filesystem",
            hint="WORKDIR creates it; the builder must create it before the RUN step")
    argv0 = spec.argv[0]
    if spec.runner:
        if not Path(spec.runner[0]).is_file():
            raise RootseedError(f"emulator runner {spec.runner[0]} does not exist on this host",
                                hint="install qemu-user-static, or run on an x86 host")
        return  # the emulator, not the kernel, resolves argv[0]
    if any(dest == argv0 for _, dest in spec.ro_binds):
        return  # a file bound in for this command (e.g. a heredoc script)
    if find_command(spec.rootfs, argv0, spec.env.get("PATH", _EXECVP_DEFAULT_PATH),
                    spec.cwd) is None:
        where = "" if "/" in argv0 else f" (searched PATH={spec.env.get('PATH', '')!r})"
        raise RootseedError(
            f"command {argv0!r} does not exist in the image's root filesystem{where}",
            hint="install it in an earlier step or copy it in (COPY --from=...), "
                 "or use the absolute path of a file that exists in the image")


def _tail(log: Path, start: int) -> str:
    with open(log, "rb") as f:
        f.seek(max(start, f.seek(0, os.SEEK_END) - _LOG_TAIL))
        return f.read().decode("utf-8", "replace").strip()


def run(spec: SandboxSpec, *, log: Path, debug: bool = False) -> int:
    """Run ``spec``; append its stdout and stderr to ``log``; return its exit code.

    The exit code is the command's (128+N if a signal N killed it). A sandbox that could
    not be set up at all raises :class:`RootseedError` with bwrap's own message.
    """
    bwrap = find_bwrap()
    _check(spec)
    stubs = plan_stubs(
        spec.rootfs,
        [*((dest, True) for _, dest in API_MOUNTS),
         *((dest, src.is_dir()) for src, dest in all_binds(spec))],
        covered=[dest for _, dest in API_MOUNTS])
    status_r, status_w = os.pipe()
    argv = bwrap_argv(spec, bwrap)
    at = len(spec.enter) + 1
    argv[at:at] = ["--json-status-fd", str(status_w)]
    if debug:
        err.print(f"+ (umask {spec.umask:04o}) {shlex.join(argv)}", markup=False,
                  highlight=False, soft_wrap=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(log, "ab") as logf:
            start = logf.tell()
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                    env={}, umask=spec.umask, pass_fds=(status_w,), close_fds=True)
            finally:
                os.close(status_w)
            with os.fdopen(status_r, "rb") as status_f:
                status_r = -1
                status = status_f.read()
            rc = proc.wait()
    finally:
        if status_r >= 0:
            os.close(status_r)
        remove_stubs(stubs)
    started = False
    for line in status.decode("utf-8", "replace").splitlines():
        try:
            started = started or "child-pid" in json.loads(line)
        except ValueError:
            continue
    if not started:
        raise RootseedError(
            f"the sandbox could not be set up (bwrap exit {rc}) for root {spec.rootfs}:\n"
            f"{_tail(log, start)}",
            hint="bwrap needs user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                 "user.max_user_namespaces > 0); rerun with --debug to see the command")
    if rc < 0:
        return 128 + (-rc if -rc in signal.valid_signals() else 0)
    return rc
