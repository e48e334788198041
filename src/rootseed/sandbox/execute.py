"""Run a :class:`SandboxSpec`: the one place that starts bwrap."""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rootseed.console import err
from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox import limits as step_limits
from rootseed.sandbox.bwrap import find_bwrap
from rootseed.sandbox.cgroup import JOIN_FAILED
from rootseed.sandbox.guard import StepGuard
from rootseed.sandbox.limits import StepLimitError
from rootseed.sandbox.logtail import tail
from rootseed.sandbox.neutralroot import MOUNT_POINT, Scratch, wrap
from rootseed.sandbox.options import API_MOUNTS, all_binds, bwrap_argv
from rootseed.sandbox.rootpath import find_command, plan_stubs, remove_stubs, resolve_in_root
from rootseed.sandbox.spec import SandboxSpec
from rootseed.sandbox.timeout import StepStopped, StepTimeoutError

#: What execvp searches when the sandbox environment has no PATH.
_EXECVP_DEFAULT_PATH = "/bin:/usr/bin"


def _check(spec: SandboxSpec) -> None:
    if not spec.rootfs.is_dir():
        raise RootseedError(f"sandbox root filesystem {spec.rootfs} is not a directory")
    if not spec.argv:
        raise RootseedError("empty command for the sandbox")
    cwd = resolve_in_root(spec.rootfs, spec.cwd)
    if cwd is None or not cwd.is_dir():
        raise RootseedError(
            f"working directory {spec.cwd} does not exist in the image's root filesystem",
            hint="WORKDIR creates it; the builder must create it before the RUN step",
            kind=ErrorKind.STEP)
    argv0 = spec.argv[0]
    if spec.runner:
        if not Path(spec.runner[0]).is_file():
            raise RootseedError(f"emulator runner {spec.runner[0]} does not exist on this host",
                                hint="install qemu-user-static, or run on an x86 host",
                                kind=ErrorKind.SANDBOX)
        return  # the emulator, not the kernel, resolves argv[0]
    if any(dest == argv0 for _, dest in spec.ro_binds) or any(
            dest == argv0 for _, dest, _ in spec.data_files):
        return  # a file bound in for this command (e.g. a heredoc script)
    if find_command(spec.rootfs, argv0, spec.env.get("PATH", _EXECVP_DEFAULT_PATH),
                    spec.cwd) is None:
        where = "" if "/" in argv0 else f" (searched PATH={spec.env.get('PATH', '')!r})"
        raise RootseedError(
            f"command {argv0!r} does not exist in the image's root filesystem{where}",
            hint="install it in an earlier step or copy it in (COPY --from=...), "
                 "or use the absolute path of a file that exists in the image",
            kind=ErrorKind.STEP)


#: Seconds to wait for the last output once the step has ended.
_COPY_GRACE = 30.0


class _Copier:
    """Copies the step's output pipe to the log until every writer has closed it: at most
    the log limit (past it the step is stopped and the rest dropped); a log that cannot be
    written (ENOSPC) stops the step too, and the error is kept for the caller."""

    def __init__(self, fd: int, logf: io.FileIO, guard: StepGuard) -> None:
        self.fd, self.logf, self.guard = fd, logf, guard
        self.error: OSError | None = None

    def __call__(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 16):
                if self.error is not None:
                    continue  # drain: the writers are being killed
                room = self.guard.log_room(len(chunk))
                if room == 0:
                    continue
                try:
                    view = memoryview(chunk)[:room]
                    while view:  # unbuffered: nothing is left to flush (and fail) at close
                        view = view[self.logf.write(view) or 0:]
                except OSError as e:
                    self.error = e
                    self.guard.stop_now()


def _tail(log: Path, start: int) -> str:
    return "\n".join(tail(log, lines=20, start=start))


def _args_fd(argv: list[str], at: int, end: int) -> tuple[list[str], int]:
    """``argv`` with bwrap's options (after ``at``, bwrap's position, up to ``end``, its
    ``--``) moved into a memfd read with ``--args FD``: what a step reads in
    /proc/1/cmdline then holds no host path (e.g. the cache's, in ``--bind
    <cache>/.../merged /``)."""
    if argv[end] != "--":
        raise RootseedError("internal: the bwrap command line has no '--' where expected")
    options = argv[at + 1:end]
    fd = os.memfd_create("rootseed-bwrap-args", 0)
    os.write(fd, b"".join(a.encode() + b"\0" for a in options))
    os.lseek(fd, 0, os.SEEK_SET)
    return [*argv[:at + 1], "--args", str(fd), *argv[end:]], fd


