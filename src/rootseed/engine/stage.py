"""Execute one planned Containerfile stage in a root filesystem directory.

The stage comes from :mod:`rootseed.plan`: every word is expanded there, WORKDIR and COPY
destinations are absolute, each RUN carries its argv and environment. Nothing here
expands a variable; this module only changes files (WORKDIR, RUN, COPY/ADD).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from rootseed.engine import fsops
from rootseed.engine.archive_budget import ArchiveBudget
from rootseed.engine.errors import Cancelled
from rootseed.engine.extract import extract_archive
from rootseed.engine.ops import ExecOp, FileOp, Op, Root, StepFailed, run_op
from rootseed.errors import ErrorKind, RootseedError
from rootseed.plan import (
    ContextPath,
    FetchPath,
    ImagePath,
    ImageRef,
    ImageSettings,
    InlineFile,
    Planned,
    PlannedCopy,
    PlannedRun,
    PlannedWorkdir,
    StagePath,
    StagePlan,
    StageRef,
)
from rootseed.plan.planner import DEFAULT_PATH, DEFAULT_SHELL
from rootseed.sandbox import limits as step_limits
from rootseed.sandbox.rootpath import resolve

ROOT_USERS = frozenset({"", "0", "root", "0:0", "root:root", "root:0", "0:root"})

__all__ = ["FileStep", "InPlace", "StageContext", "StageRunner", "StageState", "StepFailed",
           "StepHook"]


@dataclass
class StageState:
    """What a stage carries forward: image config plus Docker's SHELL (not in OCI)."""

    env: list[tuple[str, str]] = field(default_factory=list)
    workdir: str = ""
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"env": [list(p) for p in self.env], "workdir": self.workdir, "user": self.user,
                "shell": list(self.shell),
                "entrypoint": None if self.entrypoint is None else list(self.entrypoint),
                "cmd": None if self.cmd is None else list(self.cmd), "labels": self.labels}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StageState:
        ep, cmd = data.get("entrypoint"), data.get("cmd")
        return cls(env=[(str(k), str(v)) for k, v in data.get("env", [])],
                   workdir=str(data.get("workdir", "")), user=str(data.get("user", "")),
                   shell=tuple(data.get("shell") or DEFAULT_SHELL),
                   entrypoint=None if ep is None else tuple(ep),
                   cmd=None if cmd is None else tuple(cmd), labels=dict(data.get("labels", {})))

    @classmethod
    def from_settings(cls, settings: ImageSettings) -> StageState:
        return cls(env=list(settings.env), workdir=settings.workdir, user=settings.user,
                   shell=settings.shell, entrypoint=settings.entrypoint, cmd=settings.cmd,
                   labels=dict(settings.labels))

    def copy(self) -> StageState:
        return replace(self, env=list(self.env), labels=dict(self.labels))


#: A planned instruction that can change the root filesystem: each one is an action.
FileStep = PlannedWorkdir | PlannedRun | PlannedCopy


class StepHook(Protocol):
    """Runs one filesystem-changing step as an action (see engine/executor.py): looks its
    key up in the cache, or has an executor run ``op`` on the stage's snapshot."""

    def step(self, step: FileStep, number: int, op: Op) -> None: ...


