"""The planner: a Containerfile, build args, a platform and a target → a typed :class:`Plan`.

Pure (no I/O; :func:`plan_package` only reads the Containerfile). Each rule is BuildKit's
dockerfile frontend, checked against its source (moby/buildkit):

* global scope (``convert.go`` ``defaultArgs``, ``buildMetaArgs``): the automatic platform
  ARGs (``BUILDPLATFORM``, ``BUILDOS``, ``BUILDOSVERSION``, ``BUILDARCH``,
  ``BUILDVARIANT``, ``TARGETPLATFORM``, ``TARGETOS``, ``TARGETOSVERSION``,
  ``TARGETARCH``, ``TARGETVARIANT``, ``TARGETSTAGE``; a ``--build-arg`` of the same name
  overrides each), then the ARGs before the first FROM in order: a ``--build-arg``
  value, else the default expanded with what came before; FROM lines (image and
  ``--platform``) see exactly this scope;
* stage bases (``buildDispatchStates``, ``dispatchStates.addState``): ``scratch``, else an
  *earlier* stage of that name, else an image; a name that expands to nothing is an error;
* ``COPY --from`` (``toCommand``): never expanded (a variable in it is an error), a
  number is a stage index, else a stage name (any stage), else an image (or the named
  context ``fetch``);
* the target (``resolveTarget``): ``--target`` by stage name, else the last stage; only
  stages it reaches are dispatched (``resolveReachableStages``), cycles are an error;
* a stage ``FROM <stage>`` starts with that stage's state (``dispatchState.init``): its
  variables (ARG values *and* ENV), its image config, its platform and its declared
  ARGs (``ds.buildArgs = append(ds.buildArgs, ds.base.buildArgs...)``);
* every stage has PATH (``dispatchStages``: ``system.DefaultPathEnv``) and starts from its
  image config's ENV, WORKDIR and USER;
* ``ARG`` (``dispatchArg``): a ``--build-arg`` value wins, else the default (expanded),
  else (no default) the global value; a value, if any, enters the environment, where it
  replaces a variable of that name (ENV included: ``llb.State.AddEnv``);
* ``ENV`` (``dispatchEnv``, ``instructions.EnvCommand.Expand``): keys and values are
  expanded with the variables as they were before the instruction;
* expanded (``SupportsSingleWordExpansion``): ENV, LABEL, WORKDIR, USER, COPY/ADD sources,
  destination, ``--chown``, ``--chmod``; COPY/ADD heredoc bodies in raw mode unless the
  delimiter was quoted (``ExpandRaw``); never RUN, CMD, ENTRYPOINT, SHELL;
* ``WORKDIR`` (``dispatchWorkdir``): relative to the previous one, cleaned; created unless "/";
* ``RUN`` (``dispatchRun``): a single heredoc is run by the shell as its text, or, with a
  ``#!`` line, as a file mounted at ``/dev/pipes/<name>``; more complex heredocs are
  appended to the command; the shell form gets the stage's SHELL (``withShell``,
  ``defaultShell``: ``/bin/sh -c``);
* COPY destinations are made absolute against WORKDIR, keeping a trailing slash
  (``pathRelativeToWorkingDir``);
* undefined names (``reportUnmatchedVariables``): referenced names with no value, less the
  ARGs declared in the stage's scope (with or without a value).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from rootseed.containerfile.expand import Expansion, ExpansionError, expand_word, shown
from rootseed.containerfile.model import (
    NAMED_CONTEXTS,
    Add,
    Arg,
    Cmd,
    Containerfile,
    Copy,
    Entrypoint,
    Env,
    Heredoc,
    Instruction,
    Label,
    Run,
    Shell,
    Stage,
    User,
    Workdir,
)
from rootseed.containerfile.parse import HEREDOC_WORD, parse_file
from rootseed.errors import ErrorKind, RootseedError
from rootseed.plan.model import (
    Base,
    ContextPath,
    CopySource,
    FetchPath,
    ImagePath,
    ImageRef,
    ImageSettings,
    InlineFile,
    Plan,
    Planned,
    PlannedArg,
    PlannedCmd,
    PlannedCopy,
    PlannedEntrypoint,
    PlannedEnv,
    PlannedLabel,
    PlannedRun,
    PlannedShell,
    PlannedUser,
    PlannedWorkdir,
    Platform,
    Scratch,
    StagePath,
    StagePlan,
    StageRef,
)


class Package(Protocol):
    """What planning a tree package reads of it (:class:`rootseed.tree.model.Package` is
    one; the planner does not import the tree, which imports the planner)."""

    @property
    def name(self) -> str: ...

    @property
    def containerfile(self) -> Path: ...

    @property
    def platforms(self) -> tuple[str, ...]: ...

    def build_args(self) -> dict[str, str]: ...

#: The platform of a package without ``platforms`` (StageX's Makefile: PLATFORM := linux/amd64).
DEFAULT_PLATFORM = Platform("linux", "amd64")
#: ``system.DefaultPathEnv`` for Linux.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: ``defaultShell`` for Linux.
DEFAULT_SHELL = ("/bin/sh", "-c")
#: ``nonEnvArgs``: ARGs that never enter the environment and are never "undefined".
NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
SCRATCH = "scratch"

_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^git@")


class PlanError(RootseedError):
    """A Containerfile that cannot be planned; the message names file:line, and the
    package when ``package`` is set (callers add it when it is None)."""

    kind = ErrorKind.PLAN

    def __init__(self, message: str, *, hint: str | None = None, package: str | None = None,
                 file: str | None = None, line: int | None = None, step: str | None = None):
        super().__init__(message, hint=hint, package=package, file=file, line=line, step=step)


def parse_platform(text: str) -> Platform:
    """``os/arch[/variant]`` → :class:`Platform` (a :class:`PlanError` otherwise)."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PlanError(f"invalid platform {text!r}",
                        hint="write os/arch[/variant], e.g. linux/386")
    return Platform(*parts)


