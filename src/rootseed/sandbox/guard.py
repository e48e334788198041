"""Enforce one step's :class:`~rootseed.sandbox.limits.StepLimits` while it runs.

A :class:`StepGuard` is made per attempt. It puts the step in a cgroup where it can
(:mod:`.cgroup`), prefixes rlimits (``prlimit``: RLIMIT_FSIZE always; RLIMIT_NPROC and
RLIMIT_DATA when there is no cgroup), counts the log bytes the writer thread copies,
measures the step's upper directory now and then, and at the end says which limit, if
any, stopped the step. It never changes what the step sees of its files: limits do not
alter outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rootseed.sandbox.cgroup import StepGroup
from rootseed.sandbox.limits import Limit, StepLimits, describe_size

#: Seconds between two measurements of the step's upper directory.
DISK_POLL = 5.0
#: The exit status of a process killed by SIGXFSZ (a file past RLIMIT_FSIZE).
_XFSZ_STATUS = 128 + signal.SIGXFSZ


def disk_used(top: Path) -> int:
    """Bytes of disk the files under ``top`` take (allocated blocks; links not followed;
    an iterative walk, so any depth is fine)."""
    total = 0
    stack = [str(top)]
    while stack:
        path = stack.pop()
        try:
            with os.scandir(path) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


class StepGuard:
    def __init__(self, limits: StepLimits, upper: Path | None) -> None:
        self.limits = limits
        self.upper = upper
        self.group = StepGroup.create(limits)
        self.hit: Limit | None = None
        self.detail = ""
        self._kill: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._next_poll = time.monotonic() + DISK_POLL
        self.log_bytes = 0
        self.status = b""  # bwrap's --json-status-fd output so far
        self._status_fd = -1
        self._child = 0  # the sandbox's pid 1, as the host sees it
        self.tmp_full = False

    # -- starting ------------------------------------------------------------------------
    def command(self, argv: list[str]) -> list[str]:
        """``argv`` with the rlimit prefix and, where there is one, the cgroup wrapper."""
        prlimit = shutil.which("prlimit")
        options: list[str] = []
        if self.limits.disk is not None:
            options.append(f"--fsize={self.limits.disk}")
        if self.group is None:
            if self.limits.processes is not None:
                options.append(f"--nproc={self.limits.processes}")
            if self.limits.memory is not None:
                options.append(f"--data={self.limits.memory}")
        if prlimit is not None and options:
            argv = [prlimit, *options, "--", *argv]
        return self.group.wrap(argv) if self.group is not None else argv

    def started(self, kill: Callable[[], None], status_fd: int) -> None:
        """The step runs: ``kill`` stops it; bwrap reports its child's pid on
        ``status_fd`` (read here without blocking; :meth:`rest_of_status` at the end)."""
        self._kill = kill
        self._status_fd = status_fd
        os.set_blocking(status_fd, False)

    def _read_status(self) -> None:
        if self._status_fd < 0 or self._child:
            return
        try:
            self.status += os.read(self._status_fd, 1 << 16)
        except (BlockingIOError, OSError):
            return
        for line in self.status.decode("utf-8", "replace").splitlines():
            try:
                pid = json.loads(line).get("child-pid")
            except (ValueError, AttributeError):
                continue
            if isinstance(pid, int) and pid > 0:
                self._child = pid

    def rest_of_status(self) -> bytes:
        """Everything bwrap wrote on the status fd (call once the step has ended)."""
        if self._status_fd >= 0:
            os.set_blocking(self._status_fd, True)
            with os.fdopen(os.dup(self._status_fd), "rb") as f:
                self.status += f.read()
        return self.status

    def _look_at_tmp(self) -> None:
        """Note a full /tmp (the step then sees ENOSPC; if it fails, that is why)."""
        if self.limits.tmp is None or not self._child or self.tmp_full:
            return
        try:
            st = os.statvfs(f"/proc/{self._child}/root/tmp")
        except OSError:
            return
        if st.f_blocks and st.f_bavail * 100 < st.f_blocks:
            self.tmp_full = True

    def stop_now(self) -> None:
        """Kill the step (e.g. its log cannot be written)."""
        if self._kill is not None:
            self._kill()

    def _stop(self, limit: Limit, detail: str) -> None:
        with self._lock:
            if self.hit is None:
                self.hit, self.detail = limit, detail
        if self._kill is not None:
            self._kill()

    # -- while running -------------------------------------------------------------------
    def log_room(self, size: int) -> int:
        """How many of ``size`` new log bytes may be written (the rest is over the limit,
        which stops the step)."""
        if self.limits.log is None:
            self.log_bytes += size
            return size
        room = max(0, min(size, self.limits.log - self.log_bytes))
        self.log_bytes += room
        if room < size:
            self._stop(Limit.LOG, f"its output reached {describe_size(self.limits.log)}")
        return room

    def poll(self) -> None:
        """Called often while the step runs: measures the upper directory now and then."""
        if self.hit is not None:
            return
        self._read_status()
        self._look_at_tmp()
        if self.group is not None and (found := self.group.hit()) is not None:
            self._stop(found, "it tried to run more processes" if found is Limit.PROCESSES
                       else "it ran out of memory")
            return
        if self.upper is None or self.limits.disk is None:
            return
        now = time.monotonic()
        if now < self._next_poll:
            return
        used = disk_used(self.upper)
        # measuring a big tree takes a while: look less often then (at most 5% of the time)
        self._next_poll = time.monotonic() + max(DISK_POLL, 20 * (time.monotonic() - now))
        if used > self.limits.disk:
            self._stop(Limit.DISK, f"it wrote {describe_size(used)} to the image's files")

    # -- after -----------------------------------------------------------------------------
    def verdict(self, rc: int) -> Limit | None:
        """The limit that stopped the step (None: it ended on its own)."""
        if self.hit is None and self.group is not None:
            found = self.group.hit()
            if found is Limit.PROCESSES:
                self.hit, self.detail = found, "it tried to run more processes"
            elif found is Limit.MEMORY:
                self.hit, self.detail = found, "it ran out of memory and was killed"
        if self.hit is None and self.upper is not None and self.limits.disk is not None:
            used = disk_used(self.upper)
            if used > self.limits.disk:
                self.hit = Limit.DISK
                self.detail = f"it wrote {describe_size(used)} to the image's files"
        if self.hit is None and rc != 0 and self.tmp_full:
            self.hit, self.detail = Limit.TMP, "its /tmp filled up"
        if self.hit is None and self.limits.disk is not None and rc in (
                _XFSZ_STATUS, -signal.SIGXFSZ):
            self.hit, self.detail = Limit.DISK, "a file it wrote grew past the limit"
        return self.hit

    def close(self) -> None:
        if self.group is not None:
            self.group.remove()
