"""Containerfile → typed instructions, using BuildKit's own parser (the ``dockerfile`` package).

Only rootseed's subset is accepted (docs/formats.md#containerfile); anything else is an
error naming the file, the line and the instruction. Nothing is executed or expanded here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dockerfile

from rootseed.containerfile.model import (
    Add,
    Arg,
    Cmd,
    Containerfile,
    Copy,
    Entrypoint,
    Env,
    From,
    Heredoc,
    Instruction,
    Label,
    Run,
    Shell,
    Stage,
    User,
    Workdir,
)
from rootseed.errors import ErrorKind, RootseedError


class ContainerfileError(RootseedError):
    """A Containerfile that does not parse; the message names file:line and instruction."""

    kind = ErrorKind.CONTAINERFILE


SUPPORTED = ("FROM", "ARG", "ENV", "WORKDIR", "SHELL", "RUN", "ADD", "COPY", "LABEL", "USER",
             "ENTRYPOINT", "CMD")

# "<<EOF", "<<-EOF", '<<"EOF"', "<<-'EOF'", optionally preceded by a file descriptor.
HEREDOC_WORD = re.compile(r"""^(\d*)<<(-?)\s*(["']?)([A-Za-z0-9_.\-]+)\3$""")
_HEREDOC_ANY = re.compile(r"""(\d*)<<(-?)\s*(["']?)([A-Za-z0-9_.\-]+)\3""")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)


def chomp(content: str) -> str:
    """Remove leading tabs from every line, as ``<<-`` asks."""
    return _LEADING_TABS.sub("", content)


def parse_file(path: Path, display: str | None = None) -> Containerfile:
    """Parse the Containerfile at ``path``; ``display`` names it in messages."""
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ContainerfileError(f"cannot read {shown}: {e.strerror or e}",
                                 hint="check that the package has a Containerfile") from e
    except UnicodeDecodeError as e:
        raise ContainerfileError(f"{shown} is not UTF-8 text: {e}") from e
    return parse_string(text, path=path, display=shown)


#: Containerfiles parsed in this process: (text, path, display) → the (immutable) result.
#: A build parses its package's Containerfile twice (the tree's dependency scan, then the
#: plan); the same text gives the same result, so the second time costs nothing.
_parsed: dict[tuple[str, Path | None, str], Containerfile] = {}
_PARSED_KEPT = 64


def parse_string(text: str, *, path: Path | None = None, display: str = "Containerfile"
                 ) -> Containerfile:
    """Parse Containerfile text (see :func:`parse_file`)."""
    key = (text, path, display)
    found = _parsed.get(key)
    if found is None:
        found = _parse_string(text, path=path, display=display)
        if len(_parsed) >= _PARSED_KEPT:
            _parsed.clear()
        _parsed[key] = found
    return found


def _parse_string(text: str, *, path: Path | None, display: str) -> Containerfile:
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        raise ContainerfileError(f"{display}: syntax error: {e}", file=display,
                                 hint="fix the Containerfile syntax (BuildKit's parser rejected it)"
                                 ) from e
    parser = _Parser(display)
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    body: list[Instruction] = []

    def close() -> None:
        if current is not None:
            stages.append(Stage(index=len(stages), name=current.name, base=current.image,
                                platform=current.platform, line=current.line, from_=current,
                                instructions=tuple(body)))

    for command in commands:
        instruction = parser.instruction(command)
        if isinstance(instruction, From):
            close()
            current, body = instruction, []
        elif current is None:
            if not isinstance(instruction, Arg):
                raise parser.error(command, f"{command.cmd.upper()} before the first FROM",
                                   "only ARG may come before the first FROM")
            global_args.append(instruction)
        else:
            body.append(instruction)
    close()
    if not stages:
        raise ContainerfileError(f"{display}: no FROM instruction",
                                 hint="a Containerfile needs at least one stage (FROM scratch)",
                                 file=display)
    names: dict[str, int] = {}
    for stage in stages:
        if stage.name is not None:
            if stage.name in names:
                raise ContainerfileError(
                    f"{display}:{stage.line}: stage name {stage.name!r} is already used on "
                    f"line {names[stage.name]}", hint="give every stage a unique name",
                    file=display, line=stage.line, step="FROM")
            names[stage.name] = stage.line
    return Containerfile(path=path or Path(display), display=display,
                         global_args=tuple(global_args), stages=tuple(stages))