def package_platform(package: Package) -> Platform:
    """The platform a package is built for: the first of its ``platforms`` (StageX builds
    each; rootseed the first), else :data:`DEFAULT_PLATFORM`."""
    return parse_platform(package.platforms[0]) if package.platforms else DEFAULT_PLATFORM


def platform_args(platform: Platform, target_stage: str) -> dict[str, str]:
    """BuildKit's automatic global ARGs (``defaultArgs``); the build platform is the
    target platform (rootseed never cross-builds)."""
    values: dict[str, str] = {}
    for prefix in ("BUILD", "TARGET"):
        values.update({f"{prefix}PLATFORM": str(platform), f"{prefix}OS": platform.os,
                       f"{prefix}OSVERSION": "", f"{prefix}ARCH": platform.architecture,
                       f"{prefix}VARIANT": platform.variant})
    values["TARGETSTAGE"] = target_stage or "default"
    return values


def plan(containerfile: Containerfile, *, build_args: Mapping[str, str] | None = None,
         platform: Platform = DEFAULT_PLATFORM, target: str | None = None,
         base_images: Mapping[str, ImageSettings] | None = None,
         all_stages: bool = False) -> Plan:
    """Plan ``containerfile`` for ``target`` (default: its last stage) as BuildKit would.

    ``build_args`` are the ``--build-arg`` values (StageX's package args merged with the
    user's, the user's winning). ``platform`` is both the target and the build platform
    (``TARGETPLATFORM``/``BUILDPLATFORM`` and friends). ``base_images`` maps an image
    reference (as written after expansion) to its configuration: a stage ``FROM`` it
    starts with its ENV/WORKDIR/USER; an image not given starts like scratch (what the
    dependency scan, which has no images yet, uses). With ``all_stages`` every stage is
    planned, not only those the target needs (for ``check``).

    Raises :class:`PlanError` (file:line, what, a hint) for what BuildKit rejects:
    a failing ``${X:?}``, an unknown ``--target``, ``--from`` with a variable, a base
    name that expands to nothing, a stage cycle.
    """
    return _Planner(containerfile, dict(build_args or {}), platform, dict(base_images or {})
                    ).run(target, all_stages)


