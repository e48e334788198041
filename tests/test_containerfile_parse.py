from __future__ import annotations

from pathlib import Path

import pytest

from kinds import raises_kind
from rootseed.containerfile import (
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Heredoc,
    Label,
    Run,
    Shell,
    User,
    Workdir,
    chomp,
    parse_file,
    parse_string,
)
from rootseed.errors import ErrorKind
from rootseed.plan import plan

FULL = """\
# syntax=docker/dockerfile:1
ARG BASE=scratch
ARG VERSION
FROM --platform=linux/386 ${BASE} AS Build
ARG VERSION
ARG A=1 B="two words"
ENV X=$A Y="a b"
ENV LEGACY some value
WORKDIR /src
SHELL ["/bin/sh", "-l", "-c"]
RUN --network=none echo hi \\
  there
RUN ["/bin/busybox", "true"]
RUN <<-EOF
\techo a
\t  echo b
\tEOF
COPY --from=fetch --chmod=0755 --chown=0:0 a.tar /x/
COPY <<EOF1 <<-"EOF2" /dir/
$A
EOF1
\tquoted $A
\tEOF2
ADD fetch/${X_SOURCE} .
LABEL a=b "c d"=e
USER 0:0
FROM stagex/bootstrap-stage0 AS other
COPY --from=build /x /y
COPY --from=stagex/core-busybox . /
FROM other
ENTRYPOINT ["/bin/sh"]
CMD echo hello
"""


def test_every_instruction() -> None:
    cf = parse_string(FULL, display="packages/x/y/Containerfile")
    assert [a.args for a in cf.global_args] == [(("BASE", "scratch"),), (("VERSION", None),)]
    build, other, last = cf.stages
    assert (build.name, build.base, build.platform, build.line) == (
        "build", "${BASE}", "linux/386", 4)
    assert (other.name, other.base, last.name, last.base, last.index) == (
        "other", "stagex/bootstrap-stage0", None, "other", 2)
    kinds = [type(i).__name__ for i in build.instructions]
    assert kinds == ["Arg", "Arg", "Env", "Env", "Workdir", "Shell", "Run", "Run", "Run", "Copy",
                     "Copy", "Add", "Label", "User"]
    i = build.instructions
    assert i[1] == Arg(args=(("A", "1"), ("B", '"two words"')), line=6, original=i[1].original)
    assert isinstance(i[2], Env) and i[2].pairs == (("X", "$A"), ("Y", '"a b"'))
    assert isinstance(i[3], Env) and i[3].pairs == (("LEGACY", "some value"),)
    assert isinstance(i[4], Workdir) and i[4].path == "/src"
    assert isinstance(i[5], Shell) and i[5].argv == ("/bin/sh", "-l", "-c")
    run_shell, run_exec, run_doc = i[6], i[7], i[8]
    assert isinstance(run_shell, Run) and run_shell.shell_form
    assert run_shell.command == ("echo hi   there",) and run_shell.network == "none"
    assert (run_shell.line, run_exec.line, run_doc.line) == (11, 13, 14)
    assert isinstance(run_exec, Run) and not run_exec.shell_form
    assert run_exec.command == ("/bin/busybox", "true")
    assert isinstance(run_doc, Run)
    assert run_doc.heredocs == (Heredoc(name="EOF", content="echo a\n  echo b\n", chomp=True),)
    copy1 = i[9]
    assert isinstance(copy1, Copy) and not isinstance(copy1, Add)
    assert (copy1.from_, copy1.chmod, copy1.chown, copy1.sources, copy1.dest) == (
        "fetch", "0755", "0:0", ("a.tar",), "/x/")
    copy2 = i[10]
    assert isinstance(copy2, Copy)
    assert copy2.sources == (Heredoc(name="EOF1", content="$A\n"),
                             Heredoc(name="EOF2", content="quoted $A\n", chomp=True,
                                     expand=False))
    add = i[11]
    assert isinstance(add, Add) and add.sources == ("fetch/${X_SOURCE}",) and add.dest == "."
    assert isinstance(i[12], Label) and i[12].pairs == (("a", "b"), ('"c d"', "e"))
    assert isinstance(i[13], User) and i[13].user == "0:0"
    ep, cmd = last.instructions
    assert isinstance(ep, Entrypoint) and ep.argv == ("/bin/sh",) and not ep.shell_form
    assert isinstance(cmd, Cmd) and cmd.argv == ("echo hello",) and cmd.shell_form
    assert cf.stage("BUILD") is build and cf.stage("2") is last and cf.stage("nope") is None
    images = plan(cf, all_stages=True).images()
    assert sorted({r.reference for r, _ in images}) == [
        "stagex/bootstrap-stage0", "stagex/core-busybox"]
    images = plan(cf, all_stages=True, build_args={"BASE": "stagex/x"}).images()
    assert images[0][0].reference == "stagex/x"
    assert cf.where(11) == "packages/x/y/Containerfile:11"