class InPlace:
    """The simplest :class:`StepHook`: every operation changes ``rootfs`` in place (no
    cache, no snapshots; e.g. a benchmark's or a crosscheck's scratch tree)."""

    def __init__(self, rootfs: Path, stop: threading.Event | None = None) -> None:
        self.root = Root(rootfs)
        self.stop = stop

    def step(self, step: FileStep, number: int, op: Op) -> None:
        run_op(op, self.root, self.stop)


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs from the builder (paths are host paths)."""

    package: str
    display: str  # the Containerfile as named in messages
    context_dir: Path  # the package directory
    fetch_dir: Path  # the verified sources under their file names
    work: Path  # private scratch space
    log_dir: Path
    source_root: Callable[[StageRef | ImageRef], Path]  # COPY --from → a root filesystem
    debug: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    step_timeout: float | None = None  # seconds per RUN step (None: no limit)
    platform: str = ""  # the plan's platform, e.g. "linux/386"
    steps: StepHook | None = None  # None: steps change the runner's ``rootfs`` in place


def step_log_name(stage: str, line: int) -> str:
    """The name of the log of the RUN at Containerfile ``line`` of ``stage``."""
    return f"{stage}-line{line:04d}.log"


class StageRunner:
    """Turns a stage's planned steps into operations (:mod:`rootseed.engine.ops`) and
    hands each to the step hook, in order; it never touches a tree itself."""

    def __init__(self, ctx: StageContext, stage: StagePlan, rootfs: Path | None = None):
        self.ctx = ctx
        self.stage = stage
        if ctx.steps is not None:
            self.hook: StepHook = ctx.steps
        elif rootfs is not None:
            self.hook = InPlace(rootfs, ctx.cancelled)
        else:
            raise ValueError("a stage runs through a step hook or in place on a rootfs")

    def where(self, i: Planned) -> str:
        return f"{self.ctx.package}: {self.ctx.display}:{i.line}: {i.keyword}"

    def fail(self, i: Planned, what: str, hint: str | None = None) -> RootseedError:
        return RootseedError(f"{self.where(i)}: {what}", hint=hint, kind=ErrorKind.STEP,
                             package=self.ctx.package, file=self.ctx.display, line=i.line,
                             step=i.keyword)

    def located(self, i: Planned, e: RootseedError) -> RootseedError:
        """``e`` itself (its type and kind kept; an unclassified one is a step's), said to
        have happened at this instruction; the caller re-raises it (``raise``)."""
        if e.kind is ErrorKind.ERROR:
            e.kind = ErrorKind.STEP
        return e.at(self.where(i), package=self.ctx.package, file=self.ctx.display,
                    line=i.line, step=i.keyword)

    def execute(self) -> StageState:
        """Run the stage's file-changing steps in order; its final image configuration."""
        for number, step in enumerate(self.stage.steps, 1):
            if self.ctx.cancelled.is_set():
                raise Cancelled(f"{self.ctx.package}: stage {self.stage.label} stopped "
                                "because another step failed")
            if isinstance(step, PlannedWorkdir | PlannedRun | PlannedCopy):
                self.hook.step(step, number, self.op(step))
        state = StageState.from_settings(self.stage.final)
        if "PATH" not in dict(state.env):  # Docker gives every image a PATH
            state.env = [("PATH", DEFAULT_PATH), *state.env]
        return state

    def op(self, step: FileStep) -> Op:
        """The operation of a planned step (nothing runs yet)."""
        if isinstance(step, PlannedRun):
            return self.run(step)
        if isinstance(step, PlannedWorkdir):
            return FileOp(step.keyword, functools.partial(self._file_op, step, self.workdir))
        if step.chown is not None and step.chown not in ROOT_USERS:
            raise self.fail(step, f"--chown={step.chown} is not supported",
                            "rootseed images are owned by root (uid/gid 0): drop --chown")
        return FileOp(step.keyword, functools.partial(self._file_op, step, self.copy))

    def _file_op(self, step: FileStep, change: Callable[[Any, Path], None],
                 rootfs: Path) -> None:
        try:
            change(step, rootfs)
        except OSError as e:
            # The paths come from the Containerfile and the image (hostile): a name
            # too long for the file system, a component that is not a directory, ...
            what = f"{e.strerror or e}" + (f": {_short(e.filename)}" if e.filename else "")
            raise self.fail(step, f"cannot apply it to the image's files ({what})",
                            "check the paths this instruction names") from None

    def workdir(self, i: PlannedWorkdir, rootfs: Path) -> None:
        try:
            fsops.makedirs(rootfs, i.path)
        except RootseedError as e:
            self.located(i, e)
            raise

    # -- RUN -----------------------------------------------------------------------------
    def log_path(self, line: int) -> Path:
        """Where the RUN step of Containerfile line ``line`` writes its output."""
        return self.ctx.log_dir / step_log_name(self.stage.label, line)

    def run(self, i: PlannedRun) -> ExecOp:
        if i.user not in ROOT_USERS:
            raise self.fail(i, f"RUN as USER {i.user!r} is not supported",
                            "rootseed runs build steps as root; move USER after the last RUN")
        data: list[tuple[bytes, str, int]] = []
        if i.script is not None:  # BuildKit mounts a #! heredoc read-only at /dev/pipes/
            # bound from memory, so no host path shows in the step's mountinfo
            data.append((i.script.content.encode("utf-8"), f"/dev/pipes/{i.script.name}", 0o755))
        return ExecOp(argv=tuple(i.argv), env=dict(i.env), cwd=i.workdir,
                      platform=self.ctx.platform,
                      log=self.log_path(i.line),
                      log_root=self.ctx.log_dir.parent,
                      where=self.where(i), summary=i.instruction.original.splitlines()[0],
                      timeout=self.ctx.step_timeout, data_files=tuple(data),
                      debug=self.ctx.debug, package=self.ctx.package,
                      file=self.ctx.display, line=i.line)

    # -- COPY / ADD ----------------------------------------------------------------------
    def copy(self, i: PlannedCopy, rootfs: Path) -> None:
        entries: list[tuple[str, Path, bool]] = []  # (name, host path, from a heredoc)
        origins: list[int] = []  # the index of the source each entry came from
        for n, source in enumerate(i.sources):
            if isinstance(source, InlineFile):
                entries.append((source.name, self._inline_file(i, source), True))
                origins.append(n)
                continue
            root = self._source_root(i, source)
            found = fsops.expand_sources(root, source.path)
            if not found:
                where = {ContextPath: " in the package directory",
                         FetchPath: " among the package's sources"}.get(type(source), "")
                raise self.fail(i, f"source {source.path!r} not found{where}",
                                "check the path (COPY sources are relative to the package "
                                "directory, or to the root of --from)")
            entries += [(name, path, False) for name, path in found]
            origins += [n] * len(found)
        dir_hint = i.dest_is_dir or len(entries) > 1
        # One link map per source, as BuildKit has one copier per source
        # (dockerfile2llb/convert_copy.go: one llb.Copy per source path).
        maps: dict[int, fsops.LinkMap] = {}
        try:
            for n, (name, path, inline) in enumerate(entries):
                links = maps.setdefault(origins[n], fsops.LinkMap())
                self._copy_one(rootfs, i, name, path, inline, dir_hint, links)
        except RootseedError as e:
            self.located(i, e)
            raise

    def _copy_one(self, rootfs: Path, i: PlannedCopy, name: str, path: Path, inline: bool,
                  dir_hint: bool, links: fsops.LinkMap) -> None:
        if not inline and i.unpack and fsops.is_archive(path):
            extract_archive(path, rootfs, i.dest, budget=ArchiveBudget(
                path.name, path.stat().st_size, disk=step_limits.current().disk,
                timeout=self.ctx.step_timeout))
        elif path.is_dir():
            target = fsops.makedirs(rootfs, i.dest)
            for child in sorted(os.listdir(path)):
                fsops.copy_entry(path / child, target / child, i.chmod, links)
        else:
            existing = resolve(rootfs, i.dest)
            if dir_hint or existing.is_dir():
                target = fsops.makedirs(rootfs, i.dest) / name
            else:
                fsops.makedirs(rootfs, os.path.dirname(i.dest.rstrip("/")) or "/")
                target = resolve(rootfs, i.dest, follow_last=False)
            fsops.copy_entry(path, target, i.chmod, links)

    def _inline_file(self, i: PlannedCopy, doc: InlineFile) -> Path:
        path = self.ctx.work / f"inline-{self.stage.index}-{i.line}-{doc.name}" / doc.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc.content, encoding="utf-8")
        os.chmod(path, 0o644)
        return path

    def _source_root(self, i: PlannedCopy,
                     source: ContextPath | FetchPath | StagePath | ImagePath) -> Path:
        if isinstance(source, ContextPath):
            return self.ctx.context_dir
        if isinstance(source, FetchPath):
            return self.ctx.fetch_dir
        ref = source.stage if isinstance(source, StagePath) else source.image
        try:
            return self.ctx.source_root(ref)
        except RootseedError as e:
            self.located(i, e)
            raise


def _short(path: object, limit: int = 200) -> str:
    """A path for a message (an attacker's path can be kilobytes long)."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 2:]}"