class _Parser:
    def __init__(self, display: str) -> None:
        self.display = display
        self.handlers: dict[str, Callable[[Any], Instruction]] = {
            "FROM": self.from_, "ARG": self.arg, "ENV": self.env, "LABEL": self.label,
            "WORKDIR": self.workdir, "USER": self.user, "SHELL": self.shell, "RUN": self.run,
            "COPY": self.copy, "ADD": self.copy, "ENTRYPOINT": self.entrypoint, "CMD": self.cmd,
        }

    def error(self, command: Any, what: str, hint: str | None = None) -> ContainerfileError:
        keyword = command.cmd.upper()
        return ContainerfileError(f"{self.display}:{command.start_line}: {keyword}: {what}",
                                  hint=hint, file=self.display, line=command.start_line,
                                  step=keyword)

    def instruction(self, command: Any) -> Instruction:
        keyword = command.cmd.upper()
        handler = self.handlers.get(keyword)
        if handler is None:
            raise self.error(command, "instruction not supported by rootseed",
                             "supported: " + ", ".join(SUPPORTED))
        return handler(command)

    def common(self, command: Any) -> dict[str, Any]:
        return {"line": command.start_line, "original": command.original}

    def flags(self, command: Any, allowed: Sequence[str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for flag in command.flags:
            name, eq, value = flag[2:].partition("=")
            if name not in allowed or not eq:
                shown = flag if len(flag) < 60 else flag[:57] + "..."
                if name in allowed:
                    raise self.error(command, f"flag --{name} needs a value (--{name}=...)")
                raise self.error(command, f"flag {shown} not supported by rootseed",
                                 "supported flags here: "
                                 + (", ".join(f"--{a}" for a in allowed) or "none"))
            if name in values:
                raise self.error(command, f"flag --{name} given twice")
            values[name] = value
        return values

    def no_flags(self, command: Any) -> None:
        self.flags(command, ())

    def no_heredocs(self, command: Any) -> None:
        if command.heredocs:
            raise self.error(command, "heredocs are only supported in RUN, COPY and ADD")

    def pairs(self, command: Any) -> tuple[tuple[str, str], ...]:
        values = command.value
        if not values or len(values) % 2:
            raise self.error(command, "expected KEY=VALUE pairs")
        return tuple((values[i], values[i + 1]) for i in range(0, len(values), 2))

    def from_(self, command: Any) -> From:
        self.no_heredocs(command)
        flags = self.flags(command, ("platform",))
        value = list(command.value)
        name: str | None = None
        if len(value) == 3 and value[1].lower() == "as":
            name = value[2].lower()
            if not re.fullmatch(r"[a-z][a-z0-9._-]*", name):
                raise self.error(command, f"invalid stage name {value[2]!r}",
                                 "stage names start with a letter: letters, digits, . _ -")
        elif len(value) != 1:
            raise self.error(command, "expected FROM [--platform=P] IMAGE [AS NAME]")
        return From(image=value[0], platform=flags.get("platform"), name=name,
                    **self.common(command))

    def arg(self, command: Any) -> Arg:
        self.no_heredocs(command)
        self.no_flags(command)
        args: list[tuple[str, str | None]] = []
        if not command.value:
            raise self.error(command, "expected ARG NAME[=default]")
        for word in command.value:
            name, eq, default = word.partition("=")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise self.error(command, f"invalid ARG name {name!r}")
            args.append((name, default if eq else None))
        return Arg(args=tuple(args), **self.common(command))

    def env(self, command: Any) -> Env:
        self.no_heredocs(command)
        self.no_flags(command)
        return Env(pairs=self.pairs(command), **self.common(command))

    def label(self, command: Any) -> Label:
        self.no_heredocs(command)
        self.no_flags(command)
        return Label(pairs=self.pairs(command), **self.common(command))

    def single(self, command: Any, what: str) -> str:
        self.no_heredocs(command)
        self.no_flags(command)
        if len(command.value) != 1:
            raise self.error(command, f"expected exactly one {what}")
        return str(command.value[0])

    def workdir(self, command: Any) -> Workdir:
        return Workdir(path=self.single(command, "path"), **self.common(command))

    def user(self, command: Any) -> User:
        return User(user=self.single(command, "user"), **self.common(command))

    def shell(self, command: Any) -> Shell:
        self.no_heredocs(command)
        self.no_flags(command)
        if not command.json or not command.value:
            raise self.error(command, 'SHELL needs the JSON form, e.g. SHELL ["/bin/sh", "-c"]')
        return Shell(argv=tuple(command.value), **self.common(command))

    def heredocs(self, command: Any, words: Sequence[str]) -> tuple[Heredoc, ...]:
        """Heredocs of the instruction, with chomp/expand taken from how they were written."""
        markers = [m for w in words for m in _HEREDOC_ANY.finditer(w)]
        docs: list[Heredoc] = []
        for doc in command.heredocs:
            marker = next((m for m in markers if m.group(4) == doc.name), None)
            chomped = marker is not None and marker.group(2) == "-"
            quoted = marker is not None and marker.group(3) != ""
            content = chomp(doc.content) if chomped else doc.content
            docs.append(Heredoc(name=doc.name, content=content, chomp=chomped,
                                expand=not quoted, fd=doc.file_descriptor))
            if marker is not None:
                markers.remove(marker)
        return tuple(docs)

    def run(self, command: Any) -> Run:
        flags = self.flags(command, ("network",))
        network = flags.get("network")
        if network not in (None, "none", "default"):
            raise self.error(command, f"--network={network} not supported",
                             "builds never have a network: use --network=none or omit it")
        if not command.value:
            raise self.error(command, "expected a command")
        heredocs = self.heredocs(command, command.value)
        if heredocs and command.json:
            raise self.error(command, "heredocs need the shell form of RUN")
        return Run(command=tuple(command.value), shell_form=not command.json,
                   heredocs=heredocs, network=network, **self.common(command))

    def copy(self, command: Any) -> Copy:
        is_add = command.cmd.upper() == "ADD"
        flags = self.flags(command, ("chmod", "chown") if is_add else ("from", "chmod", "chown"))
        words = list(command.value)
        if len(words) < 2:
            raise self.error(command, "expected at least one source and a destination")
        docs = list(self.heredocs(command, words[:-1]))
        sources: list[str | Heredoc] = []
        for word in words[:-1]:
            match = HEREDOC_WORD.match(word)
            if match and docs and docs[0].name == match.group(4):
                sources.append(docs.pop(0))
            else:
                sources.append(word)
        if docs:
            raise self.error(command, "heredoc markers must be separate source arguments")
        if flags.get("from") == "":
            raise self.error(command, "--from needs a stage, image or context name")
        cls = Add if is_add else Copy
        return cls(sources=tuple(sources), dest=words[-1], from_=flags.get("from"),
                   chmod=flags.get("chmod"), chown=flags.get("chown"), **self.common(command))

    def exec_or_shell(self, command: Any) -> tuple[tuple[str, ...], bool]:
        self.no_heredocs(command)
        self.no_flags(command)
        return tuple(command.value), not command.json

    def entrypoint(self, command: Any) -> Entrypoint:
        argv, shell_form = self.exec_or_shell(command)
        return Entrypoint(argv=argv, shell_form=shell_form, **self.common(command))

    def cmd(self, command: Any) -> Cmd:
        argv, shell_form = self.exec_or_shell(command)
        return Cmd(argv=argv, shell_form=shell_form, **self.common(command))
