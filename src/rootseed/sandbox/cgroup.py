"""One cgroup per RUN step, for its process and memory limits, where rootseed may make one.

Two cases are used, found from ``/proc/self/cgroup`` and ``/proc/self/mountinfo``:

* cgroup v1 (a hybrid host): the ``pids`` and ``memory`` hierarchies, when rootseed may
  create a group below its own (as root, or in a delegated subtree);
* cgroup v2: rootseed's own group enables ``pids`` and ``memory`` for its children (or may
  enable them: the root group of a container, a delegated subtree).

Anything else (no write access, controllers not available) means no cgroup: the step then
gets rlimits only (see :mod:`rootseed.sandbox.limits`). The step joins its group before
bwrap starts (a tiny ``sh`` wrapper writes its own pid and ``exec``-s), so every process of
the step is counted. After the step, the group's event counters say which limit was hit.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from rootseed.sandbox.limits import Limit, StepLimits

#: Runs ``argv`` after writing its own pid into each ``cgroup.procs`` file given.
_JOIN = 'while [ "$1" != -- ]; do echo $$ >"$1" || exit 125; shift; done; shift; exec "$@"'
#: The exit status of the wrapper when joining failed (before the step started).
JOIN_FAILED = 125


def _own_groups() -> dict[str, str]:
    """controller (or "" for v2) → rootseed's group path in that hierarchy."""
    groups: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text()
    except OSError:
        return groups
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            groups[controller] = parts[2]
    return groups


def _mounts() -> dict[str, tuple[str, str]]:
    """controller (or "" for v2) → (mount point, root of the mount in the hierarchy)."""
    found: dict[str, tuple[str, str]] = {}
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or len(rest) < 3:
            continue
        root, point = fields[3], fields[4].replace("\\040", " ")
        if rest[0] == "cgroup2":
            found.setdefault("", (point, root))
        elif rest[0] == "cgroup":
            for option in rest[2].split(","):
                if option in ("pids", "memory"):
                    found.setdefault(option, (point, root))
    return found


def _group_dir(controller: str, groups: dict[str, str],
               mounts: dict[str, tuple[str, str]]) -> Path | None:
    if controller not in groups or controller not in mounts:
        return None
    point, root = mounts[controller]
    path = groups[controller]
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]
    return Path(point) / path.lstrip("/")


def _sweep(parent: Path) -> None:
    """Remove step groups left by rootseed processes that no longer exist (killed before
    they could remove them); an empty group is all that can be left."""
    try:
        names = [n for n in os.listdir(parent) if n.startswith("rootseed-step-")]
    except OSError:
        return
    for name in names:
        pid = name.split("-")[2]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            (parent / name).rmdir()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _counter(path: Path, key: str) -> int:
    """``key N`` from a flat-keyed cgroup file (0 if absent or unreadable)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


@dataclass
class StepGroup:
    """The group(s) of one step: one per v1 hierarchy, or one v2 group."""

    dirs: list[Path]
    v2: bool

    @classmethod
    def create(cls, limits: StepLimits) -> StepGroup | None:
        """A new group with ``limits`` applied, or None where rootseed may not make one."""
        if limits.processes is None and limits.memory is None:
            return None
        groups, mounts = _own_groups(), _mounts()
        name = f"rootseed-step-{os.getpid()}-{secrets.token_hex(4)}"
        v2 = _group_dir("", groups, mounts)
        if v2 is not None and "" in groups and len(groups) == 1:
            return cls._create_v2(v2, name, limits)
        made = cls([], v2=False)
        try:
            for controller, file, value in (("pids", "pids.max", limits.processes),
                                            ("memory", "memory.limit_in_bytes",
                                             limits.memory)):
                if value is None:
                    continue
                parent = _group_dir(controller, groups, mounts)
                if parent is None or not os.access(parent, os.W_OK):
                    made.remove()
                    return None
                _sweep(parent)
                (parent / name).mkdir()
                made.dirs.append(parent / name)
                _write(parent / name / file, str(value))
        except OSError:
            made.remove()
            return None
        return made

    @classmethod
    def _create_v2(cls, parent: Path, name: str, limits: StepLimits) -> StepGroup | None:
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            wanted = [c for c in ("pids", "memory") if c not in enabled]
            if wanted:
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            _sweep(parent)
            (parent / name).mkdir()
        except OSError:
            return None
        made = cls([parent / name], v2=True)
        try:
            if limits.processes is not None:
                _write(parent / name / "pids.max", str(limits.processes))
            if limits.memory is not None:
                _write(parent / name / "memory.max", str(limits.memory))
                with contextlib.suppress(OSError):  # no swap accounting: nothing to limit
                    _write(parent / name / "memory.swap.max", "0")
        except OSError:
            made.remove()
            return None
        return made

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this group (the wrapper joins, then ``exec``-s)."""
        return ["/bin/sh", "-c", _JOIN, "rootseed-join",
                *(str(d / "cgroup.procs") for d in self.dirs), "--", *argv]

    def hit(self) -> Limit | None:
        """The limit the step ran into, if one was."""
        for d in self.dirs:
            if _counter(d / "pids.events", "max") > 0:
                return Limit.PROCESSES
            events = "memory.events" if self.v2 else "memory.oom_control"
            if _counter(d / events, "oom_kill") > 0:
                return Limit.MEMORY
        return None

    def kill(self) -> None:
        for d in self.dirs:
            with contextlib.suppress(OSError):
                for pid in (d / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left and remove the group(s) (tried for up to a minute: thousands
        of processes of a fork bomb take a while to go on a loaded machine)."""
        for d in self.dirs:
            for _ in range(600):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    self.kill()
                    time.sleep(0.1)
        self.dirs = []
