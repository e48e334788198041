"""The planner against BuildKit's rules (moby/buildkit, frontend/dockerfile).

Each case names the BuildKit function that implements the rule (in
``dockerfile2llb/convert.go`` unless said otherwise) and, where there is one, the
BuildKit integration test whose Dockerfile it follows (``frontend/dockerfile/*_test.go``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from kinds import raises_kind
from rootseed.containerfile import parse_string
from rootseed.errors import ErrorKind
from rootseed.plan import (
    ContextPath,
    FetchPath,
    ImagePath,
    ImageRef,
    ImageSettings,
    InlineFile,
    Plan,
    PlanError,
    PlannedArg,
    PlannedCmd,
    PlannedCopy,
    PlannedEntrypoint,
    PlannedRun,
    PlannedWorkdir,
    Platform,
    Scratch,
    StagePath,
    StageRef,
    plan,
)
from rootseed.plan.planner import DEFAULT_PATH

I386 = Platform("linux", "386")


def planned(text: str, *, args: Mapping[str, str] | None = None, target: str | None = None,
            platform: Platform = I386, all_stages: bool = False,
            images: Mapping[str, ImageSettings] | None = None) -> Plan:
    return plan(parse_string(text), build_args=args, platform=platform, target=target,
                all_stages=all_stages, base_images=images)


def runs(p: Plan, stage: int | None = None) -> list[PlannedRun]:
    s = p.target_stage if stage is None else p.get(stage)
    return [x for x in s.steps if isinstance(x, PlannedRun)]


def run_env(p: Plan, n: int = 0, stage: int | None = None) -> dict[str, str]:
    return dict(runs(p, stage)[n].env)


@dataclass(frozen=True)
class EnvCase:
    rule: str  # the BuildKit function (and test) this case follows
    text: str
    expected: dict[str, str | None]  # name → value in the first RUN's environment (None: absent)
    args: dict[str, str] = field(default_factory=dict)


ENV_CASES = [
    EnvCase("buildMetaArgs + dispatchArg (dockerfile_args_test.go testMultiArgs)",
            'ARG a1="foo bar" a2=box\nARG a3="$a2-foo"\nFROM busy$a2 AS build\n'
            'ARG a3 a4="123 456" a1\nRUN echo -n "$a1:$a3:$a4" > /out\n',
            {"a1": "foo bar", "a3": "box-foo", "a4": "123 456", "a2": None}),
    EnvCase("buildMetaArgs: a default sees earlier global ARGs (testQuotedMetaArgs)",
            'ARG a1="box"\nARG a2="$a1-foo"\nFROM busy$a1 AS build\nARG a2\n'
            'ARG a3="bar-$a2"\nRUN echo -n $a3 > /out\n',
            {"a3": "bar-box-foo", "a2": "box-foo", "a1": None}),
    EnvCase("dispatchArg: a global ARG is invisible in a stage until re-declared",
            "ARG G=global\nFROM scratch\nRUN a\nARG G\nRUN b\n", {"G": None}),
    EnvCase("dispatchArg: a --build-arg wins over the default (testBuiltinArgs)",
            "FROM busybox\nARG FOO\nARG BAR\nARG BAZ=bazcontent\nRUN x\n",
            {"FOO": "foocontents", "BAR": None, "BAZ": "bazcontent", "UNDECLARED": None},
            {"FOO": "foocontents", "UNDECLARED": "x"}),
    EnvCase("dispatchArg: a --build-arg wins over the global default too",
            "ARG V=1\nFROM scratch\nARG V\nRUN x\n", {"V": "2"}, {"V": "2"}),
    EnvCase("dispatchArg + llb.State.AddEnv: an ARG value replaces an ENV of that name",
            "FROM scratch\nENV X=env\nARG X=arg\nRUN x\n", {"X": "arg"}),
    EnvCase("dispatchEnv / EnvCommand.Expand: ENV overrides an earlier ARG",
            "FROM scratch\nARG X=arg\nENV X=env\nRUN x\n", {"X": "env"}),
    EnvCase("EnvCommand.Expand: one ENV's pairs all see the values from before it",
            "FROM scratch\nENV A=old\nENV A=new B=$A\nRUN x\n", {"A": "new", "B": "old"}),
    EnvCase("dispatchArg: an ARG default sees ENV and earlier ARGs",
            "FROM scratch\nENV E=e\nARG A=a-$E\nARG B=${A}-b\nRUN x\n",
            {"A": "a-e", "B": "a-e-b"}),
    EnvCase("testDefaultEnvWithArgs: ${x:-default} and ${x%%pattern} in ENV",
            'ARG image=idlebox\nFROM busy${image#idle} AS build\nARG my_arg\n'
            'ENV my_arg "my_arg=${my_arg:-def_val}"\nENV my_trimmed_arg "${my_arg%%e*}"\n'
            "RUN x\n", {"my_arg": "my_arg=def_val", "my_trimmed_arg": "my_arg=d"}),
    EnvCase("testDefaultEnvWithArgs: an empty --build-arg is set but empty",
            'FROM busybox\nARG my_arg\nENV my_arg "my_arg=${my_arg:-def_val}"\n'
            'ENV my_trimmed_arg "${my_arg%%e*}"\nRUN x\n',
            {"my_arg": "my_arg=def_val", "my_trimmed_arg": "my_arg=d"}, {"my_arg": ""}),
    EnvCase("testDefaultEnvWithArgs: override",
            'FROM busybox\nARG my_arg\nENV my_arg "my_arg=${my_arg:-def_val}"\n'
            'ENV my_trimmed_arg "${my_arg%%e*}"\nRUN x\n',
            {"my_arg": "my_arg=override", "my_trimmed_arg": "my_arg=ov"},
            {"my_arg": "override"}),
    EnvCase("dispatchState.init: FROM <stage> inherits its ARG values and ENV",
            "FROM scratch AS base\nARG V\nENV E=e\nFROM base AS child\nRUN x\n",
            {"V": "1", "E": "e"}, {"V": "1"}),
    EnvCase("dispatchState.init: inheritance is transitive",
            "FROM scratch AS a\nARG V=v\nFROM a AS b\nFROM b AS c\nRUN x\n", {"V": "v"}),
    EnvCase("COPY --from does not inherit anything from the stage it copies from",
            "FROM scratch AS a\nARG V=v\nENV E=e\nFROM scratch\nCOPY --from=a / /\nRUN x\n",
            {"V": None, "E": None}),
    EnvCase("defaultArgs: platform ARGs need a declaration in a stage (testBuiltinArgs)",
            "FROM scratch\nRUN x\nARG TARGETARCH\nARG BUILDPLATFORM\nRUN y\n",
            {"TARGETARCH": None, "BUILDPLATFORM": None}),
    EnvCase("dispatchStages: every stage has PATH (system.DefaultPathEnv)",
            "FROM scratch\nRUN x\n", {"PATH": DEFAULT_PATH}),
    EnvCase("dispatchStages: an ENV PATH replaces the default",
            "FROM scratch\nENV PATH=/bin:$PATH\nRUN x\n", {"PATH": "/bin:" + DEFAULT_PATH}),
    EnvCase("nonEnvArgs: BUILDKIT_SBOM_SCAN_* never enter the environment",
            "FROM scratch\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nRUN x\n",
            {"BUILDKIT_SBOM_SCAN_STAGE": None}),
]


@pytest.mark.parametrize("case", ENV_CASES, ids=[c.rule for c in ENV_CASES])
def test_run_environment(case: EnvCase) -> None:
    env = run_env(planned(case.text, args=case.args))
    for name, value in case.expected.items():
        assert env.get(name) == value, name


def test_declared_platform_args_take_the_package_platform() -> None:
    # defaultArgs: BUILD* and TARGET* from the platform; TARGETSTAGE the target's name
    text = ("FROM scratch AS one\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT "
            "BUILDPLATFORM BUILDARCH TARGETSTAGE\nRUN x\n")
    env = run_env(planned(text))
    assert (env["TARGETPLATFORM"], env["TARGETOS"], env["TARGETARCH"], env["TARGETVARIANT"],
            env["BUILDPLATFORM"], env["BUILDARCH"], env["TARGETSTAGE"]) == (
        "linux/386", "linux", "386", "", "linux/386", "386", "one")
    amd = run_env(planned(text, platform=Platform("linux", "amd64")))
    assert amd["TARGETARCH"] == "amd64"
    arm = run_env(planned(text, platform=Platform("linux", "arm64", "v8")))
    assert (arm["TARGETPLATFORM"], arm["TARGETVARIANT"]) == ("linux/arm64/v8", "v8")
    # defaultArgs: a --build-arg of the same name overrides a platform ARG
    assert run_env(planned(text, args={"TARGETARCH": "x"}))["TARGETARCH"] == "x"


def test_targetstage() -> None:
    # testTargetStageNameArg: TARGETSTAGE is the --target, else the last stage's name,
    # else "default"; visible once declared
    text = ("FROM scratch AS base\nRUN first\nARG TARGETSTAGE\nRUN second\n"
            "FROM scratch AS foo\nCOPY --from=base / /\nFROM scratch\nCOPY --from=base / /\n")
    p = planned(text, target="foo")
    assert "TARGETSTAGE" not in run_env(p, 0, stage=0)
    assert run_env(p, 1, stage=0)["TARGETSTAGE"] == "foo"
    assert run_env(planned(text), 1, stage=0)["TARGETSTAGE"] == "default"
    named = text + "FROM scratch AS final\nCOPY --from=base / /\n"
    assert run_env(planned(named), 1, stage=0)["TARGETSTAGE"] == "final"


def test_global_args_in_from() -> None:
    # testGlobalArg: a global ARG in FROM, overridden by --build-arg
    assert planned("ARG tag=nosuchtag\nFROM busybox:${tag}\n").get(0).base == \
        ImageRef("busybox:nosuchtag")
    assert planned("ARG tag=nosuchtag\nFROM busybox:${tag}\n", args={"tag": "latest"}
                   ).get(0).base == ImageRef("busybox:latest")
    # testPlatformArgsImplicit: FROM sees the platform ARGs without a declaration
    p = planned("FROM scratch AS build-linux\nFROM build-${TARGETOS}\n")
    assert p.get(1).base == StageRef(0, "build-linux")
    # FROM lines see only the global scope, never a stage's ARGs
    q = planned("FROM scratch AS a\nARG X=a\nFROM ${X:-scratch}\n")
    assert q.get(1).base == Scratch()


@pytest.mark.parametrize(("text", "args", "needle"), [
    # testGlobalArgErrors: ${FOO:?msg} in a global default
    ('ARG FOO=${FOO:?"custom error"}\nFROM busybox\n', {}, "FOO: custom error"),
    # testArgDefaultExpansion: ${FOO:?msg} in a stage ARG default
    ('FROM scratch\nARG FOO\nARG BAR=${FOO:?"foo missing"}\n', {}, "FOO: foo missing"),
    # buildDispatchStates: "base name (...) should not be blank"
    ("ARG IMG\nFROM ${IMG}\n", {}, "should not be blank"),
    # toCommand: "variable expansion is not supported for --from"
    ("ARG B=x\nFROM scratch AS x\nFROM scratch\nCOPY --from=${B} / /\n", {},
     "not supported for --from"),
    # findStateByIndex: "invalid stage index"
    ("FROM scratch\nCOPY --from=3 / /\n", {}, "invalid stage index 3"),
    # resolveTarget: "target stage ... could not be found"
    ("FROM scratch AS a\n", {"--target": "nope"}, "could not be found"),
    ("FROM scratch AS a\n", {"--target": "1"}, "no stage '1'"),
    # validateCircularDependency
    ("FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n", {},
     "cycle"),
    ("FROM scratch\nADD https://example.org/x.tar.gz /\n", {}, "remote source"),
    ("FROM scratch\nCOPY --chmod=u+x a /\n", {}, "--chmod=u+x"),
])
def test_plan_errors(text: str, args: dict[str, str], needle: str) -> None:
    target = args.pop("--target", None)
    with raises_kind(ErrorKind.PLAN, PlanError) as info:
        planned(text, args=args, target=target)
    # words: BuildKit's reasons, named for people (the kind is checked above)
    assert needle in info.value.message
    assert "Containerfile" in info.value.message  # the file (and line, where there is one)


def test_question_mark_passes_with_a_value() -> None:
    # testArgDefaultExpansion: with FOO or BAR given, the same file plans
    text = 'FROM scratch\nARG FOO\nARG BAR=${FOO:?"foo missing"}\nRUN x\n'
    assert run_env(planned(text, args={"FOO": "123"}))["BAR"] == "123"
    assert run_env(planned(text, args={"BAR": "123"}))["BAR"] == "123"


def test_stage_references() -> None:
    text = ("FROM scratch AS first\n"
            "FROM later AS early\n"  # addState: FROM sees only earlier stages → an image
            "FROM first AS second\n"
            "COPY --from=LATER /a /a\n"  # findStateByName: any stage, case-insensitive
            "COPY --from=0 /b /b\n"  # findStateByIndex
            "COPY --from=stagex/core-gcc /c /c\n"
            "COPY --from=fetch x.tar /d\n"
            "FROM scratch AS later\n")
    p = planned(text, all_stages=True)
    assert p.get(1).base == ImageRef("later")
    assert p.get(2).base == StageRef(0, "first")
    sources = [s.sources[0] for s in p.get(2).steps if isinstance(s, PlannedCopy)]
    assert sources == [StagePath(StageRef(3, "later"), "a"), StagePath(StageRef(0, "first"), "b"),
                       ImagePath(ImageRef("stagex/core-gcc"), "c"), FetchPath("x.tar")]
    assert p.images() == ((ImageRef("later"), 2), (ImageRef("stagex/core-gcc"), 6))


def test_only_reachable_stages_are_planned() -> None:
    # resolveReachableStages: an unreachable stage is not dispatched (its error does not
    # fail the build); check plans every stage
    text = ("FROM scratch AS broken\nARG X=${NOPE:?boom}\n"
            "FROM scratch AS used\nRUN x\nFROM used\nCOPY --from=used / /\n")
    p = planned(text)
    assert [s.index for s in p.stages] == [1, 2] and p.reachable() == (1, 2)
    with raises_kind(ErrorKind.PLAN, PlanError, line=2, step="ARG"):  # the unreachable stage
        planned(text, all_stages=True)
    assert [s.index for s in planned(text, target="USED").stages] == [1]


def test_workdir_and_copy_destinations() -> None:
    # dispatchWorkdir (system.NormalizeWorkdir) and pathRelativeToWorkingDir
    text = ("FROM scratch\nENV D=/opt\nWORKDIR $D\nWORKDIR sub/../x\n"
            "COPY a .\nCOPY a b\nCOPY a b/\nCOPY a /abs/./c\nCOPY a b c/\nRUN pwd\n")
    p = planned(text)
    steps = p.target_stage.steps
    assert [s.path for s in steps if isinstance(s, PlannedWorkdir)] == ["/opt", "/opt/x"]
    copies = [s for s in steps if isinstance(s, PlannedCopy)]
    assert [(c.dest, c.dest_is_dir) for c in copies] == [
        ("/opt/x/", True), ("/opt/x/b", False), ("/opt/x/b/", True), ("/abs/c", False),
        ("/opt/x/c/", True)]
    assert copies[0].sources == (ContextPath("a"),)
    assert runs(p)[0].workdir == "/opt/x"
    assert p.target_stage.final.workdir == "/opt/x"


def test_copy_sources_are_typed() -> None:
    text = ("FROM scratch\nARG X_SOURCE\nADD fetch/${X_SOURCE} .\nCOPY ./fetch /f\n"
            "COPY /dir/../file* /g/\n")
    copies = [s for s in planned(text, args={"X_SOURCE": "x-1.tar.gz"}).target_stage.steps
              if isinstance(s, PlannedCopy)]
    assert copies[0].sources == (FetchPath("x-1.tar.gz"),) and copies[0].unpack
    assert copies[1].sources == (FetchPath("."),) and not copies[1].unpack
    assert copies[2].sources == (ContextPath("file*"),)


def test_copy_heredoc_expansion() -> None:
    # testHeredocVarSubstitution: unquoted delimiters expand (quotes kept), quoted do not;
    # SourcesAndDest.ExpandRaw with SkipProcessQuotes
    text = ("FROM busybox\nARG name=world\n"
            "COPY <<EOF /dest/c1\nHello ${name}!\nEOF\n"
            "COPY <<'EOF' /dest/c2\nHello ${name}!\nEOF\n"
            "COPY <<\"EOF\" /dest/c3\nHello ${name}!\nEOF\n"
            "COPY <<EOF /dest/q1\nHello '${name}'!\nEOF\n"
            "COPY <<EOF /dest/q2\nHello \"${name}\"!\nEOF\n")
    contents = [s.sources[0] for s in planned(text).target_stage.steps
                if isinstance(s, PlannedCopy)]
    assert contents == [InlineFile("EOF", "Hello world!\n"), InlineFile("EOF", "Hello ${name}!\n"),
                        InlineFile("EOF", "Hello ${name}!\n"), InlineFile("EOF", "Hello 'world'!\n"),
                        InlineFile("EOF", 'Hello "world"!\n')]


def test_run_heredocs() -> None:
    # dispatchRun: one heredoc → its text to the shell; with #! → a file at /dev/pipes
    # (still started through the shell: withShell); several → appended to the command
    text = ("FROM busybox\n"
            "RUN <<EOF\necho hi\nEOF\n"
            "RUN <<EOF\n#!/bin/awk -f\nBEGIN { print 1 }\nEOF\n"
            "RUN cat <<A > /a; cat <<B > /b\none\nA\ntwo\nB\n"
            "RUN <<-EOF\n\techo tabs\n\tEOF\n")
    r = runs(planned(text))
    assert r[0].argv == ("/bin/sh", "-c", "echo hi\n") and r[0].script is None
    assert r[1].argv == ("/bin/sh", "-c", "/dev/pipes/EOF")
    assert r[1].script == InlineFile("EOF", "#!/bin/awk -f\nBEGIN { print 1 }\n")
    assert r[2].argv == ("/bin/sh", "-c", "cat <<A > /a; cat <<B > /b\none\nA\ntwo\nB")
    assert r[3].argv == ("/bin/sh", "-c", "echo tabs\n")  # <<- removes leading tabs


def test_shell_forms() -> None:
    # dispatchShell + withShell/defaultShell: SHELL changes the shell form of RUN, CMD and
    # ENTRYPOINT; the exec form is used as written and nothing in RUN is expanded
    text = ("FROM scratch AS a\nARG X=1\nRUN echo $X\nRUN [\"/bin/echo\", \"$X\"]\n"
            'SHELL ["/usr/bin/kaem", "--verbose", "--file"]\nRUN pass1.kaem\n'
            "CMD run me\nFROM a\nRUN inherited\nENTRYPOINT [\"/e\"]\n")
    p = planned(text)
    first = runs(p, 0)
    assert first[0].argv == ("/bin/sh", "-c", "echo $X")
    assert first[1].argv == ("/bin/echo", "$X")
    assert first[2].argv == ("/usr/bin/kaem", "--verbose", "--file", "pass1.kaem")
    cmd = next(s for s in p.get(0).steps if isinstance(s, PlannedCmd))
    assert cmd.argv == ("/usr/bin/kaem", "--verbose", "--file", "run me")
    # dispatchState.init: the image config, SHELL included, carries into FROM <stage>
    assert runs(p, 1)[0].argv[0] == "/usr/bin/kaem"
    entry = next(s for s in p.get(1).steps if isinstance(s, PlannedEntrypoint))
    assert entry.argv == ("/e",)
    assert p.get(1).final.cmd is None  # an ENTRYPOINT resets an inherited CMD


def test_base_image_config() -> None:
    # dispatchStages: a stage starts from its image's ENV, WORKDIR and USER
    image = ImageSettings(env=(("PATH", "/usr/bin"), ("CC", "gcc")), workdir="/src")
    p = planned("FROM stagex/core-gcc\nRUN make\nCOPY a b\n",
                images={"stagex/core-gcc": image})
    env = run_env(p)
    assert (env["PATH"], env["CC"]) == ("/usr/bin", "gcc")
    assert runs(p)[0].workdir == "/src"
    copy = next(s for s in p.target_stage.steps if isinstance(s, PlannedCopy))
    assert copy.dest == "/src/b"
    # without the image's config (the dependency scan): scratch-like, PATH default
    assert run_env(planned("FROM stagex/core-gcc\nRUN make\n"))["PATH"] == DEFAULT_PATH


def test_image_env_holds_env_only() -> None:
    # dispatchArg adds to the state only; dispatchEnv also to the image config
    p = planned("FROM scratch\nARG A=1\nENV E=2\n")
    assert dict(p.target_stage.final.env) == {"PATH": DEFAULT_PATH, "E": "2"}
    assert dict(p.target_stage.scope)["A"] == "1"


@pytest.mark.parametrize(("text", "args", "expected"), [
    # reportUnmatchedVariables: names with no value, less the ARGs declared in scope
    ("FROM scratch\nCOPY x-${NOPE} /\n", {}, {"NOPE"}),
    ("FROM scratch\nARG D\nCOPY x-${D} /\n", {}, set()),
    ("FROM scratch\nARG D\nCOPY x-${D} /\n", {"D": "1"}, set()),
    ("FROM scratch\nCOPY x-${D} /\n", {"D": "1"}, {"D"}),  # a build arg needs its ARG
    ("FROM scratch AS base\nARG V\nFROM base\nCOPY m-${V} /\n", {}, set()),  # inherited
    ("FROM scratch AS base\nARG V\nFROM scratch\nCOPY m-${V} /\n", {}, {"V"}),
    ("ARG G=1\nFROM scratch\nENV X=$G\n", {}, {"G"}),  # a global needs re-declaring
    ("FROM scratch\nENV X=${U:-dflt}\n", {}, {"U"}),
    ("FROM scratch\nRUN echo $NOT_EXPANDED\n", {}, set()),  # RUN is never expanded
])
def test_undeclared_names(text: str, args: dict[str, str], expected: set[str]) -> None:
    step = planned(text, args=args).target_stage.steps[-1]
    assert step.undeclared == expected


def test_arg_values_recorded() -> None:
    p = planned("ARG G=g\nFROM scratch\nARG G\nARG N\nARG D=d\n", args={"N": "n"})
    values = [v for s in p.target_stage.steps if isinstance(s, PlannedArg) for v in s.values]
    assert values == [("G", "g"), ("N", "n"), ("D", "d")]
    assert ("G", "g") in p.global_scope


def test_stage_platform() -> None:
    # buildDispatchStates: FROM --platform (expanded with the global scope);
    # dispatchState.init: a FROM <stage> takes its base's platform
    p = planned("FROM --platform=linux/amd64 scratch AS a\nFROM a\nFROM --platform=$BUILDPLATFORM "
                "scratch\n", all_stages=True)
    assert [str(s.platform) for s in p.stages] == ["linux/amd64", "linux/amd64", "linux/386"]
