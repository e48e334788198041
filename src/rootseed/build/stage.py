"""Execute one Containerfile stage's instructions in a root filesystem directory."""

from __future__ import annotations

import functools
import os
import posixpath
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from rootseed.build import fsops
from rootseed.containerfile import (
    Add,
    Arg,
    Cmd,
    Containerfile,
    Copy,
    Entrypoint,
    Env,
    ExpansionError,
    Heredoc,
    Instruction,
    Label,
    Run,
    Shell,
    Stage,
    StageScope,
    User,
    Workdir,
)
from rootseed.containerfile.parse import HEREDOC_WORD
from rootseed.errors import RootseedError
from rootseed.sandbox import SandboxSpec
from rootseed.sandbox import run as sandbox_run
from rootseed.sandbox.rootpath import resolve, split

DEFAULT_SHELL = ("/bin/sh", "-c")
ROOT_USERS = frozenset({"", "0", "root", "0:0", "root:root", "root:0", "0:root"})
TAIL_LINES = 20


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

    def copy(self) -> StageState:
        return replace(self, env=list(self.env), labels=dict(self.labels))


class StepHook(Protocol):
    """Runs one filesystem-changing instruction as an action (see build/executor.py):
    looks its key up in the cache, or calls ``apply`` on a fresh writable snapshot."""

    def step(self, runner: StageRunner, instruction: Instruction, number: int,
             apply: Callable[[], None]) -> None: ...


#: Instructions that can change the root filesystem: each one is an action.
CHANGES_FILES = (Run, Copy, Workdir)


@dataclass(frozen=True)
class StageContext:
    """Everything a stage needs from the builder (paths are host paths)."""

    package: str
    containerfile: Containerfile
    context_dir: Path  # the package directory
    fetch_dir: Path  # the verified sources under their file names
    work: Path  # private scratch space
    log_dir: Path
    global_values: Mapping[str, str]
    build_args: Mapping[str, str]
    source_root: Callable[[str], Path]  # COPY --from operand → a root filesystem
    debug: bool = False
    cancelled: threading.Event = field(default_factory=threading.Event)
    steps: StepHook | None = None  # None: instructions change ``rootfs`` in place