def plan_package(package: Package, *, build_args: Mapping[str, str] | None = None,
                 target: str | None = None, display: str | None = None,
                 base_images: Mapping[str, ImageSettings] | None = None,
                 all_stages: bool = False, containerfile: Containerfile | None = None
                 ) -> Plan:
    """Plan a tree package: its Containerfile with StageX's build args
    (:meth:`Package.build_args`) overridden by ``build_args`` (``--build-arg``), for
    :func:`package_platform`. ``containerfile`` skips reading it again. See :func:`plan`."""
    cf = containerfile or parse_file(package.containerfile, display=display)
    args = {**package.build_args(), **(build_args or {})}
    try:
        platform = package_platform(package)
    except PlanError as e:
        raise e.at(f"{package.name}: [package] platforms", package=package.name) from None
    return plan(cf, build_args=args, platform=platform, target=target,
                base_images=base_images, all_stages=all_stages)


def image_references(package: Package, build_args: Mapping[str, str] | None = None
                     ) -> tuple[tuple[str, int], ...]:
    """Every image a package's Containerfile reads (FROM and ``COPY --from``, every stage,
    planned with StageX's build args and ``build_args``), with its line, in file order:
    what the package depends on. The tree's dependency scan calls this."""
    planned = plan_package(package, build_args=build_args, all_stages=True,
                           display=str(package.containerfile))
    return tuple((ref.reference, line) for ref, line in planned.images())


# -- the work -------------------------------------------------------------------------------


@dataclass
class _Header:
    """A stage's FROM, resolved before anything is dispatched."""

    stage: Stage
    base: Base
    platform: Platform | None  # --platform, if given
    undeclared: frozenset[str]
    needs: set[int] = field(default_factory=set)
    froms: dict[int, CopySourceKind] = field(default_factory=dict)  # line → --from operand


#: What a ``COPY --from`` operand names.
CopySourceKind = StageRef | ImageRef | str  # str: a named context ("fetch")


@dataclass
class _State:
    """One stage while its instructions are dispatched (BuildKit's dispatchState)."""

    env: dict[str, str]  # what $X sees and RUN gets: ARG values and ENV (llb state env)
    image_env: dict[str, str]  # ENV only (the image config)
    declared: list[str]  # ARG names in scope (d.buildArgs), inherited ones included
    workdir: str
    user: str
    shell: tuple[str, ...]
    entrypoint: tuple[str, ...] | None
    cmd: tuple[str, ...] | None
    labels: dict[str, str]
    platform: Platform
    cmd_set: bool = False

    def settings(self) -> ImageSettings:
        return ImageSettings(env=tuple(self.image_env.items()), workdir=self.workdir,
                             user=self.user, shell=self.shell, entrypoint=self.entrypoint,
                             cmd=self.cmd, labels=tuple(self.labels.items()))