def test_chomp_strips_only_leading_tabs() -> None:
    assert chomp("\t\ta\n \tb\n\tc\td\n") == "a\n \tb\nc\td\n"


def test_run_heredoc_variants() -> None:
    cf = parse_string('FROM scratch\nRUN cat <<"EOF" > /f\n$x\nEOF\nRUN 3<<EOF cat\nx\nEOF\n')
    quoted, fd3 = cf.stages[0].instructions
    assert isinstance(quoted, Run) and quoted.command == ('cat <<"EOF" > /f',)
    assert quoted.heredocs == (Heredoc(name="EOF", content="$x\n", expand=False),)
    assert isinstance(fd3, Run) and fd3.heredocs[0].fd == 3


def test_parse_file_and_display(tmp_path: Path) -> None:
    f = tmp_path / "Containerfile"
    f.write_text("FROM scratch\nEXPOSE 80\n")
    with raises_kind(ErrorKind.CONTAINERFILE, file=str(f), line=2, step="EXPOSE") as e:
        parse_file(f)
    # words: the message names the file as shown (display), for people
    assert f"{f}:2: EXPOSE" in e.value.message
    with raises_kind(ErrorKind.CONTAINERFILE, file="pkg/Containerfile", line=2) as e:
        parse_file(f, display="pkg/Containerfile")
    # words: the message names the file as shown (display), for people
    assert e.value.message.startswith("pkg/Containerfile:2: EXPOSE: instruction not supported")
    assert e.value.hint is not None and "COPY" in e.value.hint
    with raises_kind(ErrorKind.CONTAINERFILE):
        parse_file(tmp_path / "missing")


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("FROM scratch\nHEALTHCHECK NONE\n", 2, "HEALTHCHECK: instruction not supported"),
    ("FROM scratch\n\n\nVOLUME /x\n", 4, "VOLUME: instruction not supported"),
    ("FROM scratch\nCOPY --link a b\n", 2, "COPY: flag --link not supported"),
    ("FROM scratch\nCOPY --exclude=x a b\n", 2, "COPY: flag --exclude=x not supported"),
    ("FROM scratch\nADD --from=x a b\n", 2, "ADD: flag --from=x not supported"),
    ("FROM scratch\nADD --checksum=sha256:0 a b\n", 2, "ADD: flag --checksum"),
    ("FROM scratch\nRUN --mount=type=cache,target=/x a\n", 2, "RUN: flag --mount"),
    ("FROM scratch\nRUN --network=host a\n", 2, "RUN: --network=host not supported"),
    ("FROM --foo=1 scratch\n", 1, "FROM: flag --foo=1"),
    ("FROM a b c d\n", 1, "FROM: expected"),
    ("FROM scratch AS 1x\n", 1, "invalid stage name"),
    ("FROM scratch\nCOPY a\n", 2, "COPY: expected at least one source"),
    ("FROM scratch\nSHELL /bin/sh -c\n", 2, "SHELL needs the JSON form"),
    ("FROM scratch\nARG 9x=1\n", 2, "invalid ARG name"),
    ("ENV X=1\nFROM scratch\n", 1, "ENV before the first FROM"),
    ("FROM scratch AS a\nRUN x\nFROM scratch AS A\n", 3, "stage name 'a' is already used"),
    ("FROM scratch\nMAINTAINER me\n", 2, "MAINTAINER"),
])
def test_errors_name_file_line_and_instruction(text: str, line: int, needle: str) -> None:
    with raises_kind(ErrorKind.CONTAINERFILE, file="Containerfile", line=line) as e:
        parse_string(text, display="Containerfile")
    # words: a message for people: where first, then what (the flag or instruction named)
    assert e.value.message.startswith(f"Containerfile:{line}: "), e.value.message
    assert needle in e.value.message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "ARG X=1\n"])
def test_no_stage_is_an_error(text: str) -> None:
    with raises_kind(ErrorKind.CONTAINERFILE):
        parse_string(text)


@pytest.mark.parametrize("text", ["FROM scratch\nRUN <<EOF\nnever closed\n",
                                  "FROM scratch\nENV <<EOF\nx\nEOF\n"])
def test_syntax_error_is_wrapped(text: str) -> None:
    with raises_kind(ErrorKind.CONTAINERFILE):
        parse_string(text)


def test_instructions_are_frozen() -> None:
    cf = parse_string("FROM scratch\nWORKDIR /a\n")
    instruction = cf.stages[0].instructions[0]
    with pytest.raises(AttributeError):
        instruction.line = 3  # type: ignore[misc]
    assert instruction.keyword == "WORKDIR"