#: Set once the neutral root failed to start in this process: later steps bind directly.
_NEUTRAL_ROOT_BROKEN = False


@dataclass
class _Outcome:
    rc: int
    started: bool
    timed_out: bool
    start: int  # offset of this attempt's output in the log
    stopped: bool = False  # killed because ``stop`` was set
    limit: StepLimitError | None = None  # killed for going past one of its limits
    log_error: OSError | None = None  # the log could not be written


def _memfds(spec: SandboxSpec) -> list[int]:
    fds: list[int] = []
    for content, _, _ in spec.data_files:
        fd = os.memfd_create("rootseed-data", 0)
        fds.append(fd)
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
    return fds


#: How often a running step looks at its ``stop`` event (seconds).
_STOP_POLL = 0.2


class _Stop(Exception):
    pass


def _wait(proc: subprocess.Popen[bytes], timeout: float | None,
          stop: threading.Event | None, guard: StepGuard | None = None) -> int:
    """``proc``'s exit status; TimeoutExpired past ``timeout``, _Stop once ``stop`` is set
    (looked at every _STOP_POLL seconds: a cancelled build does not wait for a step that
    may run for hours); ``guard`` looks at the step's limits as often."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if stop is not None and stop.is_set():
            raise _Stop
        if guard is not None:
            guard.poll()
        left = _STOP_POLL if deadline is None else min(_STOP_POLL,
                                                        deadline - time.monotonic())
        if left <= 0:
            raise subprocess.TimeoutExpired(proc.args, timeout or 0)
        try:
            return proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            continue


def _attempt(spec: SandboxSpec, bwrap: str, log: Path, debug: bool, neutral: bool,
             stop: threading.Event | None = None) -> _Outcome | None:
    """Run the step once (with the neutral root or a plain root bind); None if the neutral
    root cannot even be tried here."""
    data_fds: list[int] = []
    scratch: Scratch | None = None
    limits = spec.limits or step_limits.current()
    guard = StepGuard(limits, spec.upper)
    status_r, status_w = os.pipe()
    try:
        data_fds = _memfds(spec)
        if neutral:
            try:
                scratch = Scratch.create(spec.rootfs)
            except OSError:
                return None  # e.g. a read-only directory around the root filesystem
            argv = bwrap_argv(spec, bwrap, root_source=MOUNT_POINT, data_fds=data_fds,
                              tmp_size=limits.tmp)
            argv[1:1] = ["--json-status-fd", str(status_w)]
            wrapped = wrap(argv, scratch, spec.rootfs)
            if wrapped is None:
                return None
            argv = wrapped
        else:
            argv = bwrap_argv(spec, bwrap, data_fds=data_fds, tmp_size=limits.tmp)
            # after the prefix that enters the root's own namespace
            at = len(spec.entered.enter) if spec.entered is not None else 0
            argv[at + 1:at + 1] = ["--json-status-fd", str(status_w)]
            if debug:
                err.print(f"+ bwrap options passed with --args: {shlex.join(argv)}",
                          markup=False, highlight=False, soft_wrap=True)
            # the command (-- [runner] argv) ends the line; a value may be "--" too
            argv, args_fd = _args_fd(argv, at, len(argv) - 1 - len(spec.runner)
                                     - len(spec.argv))
            data_fds.append(args_fd)
        argv = guard.command(argv)
        group = "" if guard.group is None else str(guard.group.dirs[0])
        if debug:
            err.print(f"+ (umask {spec.umask:04o}) {shlex.join(argv)}", markup=False,
                      highlight=False, soft_wrap=True)
        with open(log, "ab", buffering=0) as logf:
            start = logf.tell()
            # The step writes to a pipe, copied to the log by a thread: given the log file
            # itself, readlink(/proc/self/fd/1) inside the step names a host path (the
            # cache's location), which a build could embed, as it could mountinfo's.
            out_r, out_w = os.pipe()
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                    env={}, umask=spec.umask, pass_fds=(status_w, *data_fds),
                    close_fds=True)
            except OSError:
                os.close(out_r)
                if neutral:
                    return None  # the helper (unshare) cannot be started here
                raise
            finally:
                os.close(out_w)
                os.close(status_w)
                status_w = -1
            guard.started(proc.kill, status_r)
            copy = _Copier(out_r, logf, guard)
            copier = threading.Thread(target=copy, daemon=True, name="rootseed-step-log")
            copier.start()
            timed_out = stopped = False
            try:
                rc = _wait(proc, spec.timeout, stop, guard)
            except _Stop:
                stopped = True  # killed as on a timeout (see below)
                proc.kill()
                rc = proc.wait()
            except subprocess.TimeoutExpired:
                # Killing bwrap kills the whole sandbox: its pid-1 child has
                # --die-with-parent (PR_SET_PDEATHSIG), and the pid namespace dies with it.
                # (unshare and the overlay helper exec bwrap: the pid is bwrap's.)
                timed_out = True
                proc.kill()
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                # Every writer is in the step's pid namespace, which died with bwrap.
                copier.join(_COPY_GRACE)
            status = guard.rest_of_status()
            hit = guard.verdict(rc)
    finally:
        for fd in (status_r, status_w, *data_fds):
            if fd >= 0:
                os.close(fd)
        if scratch is not None:
            scratch.remove()
        guard.close()
    started = False
    for line in status.decode("utf-8", "replace").splitlines():
        try:
            started = started or "child-pid" in json.loads(line)
        except ValueError:
            continue
    if rc == JOIN_FAILED and not started and group:
        raise RootseedError(f"the step could not join its cgroup ({group}): "
                            f"{_tail(log, start)}", hint="run with --max-processes 0 "
                            "--max-memory 0 to do without one")
    return _Outcome(rc=rc, started=started, timed_out=timed_out, start=start,
                    stopped=stopped, log_error=copy.error,
                    limit=None if hit is None else StepLimitError(
                        hit, limits, guard.detail, log=str(log)))


def run(spec: SandboxSpec, *, log: Path, debug: bool = False,
        stop: threading.Event | None = None) -> int:
    """Run ``spec``; append its stdout and stderr to ``log``; return its exit code.

    The exit code is the command's (128+N if a signal N killed it). A sandbox that could
    not be set up at all raises :class:`RootseedError` with bwrap's own message. The root
    is the neutral overlay root (:mod:`rootseed.sandbox.neutralroot`) where it works; if
    it cannot start here, the step is run again with a plain root bind (and so are later
    steps of this process). Once ``stop`` is set the whole sandbox is killed and
    :class:`~rootseed.sandbox.timeout.StepStopped` raised.
    """
    global _NEUTRAL_ROOT_BROKEN
    bwrap = find_bwrap()
    _check(spec)
    stubs = plan_stubs(
        spec.rootfs,
        [*((dest, True) for _, dest in API_MOUNTS),
         *((dest, src.is_dir()) for src, dest in all_binds(spec)),
         *((dest, False) for _, dest, _ in spec.data_files)],
        covered=[dest for _, dest in API_MOUNTS])
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        outcome = None
        # A root already mounted in its own namespace (spec.entered, the
        # builder's copy-on-write snapshots) is bound as it is.
        if not _NEUTRAL_ROOT_BROKEN and spec.entered is None:
            outcome = _attempt(spec, bwrap, log, debug, neutral=True, stop=stop)
            if outcome is not None and outcome.stopped:
                raise StepStopped(f"the step was stopped; its output so far is in {log}")
            if outcome is not None and not outcome.started and not outcome.timed_out:
                os.truncate(log, outcome.start)  # the helper's complaint, not the step's
                outcome = None
            if outcome is None:
                _NEUTRAL_ROOT_BROKEN = True
        if outcome is None:
            outcome = _attempt(spec, bwrap, log, debug, neutral=False, stop=stop)
            assert outcome is not None
    finally:
        remove_stubs(stubs)
    if outcome.stopped:
        raise StepStopped(f"the step was stopped; its output so far is in {log}")
    if outcome.log_error is not None:
        raise RootseedError(f"cannot write the step's log {log}: "
                            f"{outcome.log_error.strerror or outcome.log_error}; the step "
                            "was stopped", hint="free space where the cache is (rootseed "
                            "cache prune), or point --cache-dir elsewhere", kind=ErrorKind.CACHE)
    if outcome.limit is not None:
        raise outcome.limit
    if outcome.timed_out:
        assert spec.timeout is not None
        raise StepTimeoutError(spec.timeout, hint=f"output so far is in {log}; if the step "
                               "is just slow, raise the limit (--step-timeout 12h, or 0 for "
                               "none)")
    if not outcome.started:
        raise RootseedError(
            f"the sandbox could not be set up (bwrap exit {outcome.rc}) for root "
            f"{spec.rootfs}:\n{_tail(log, outcome.start)}",
            hint="bwrap needs user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                 "user.max_user_namespaces > 0); rerun with --debug to see the command")
    if outcome.rc < 0:
        return 128 + (-outcome.rc if -outcome.rc in signal.valid_signals() else 0)
    return outcome.rc