class _Planner:
    def __init__(self, cf: Containerfile, build_args: dict[str, str], platform: Platform,
                 base_images: dict[str, ImageSettings]) -> None:
        self.cf = cf
        self.build_args = build_args
        self.platform = platform
        self.base_images = base_images

    def error(self, line: int, keyword: str, what: str, hint: str | None = None) -> PlanError:
        where = self.cf.where(line)
        return PlanError(f"{where}: {keyword}: {what}" if keyword else f"{where}: {what}",
                         hint=hint, file=self.cf.display, line=line, step=keyword or None)

    # -- global scope, targets, stage graph --------------------------------------------------
    def run(self, target: str | None, all_stages: bool) -> Plan:
        stages = self.cf.stages
        target_stage = self._target(target)
        target_name = target if target is not None else (stages[-1].name or "")
        scope, undeclared_global = self._global_scope(target_name)
        headers = [self._header(stage, scope, stages[:stage.index]) for stage in stages]
        self._check_cycles(headers)
        wanted = (set(range(len(stages))) if all_stages
                  else _reachable(headers, target_stage.index))
        finished: dict[int, tuple[StagePlan, _State]] = {}
        for header in headers:  # file order: a base stage is always earlier
            if header.stage.index in wanted:
                finished[header.stage.index] = self._stage(header, scope, finished)
        return Plan(display=self.cf.display, platform=self.platform,
                    build_args=tuple(self.build_args.items()),
                    global_scope=tuple(scope.items()),
                    stages=tuple(finished[i][0] for i in sorted(finished)),
                    target=target_stage.index,
                    stage_names=tuple(s.name for s in stages),
                    undeclared_global=undeclared_global)

    def _target(self, target: str | None) -> Stage:
        """``resolveTarget``: by name, case-insensitive. rootseed also takes the index of
        a stage (how its own tools name a stage without ``AS``)."""
        if target is None:
            return self.cf.stages[-1]
        lowered = target.lower()
        for stage in self.cf.stages:
            if stage.name == lowered:
                return stage
        if target.isdecimal() and int(target) < len(self.cf.stages):
            return self.cf.stages[int(target)]
        names = ", ".join(s.name for s in self.cf.stages if s.name) or "none"
        raise PlanError(f"no stage {target!r} in {self.cf.display} (target stage could not "
                        "be found)",
                        hint=f"--target takes a stage name (FROM ... AS NAME); stages: {names}",
                        file=self.cf.display)

    def _global_scope(self, target_name: str) -> tuple[dict[str, str], frozenset[str]]:
        scope = platform_args(self.platform, target_name)
        for name in scope:
            if name in self.build_args:
                scope[name] = self.build_args[name]
        undeclared: set[str] = set()
        for instruction in self.cf.global_args:
            for name, default in instruction.args:
                if name in self.build_args:
                    scope[name] = self.build_args[name]
                elif default is not None:
                    result = self._expand(instruction, default, scope)
                    undeclared |= result.unmatched - {name}
                    scope[name] = result.text
        return scope, frozenset(undeclared)

    def _header(self, stage: Stage, scope: Mapping[str, str], earlier: Iterable[Stage]
                ) -> _Header:
        name = self._expand(stage.from_, stage.base, scope)
        if name.text == "":
            raise self.error(stage.line, "FROM", f"base name ({stage.base}) should not be "
                             "blank", hint="give the ARG it uses a value (before the first "
                             "FROM, or with --build-arg)")
        undeclared = set(name.unmatched)
        base: Base
        named = {s.name: s for s in earlier if s.name is not None}
        if name.text == SCRATCH:
            base = Scratch()
        elif name.text in named:
            base = StageRef(named[name.text].index, name.text)
        elif name.text in NAMED_CONTEXTS:
            raise self.error(stage.line, "FROM", f"{name.text!r} is a build context, not an "
                             "image", hint=f"use COPY --from={name.text} to copy its files")
        else:
            base = ImageRef(name.text)
        platform: Platform | None = None
        if stage.platform is not None:
            written = self._expand(stage.from_, stage.platform, scope)
            undeclared |= written.unmatched
            if written.text == "":
                raise self.error(stage.line, "FROM", f"empty platform value from expression "
                                 f"{stage.platform}")
            try:
                platform = parse_platform(written.text)
            except PlanError as e:
                raise self.error(stage.line, "FROM", e.message, e.hint) from e
        header = _Header(stage=stage, base=base, platform=platform,
                         undeclared=frozenset(undeclared))
        if isinstance(base, StageRef):
            header.needs.add(base.index)
        for i in stage.instructions:
            if isinstance(i, Copy) and i.from_ is not None:
                operand = self._copy_from(i)
                header.froms[i.line] = operand
                if isinstance(operand, StageRef):
                    header.needs.add(operand.index)
        return header

    def _copy_from(self, i: Copy) -> CopySourceKind:
        assert i.from_ is not None
        try:
            unexpanded = expand_word(i.from_, {}).text
        except ExpansionError:
            unexpanded = ""
        if unexpanded != i.from_:
            raise self.error(i.line, i.keyword, f"--from={i.from_}: variable expansion is not "
                             "supported for --from",
                             hint="define a stage with FROM (which sees the global ARGs) and "
                                  "copy from that stage, as BuildKit requires")
        stages = self.cf.stages
        if i.from_.isdecimal():
            index = int(i.from_)
            if index >= len(stages):
                raise self.error(i.line, i.keyword, f"invalid stage index {index}",
                                 hint=f"the file has {len(stages)} stages (0-based)")
            return StageRef(index, stages[index].name)
        lowered = i.from_.lower()
        for stage in stages:
            if stage.name == lowered:
                return StageRef(stage.index, stage.name)
        if i.from_ in NAMED_CONTEXTS:
            return i.from_
        if i.from_ == SCRATCH:
            raise self.error(i.line, i.keyword, "--from=scratch has no files")
        return ImageRef(i.from_)

    def _check_cycles(self, headers: list[_Header]) -> None:
        state: dict[int, int] = {}

        def visit(index: int, path: list[int]) -> None:
            if state.get(index) == 2:
                return
            if state.get(index) == 1:
                cycle = [*path[path.index(index):], index]
                shown = " -> ".join(headers[i].stage.label for i in cycle)
                raise PlanError(f"{self.cf.where(headers[index].stage.line)}: stages depend "
                                f"on each other in a cycle: {shown}",
                                hint="a stage cannot need itself, directly or indirectly")
            state[index] = 1
            for n in sorted(headers[index].needs):
                visit(n, [*path, index])
            state[index] = 2

        for header in headers:
            visit(header.stage.index, [])

    # -- one stage ---------------------------------------------------------------------------
    def _start(self, header: _Header, finished: Mapping[int, tuple[StagePlan, _State]]
               ) -> _State:
        base = header.base
        if isinstance(base, StageRef):
            parent = finished[base.index][1]
            state = _State(env=dict(parent.env), image_env=dict(parent.image_env),
                           declared=list(parent.declared), workdir=parent.workdir,
                           user=parent.user, shell=parent.shell, entrypoint=parent.entrypoint,
                           cmd=parent.cmd, labels=dict(parent.labels), platform=parent.platform)
        else:
            settings = (self.base_images.get(base.reference, ImageSettings())
                        if isinstance(base, ImageRef) else ImageSettings())
            image_env = dict(settings.env)
            state = _State(env={}, image_env=image_env, declared=[],
                           workdir=settings.workdir, user=settings.user,
                           shell=settings.shell or DEFAULT_SHELL,
                           entrypoint=settings.entrypoint, cmd=settings.cmd,
                           labels=dict(settings.labels),
                           platform=header.platform or self.platform)
        if "PATH" not in state.image_env:
            state.image_env["PATH"] = DEFAULT_PATH
        state.env.update(state.image_env)
        state.workdir = _workdir(state.workdir, "") if state.workdir else ""
        return state

    def _stage(self, header: _Header, scope: Mapping[str, str],
               finished: Mapping[int, tuple[StagePlan, _State]]) -> tuple[StagePlan, _State]:
        state = self._start(header, finished)
        start = state.settings()
        steps = tuple(self._dispatch(i, state, header, scope)
                      for i in header.stage.instructions)
        stage = header.stage
        planned = StagePlan(index=stage.index, name=stage.name, line=stage.line,
                            base=header.base, platform=state.platform, steps=steps,
                            start=start, final=state.settings(),
                            scope=tuple(state.env.items()), undeclared=header.undeclared)
        return planned, state

    def _dispatch(self, i: Instruction, state: _State, header: _Header,
                  scope: Mapping[str, str]) -> Planned:
        if isinstance(i, Arg):
            return self._arg(i, state, scope)
        words = _Words(self, i, state)
        if isinstance(i, Env):
            pairs = tuple((words.expand(k), words.expand(v)) for k, v in i.pairs)
            for key, value in pairs:
                state.env[key] = value
                state.image_env[key] = value
            return PlannedEnv(instruction=i, undeclared=words.undeclared(), pairs=pairs)
        if isinstance(i, Label):
            pairs = tuple((words.expand(k), words.expand(v)) for k, v in i.pairs)
            state.labels.update(pairs)
            return PlannedLabel(instruction=i, undeclared=words.undeclared(), pairs=pairs)
        if isinstance(i, Workdir):
            state.workdir = _workdir(state.workdir, words.expand(i.path))
            return PlannedWorkdir(instruction=i, undeclared=words.undeclared(),
                                  path=state.workdir)
        if isinstance(i, User):
            state.user = words.expand(i.user)
            return PlannedUser(instruction=i, undeclared=words.undeclared(), user=state.user)
        if isinstance(i, Shell):
            state.shell = i.argv
            return PlannedShell(instruction=i, argv=i.argv)
        if isinstance(i, Run):
            return self._run(i, state)
        if isinstance(i, Copy):
            return self._copy(i, state, header, words)
        if isinstance(i, Entrypoint):
            state.entrypoint = (*state.shell, " ".join(i.argv)) if i.shell_form else i.argv
            if not state.cmd_set:
                state.cmd = None  # an ENTRYPOINT resets an inherited CMD (dispatchEntrypoint)
            return PlannedEntrypoint(instruction=i, argv=state.entrypoint)
        if isinstance(i, Cmd):
            state.cmd = (*state.shell, " ".join(i.argv)) if i.shell_form else i.argv
            state.cmd_set = True
            return PlannedCmd(instruction=i, argv=state.cmd)
        raise self.error(i.line, i.keyword, "instruction not supported by the planner")

    def _arg(self, i: Arg, state: _State, scope: Mapping[str, str]) -> PlannedArg:
        values: list[tuple[str, str | None]] = []
        undeclared: set[str] = set()
        for name, default in i.args:
            value: str | None
            if name in self.build_args:
                value = self.build_args[name]
            elif default is not None:
                result = self._expand(i, default, state.env)
                undeclared |= result.unmatched - set(state.declared)
                value = result.text
            else:
                value = scope.get(name)
            if value is not None and name not in NON_ENV_ARGS:
                state.env[name] = value
            state.declared.append(name)
            values.append((name, value))
        return PlannedArg(instruction=i, undeclared=frozenset(undeclared - NON_ENV_ARGS),
                          values=tuple(values))

    def _file_name(self, i: Instruction, name: str) -> str:
        """A heredoc's name as the file it becomes: one path component, never '.' or '..'."""
        if name in ("", ".", "..") or "/" in name or "\0" in name:
            raise self.error(i.line, i.keyword, f"a heredoc named {name!r} cannot be a file name",
                             hint="name the heredoc with letters, digits, '_', '-' or '.' "
                                  "(e.g. <<EOF)")
        return name

    def _run(self, i: Run, state: _State) -> PlannedRun:
        argv: tuple[str, ...] = i.command
        script: InlineFile | None = None
        if i.heredocs:
            line = i.command[0]
            if HEREDOC_WORD.match(line) is not None:  # the whole command is one heredoc
                doc = i.heredocs[0]
                if doc.content.startswith("#!"):
                    script = InlineFile(self._file_name(i, doc.name), doc.content)
                    argv = (posixpath.join("/dev/pipes", doc.name),)
                else:
                    argv = (doc.content,)
            else:
                argv = (line + "".join(f"\n{d.content}{d.name}" for d in i.heredocs),)
        if i.shell_form:  # a #! heredoc too: BuildKit runs SHELL + /dev/pipes/<name>
            argv = (*state.shell, " ".join(argv))
        return PlannedRun(instruction=i, argv=argv, env=tuple(state.env.items()),
                          workdir=state.workdir or "/", user=state.user, network=i.network,
                          script=script)

    def _copy(self, i: Copy, state: _State, header: _Header, words: _Words) -> PlannedCopy:
        origin = header.froms.get(i.line) if i.from_ is not None else None
        sources: list[CopySource] = []
        written: list[str] = []
        for source in i.sources:
            if isinstance(source, Heredoc):
                content = (words.expand(source.content, quotes=False) if source.expand
                           else source.content)
                sources.append(InlineFile(self._file_name(i, source.name), content))
                continue
            word = words.expand(source)
            if _REMOTE.match(word):
                raise self.error(i.line, i.keyword, f"remote source {word!r} not supported",
                                 hint="builds are hermetic: pin the file as a [sources] entry "
                                      "and use fetch/${<ID>_SOURCE}")
            sources.append(_source(origin, word))
            written.append(word)
        dest_written = words.expand(i.dest)
        chown = words.expand(i.chown) if i.chown is not None else None
        chmod: int | None = None
        text: str | None = None
        if i.chmod is not None:
            text = words.expand(i.chmod)
            if not re.fullmatch(r"[0-7]+", text) or int(text, 8) > 0o7777:
                raise self.error(i.line, i.keyword, f"--chmod={text}: expected an octal mode "
                                 "between 0 and 07777", hint="symbolic modes (u+x) are not "
                                 "supported by rootseed")
            chmod = int(text, 8)
        dest = _dest(state.workdir, dest_written)
        dest_is_dir = (dest_written.endswith("/") or dest_written in (".", "")
                       or dest_written.endswith("/."))
        return PlannedCopy(instruction=i, undeclared=words.undeclared(),
                           sources=tuple(sources), dest=dest, dest_is_dir=dest_is_dir,
                           chmod=chmod, chown=chown, unpack=isinstance(i, Add),
                           written_sources=tuple(written), written_dest=dest_written,
                           written_chmod=text)

    # -- words -------------------------------------------------------------------------------
    def _expand(self, i: Instruction, word: str, env: Mapping[str, str], *,
                quotes: bool = True) -> Expansion:
        try:
            return expand_word(word, env, quotes=quotes)
        except ExpansionError as e:
            raise self.error(i.line, i.keyword, f"cannot expand {shown(word)}: {e}",
                             hint="fix the variable reference (BuildKit rejects it too)") from e