class StageRunner:
    def __init__(self, ctx: StageContext, stage: Stage, rootfs: Path, state: StageState):
        self.ctx = ctx
        self.stage = stage
        self.rootfs = rootfs
        self.state = state
        self.scope = StageScope(ctx.global_values, ctx.build_args, env=state.env)
        self.cmd_set = False
        # Where RUN's bwrap starts and what it binds at / there (an overlay namespace's
        # view; see SandboxSpec.enter): set by a StepHook around each action.
        self.enter: Sequence[str] = ()
        self.mount_root: Path | None = None
        self.handlers: dict[type[Instruction], Callable[[Any], None]] = {
            Arg: self.arg, Env: self.env, Label: self.label, Workdir: self.workdir,
            User: self.user, Shell: self.shell, Entrypoint: self.entrypoint, Cmd: self.cmd,
            Run: self.run, Copy: self.copy, Add: self.copy,
        }

    # -- helpers -----------------------------------------------------------------------
    def where(self, i: Instruction) -> str:
        return f"{self.ctx.package}: {self.ctx.containerfile.where(i.line)}: {i.keyword}"

    def fail(self, i: Instruction, what: str, hint: str | None = None) -> RootseedError:
        return RootseedError(f"{self.where(i)}: {what}", hint=hint)

    def expand(self, i: Instruction, word: str, *, quotes: bool = True) -> str:
        try:
            return self.scope.expand(word, quotes=quotes)
        except ExpansionError as e:
            raise self.fail(i, f"cannot expand {word!r}: {e}") from e

    def execute(self) -> StageState:
        for number, instruction in enumerate(self.stage.instructions, 1):
            if self.ctx.cancelled.is_set():
                raise RootseedError(f"{self.ctx.package}: stage {self.stage.label} stopped "
                                    "because another step failed")
            handler = self.handlers[type(instruction)]
            if self.ctx.steps is not None and isinstance(instruction, CHANGES_FILES):
                self.ctx.steps.step(self, instruction, number,
                                    functools.partial(handler, instruction))
            else:
                handler(instruction)
        self.state.env = list(self.scope.env.items())
        return self.state

    # -- configuration -----------------------------------------------------------------
    def arg(self, i: Arg) -> None:
        for name, default in i.args:
            try:
                self.scope.declare_arg(name, default)
            except ExpansionError as e:
                raise self.fail(i, f"cannot expand the default of {name}: {e}") from e

    def env(self, i: Env) -> None:
        try:
            self.scope.set_env(i.pairs)
        except ExpansionError as e:
            raise self.fail(i, f"cannot expand: {e}") from e

    def label(self, i: Label) -> None:
        for key, value in i.pairs:
            self.state.labels[self.expand(i, key)] = self.expand(i, value)

    def workdir_path(self, i: Workdir) -> str:
        path = self.expand(i, i.path)
        return fsops.clean(posixpath.join(self.state.workdir or "/", path))

    def workdir(self, i: Workdir) -> None:
        path = self.workdir_path(i)
        fsops.makedirs(self.rootfs, path)
        self.state.workdir = path

    def user(self, i: User) -> None:
        self.state.user = self.expand(i, i.user)

    def shell(self, i: Shell) -> None:
        self.state.shell = i.argv

    def entrypoint(self, i: Entrypoint) -> None:
        self.state.entrypoint = (*self.state.shell, *i.argv) if i.shell_form else i.argv
        if not self.cmd_set:
            self.state.cmd = None  # Docker: ENTRYPOINT resets an inherited CMD

    def cmd(self, i: Cmd) -> None:
        self.state.cmd = (*self.state.shell, *i.argv) if i.shell_form else i.argv
        self.cmd_set = True

    # -- RUN -----------------------------------------------------------------------------
    def run_argv(self, i: Run, binds: list[tuple[Path, str]]) -> list[str]:
        if not i.shell_form:
            return list(i.command)
        line = i.command[0]
        if i.heredocs:
            marker = HEREDOC_WORD.match(line)
            if marker is not None and len(i.heredocs) == 1 and i.heredocs[0].fd == 0:
                doc = i.heredocs[0]
                if doc.content.startswith("#!"):  # a script with its own interpreter
                    script = self.ctx.work / f"heredoc-{self.stage.index}-{i.line}" / doc.name
                    script.parent.mkdir(parents=True, exist_ok=True)
                    script.write_text(doc.content, encoding="utf-8")
                    os.chmod(script, 0o755)
                    binds.append((script, f"/dev/pipes/{doc.name}"))
                    return [f"/dev/pipes/{doc.name}"]
                return [*self.state.shell, doc.content]
            line = line + "".join(f"\n{d.content}{d.name}" for d in i.heredocs)
        return [*self.state.shell, line]

    def run(self, i: Run) -> None:
        if self.state.user not in ROOT_USERS:
            raise self.fail(i, f"RUN as USER {self.state.user!r} is not supported",
                            "rootseed runs build steps as root; move USER after the last RUN")
        binds: list[tuple[Path, str]] = []
        argv = self.run_argv(i, binds)
        log = self.ctx.log_dir / f"{self.stage.label}-line{i.line:04d}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_bytes(b"")
        spec = SandboxSpec(rootfs=self.rootfs, argv=argv, env=self.scope.run_environment(),
                           cwd=self.state.workdir or "/", ro_binds=tuple(binds),
                           enter=tuple(self.enter), mount_root=self.mount_root)
        try:
            code = sandbox_run(spec, log=log, debug=self.ctx.debug)
        except RootseedError as e:
            raise RootseedError(f"{self.where(i)}: {e.message}", hint=e.hint) from e
        if code != 0:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            tail = "\n".join(f"  | {x}" for x in lines[-TAIL_LINES:]) or "  | (no output)"
            summary = i.original.splitlines()[0]
            if len(summary) > 100:
                summary = summary[:97] + "..."
            raise RootseedError(
                f"{self.where(i)} failed with exit code {code}: {summary}\n"
                f"last {min(len(lines), TAIL_LINES)} lines of output:\n{tail}\n"
                f"full log: {log}",
                hint="fix the step (the full log has all output); rerun with --debug to see "
                     "the exact sandbox command")

    # -- COPY / ADD ----------------------------------------------------------------------
    def copy(self, i: Copy) -> None:
        chmod = self._mode(i)
        if i.chown is not None and self.expand(i, i.chown) not in ROOT_USERS:
            raise self.fail(i, f"--chown={i.chown} is not supported",
                            "rootseed images are owned by root (uid/gid 0): drop --chown")
        dest_raw = self.expand(i, i.dest)
        dest = fsops.clean(posixpath.join(self.state.workdir or "/", dest_raw))
        dir_hint = dest_raw.endswith("/") or dest_raw in (".", "") or dest_raw.endswith("/.")
        entries: list[tuple[str, Path, bool]] = []  # (name, host path, from a heredoc)
        for source in i.sources:
            if isinstance(source, Heredoc):
                entries.append((source.name, self._heredoc_file(i, source), True))
                continue
            word = self.expand(i, source)
            if re.match(r"^[a-z]+://", word) or word.startswith("git@"):
                raise self.fail(i, f"remote source {word!r} not supported",
                                "builds are hermetic: pin the file as a [sources] entry and "
                                "use fetch/${<ID>_SOURCE}")
            root, rel = self._source_root(i, word)
            found = fsops.expand_sources(root, rel)
            if not found:
                raise self.fail(i, f"source {word!r} not found"
                                + ("" if i.from_ else " in the package directory"),
                                "check the path (COPY sources are relative to the package "
                                "directory, or to the root of --from)")
            entries += [(name, path, False) for name, path in found]
        dir_hint = dir_hint or len(entries) > 1
        for name, path, inline in entries:
            if not inline and isinstance(i, Add) and fsops.is_archive(path):
                fsops.extract_archive(path, fsops.makedirs(self.rootfs, dest))
            elif path.is_dir():
                target = fsops.makedirs(self.rootfs, dest)
                for child in sorted(os.listdir(path)):
                    fsops.copy_entry(path / child, target / child, chmod)
            else:
                existing = resolve(self.rootfs, dest)
                if dir_hint or existing.is_dir():
                    target = fsops.makedirs(self.rootfs, dest) / name
                else:
                    fsops.makedirs(self.rootfs, posixpath.dirname(dest))
                    target = resolve(self.rootfs, dest, follow_last=False)
                fsops.copy_entry(path, target, chmod)

    def _mode(self, i: Copy) -> int | None:
        if i.chmod is None:
            return None
        text = self.expand(i, i.chmod)
        if not re.fullmatch(r"[0-7]{1,4}", text):
            raise self.fail(i, f"--chmod={text}: expected an octal mode such as 0755",
                            "symbolic modes (u+x) are not supported")
        return int(text, 8)

    def _heredoc_file(self, i: Copy, doc: Heredoc) -> Path:
        content = self.expand(i, doc.content, quotes=False) if doc.expand else doc.content
        path = self.ctx.work / f"inline-{self.stage.index}-{i.line}-{doc.name}" / doc.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        os.chmod(path, 0o644)
        return path

    def _source_root(self, i: Copy, word: str) -> tuple[Path, str]:
        if i.from_ is not None:
            operand = self.expand(i, i.from_)
            try:
                return self.ctx.source_root(operand), word
            except RootseedError as e:
                raise self.fail(i, e.message, e.hint) from e
        parts = split(fsops.clean(word))
        if parts and parts[0] == "fetch":
            return self.ctx.fetch_dir, "/".join(parts[1:])
        return self.ctx.context_dir, word