class _Words:
    """Expands the words of one instruction with the variables as they were before it."""

    def __init__(self, planner: _Planner, i: Instruction, state: _State) -> None:
        self.planner = planner
        self.i = i
        self.env = dict(state.env)
        self.declared = frozenset(state.declared)
        self.unmatched: set[str] = set()

    def expand(self, word: str, *, quotes: bool = True) -> str:
        result = self.planner._expand(self.i, word, self.env, quotes=quotes)
        self.unmatched |= result.unmatched
        return result.text

    def undeclared(self) -> frozenset[str]:
        return frozenset(self.unmatched - self.declared - NON_ENV_ARGS)


def _reachable(headers: list[_Header], target: int) -> set[int]:
    seen: set[int] = set()
    todo = [target]
    while todo:
        index = todo.pop()
        if index not in seen:
            seen.add(index)
            todo.extend(headers[index].needs)
    return seen


def _clean(path: str) -> str:
    cleaned = posixpath.normpath("/" + path)
    return "/" + cleaned.lstrip("/")


def _workdir(current: str, path: str) -> str:
    """``system.NormalizeWorkdir``: relative to the current one, cleaned, absolute."""
    if not path.startswith("/"):
        path = posixpath.join("/", current or "/", path)
    return _clean(path)


def _dest(workdir: str, written: str) -> str:
    """``pathRelativeToWorkingDir``: absolute, cleaned, a trailing slash kept."""
    path = written if written not in ("", ".") else "./"
    joined = path if path.startswith("/") else posixpath.join(workdir or "/", path)
    cleaned = _clean(joined)
    if (path.endswith("/") or path.endswith("/.")) and cleaned != "/":
        cleaned += "/"
    return cleaned


def _source(origin: CopySourceKind | None, word: str) -> CopySource:
    if isinstance(origin, StageRef):
        return StagePath(origin, _relative(word))
    if isinstance(origin, ImageRef):
        return ImagePath(origin, _relative(word))
    if origin is not None:  # a named context: the verified sources
        return FetchPath(_relative(word))
    relative = _relative(word)
    head, _, rest = relative.partition("/")
    if head in NAMED_CONTEXTS:
        return FetchPath(rest or ".")
    return ContextPath(relative)


def _relative(word: str) -> str:
    """A source path inside its context, cleaned, without a leading slash ("." for the root)."""
    cleaned = posixpath.normpath("/" + word).lstrip("/")
    return cleaned or "."


__all__ = ["DEFAULT_PATH", "DEFAULT_PLATFORM", "DEFAULT_SHELL", "PlanError", "image_references",
           "package_platform", "parse_platform", "plan", "plan_package", "platform_args"]

