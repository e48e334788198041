"""crosscheck, the pure parts: which RUNs are replayable, their files, comparisons."""

from __future__ import annotations

from pathlib import Path

import pytest

from clirun import rootseed
from rootseed.containerfile import parse_string
from rootseed.crosscheck import (
    ArtifactCheck,
    Report,
    Status,
    Step,
    first_difference,
    stage_steps,
)
from rootseed.crosscheck.mesoplanet import rerun_argv, spawned_commands
from rootseed.crosscheck.run import needed_stages
from rootseed.crosscheck.steps import Args, command_step, file_args, rerunnable
from rootseed.plan import Platform, plan


def steps(text: str, stage: int = 0) -> list[Step]:
    planned = plan(parse_string(text), platform=Platform("linux", "386"), all_stages=True)
    return stage_steps(planned.get(stage))


@pytest.mark.parametrize(("a", "b", "want"), [
    (b"", b"", None), (b"abc", b"abc", None), (b"abc", b"abd", 2), (b"abc", b"xbc", 0),
    (b"abc", b"ab", 2), (b"", b"a", 0), (bytes(1000) + b"x", bytes(1001), 1000),
])
def test_first_difference(a: bytes, b: bytes, want: int | None) -> None:
    assert first_difference(a, b) == want
    assert first_difference(b, a) == want


def test_file_args_by_kind() -> None:
    assert file_args(Args.IN_OUT, ["in", "out"]) == ([0], 1)
    assert file_args(Args.OUT_INS, ["out", "a", "b"]) == ([1, 2], 0)
    assert file_args(Args.FLAGS, ["--architecture", "x86", "-f", "a", "--file", "b",
                                  "--base-address", "0x1", "-o", "o"]) == ([3, 5], 9)


def test_steps_resolve_paths_against_the_workdir_and_map_tools() -> None:
    s = steps("""FROM scratch AS s
WORKDIR /stage0
RUN ["./seeds/hex0-seed", "./x86/hex0_x86.hex0", "./x86/artifact/hex0"]
WORKDIR x86
RUN ["./artifact/M1-0", "--architecture", "x86", "-f", "../lib/defs.M1", "-f", "a.M1", "-o", "a.hex2"]
RUN ["./artifact/catm", "out.hex2", "../ELF.hex2", "a.hex2"]
RUN ["./artifact/M2", "-f", "x.c", "-o", "x.M1"]
""")
    assert [(x.tool, x.output) for x in s] == [
        ("hex0", "/stage0/x86/artifact/hex0"), ("M1", "/stage0/x86/a.hex2"),
        ("catm", "/stage0/x86/out.hex2"), (None, "/stage0/x86/x.M1")]
    assert s[0].program == "/stage0/seeds/hex0-seed"
    assert s[0].inputs == ("/stage0/x86/hex0_x86.hex0",)
    assert s[1].inputs == ("/stage0/lib/defs.M1", "/stage0/x86/a.M1")
    assert s[2].inputs == ("/stage0/ELF.hex2", "/stage0/x86/a.hex2")
    assert [x.covered for x in s] == [True, True, True, False]
    assert "C compiler" in s[3].reason


def test_a_later_write_or_an_unknown_program_makes_a_step_unsafe() -> None:
    s = steps("""FROM scratch
RUN ["/bin/hex0", "/a.hex0", "/a"]
RUN ["/bin/hex0", "/b.hex0", "/a.hex0"]
RUN ["/bin/hex0", "/c.hex0", "/c"]
COPY c.hex0 /
RUN ["/bin/catm", "/d", "/d"]
""")
    assert not s[0].covered and "/a.hex0 is written again" in s[0].reason
    assert s[1].covered
    assert not s[2].covered and "/c.hex0 is written again" in s[2].reason
    assert not s[3].covered and "reads the file it writes" in s[3].reason
    t = steps("""FROM scratch
RUN ["/bin/hex0", "/a.hex0", "/a"]
RUN ["/bin/frobnicate"]
RUN ["/bin/hex0", "/b.hex0", "/b"]
""")
    assert not t[0].covered and "later instruction" in t[0].reason
    assert "no Python implementation of frobnicate" in t[1].reason
    assert t[2].covered
    u = steps('FROM scratch\nRUN echo hi\n')
    assert not u[0].covered and "shell-form" in u[0].reason


def test_workdir_comes_from_the_plan() -> None:
    # WORKDIR with variables is planned (expanded) like any other: the step is covered
    s = steps('FROM img\nARG D=/w\nRUN ["/bin/hex0", "a", "b"]\nWORKDIR $D/x\n'
              'RUN ["/bin/hex0", "a", "b"]\n')
    assert s[0].covered and s[0].output == "/b"
    assert s[1].covered and s[1].output == "/w/x/b"


def test_needed_stages_follow_from_and_copy_from() -> None:
    cf = plan(parse_string("""FROM scratch AS a
FROM scratch AS unused
RUN ["/x"]
FROM a AS b
FROM scratch AS c
COPY --from=b /x /x
COPY --from=rs/other /y /y
"""))
    assert [s.label for s in needed_stages(cf)] == ["a", "b", "c"]


def check(status: Status, seed: bool = False) -> ArtifactCheck:
    return ArtifactCheck("s", 1, "/a", "hex0", status, offset=3 if status is Status.DIFFERENT
                         else None, chain_size=4, python_size=4, detail="d", seed=seed)


def test_report_ok_counts_and_bootstrap_lines() -> None:
    good = Report("p", [check(Status.IDENTICAL, seed=True), check(Status.IDENTICAL),
                        check(Status.NOT_COVERED)], seed_pinned=True)
    assert good.ok
    assert good.counts_line() == "2 artifacts identical, 1 not covered"
    lines = good.bootstrap_lines()
    assert lines[0] == {"identical": True, "summary": "d", "seed": True}
    assert lines[1]["identical"] and lines[1]["summary"] == good.counts_line()
    bad = Report("p", [check(Status.IDENTICAL, seed=True), check(Status.DIFFERENT)],
                 seed_pinned=True)
    assert not bad.ok
    assert "1 different" in bad.counts_line()
    assert any("differs at offset 3" in ln["summary"] for ln in bad.bootstrap_lines())
    assert not all(ln["identical"] for ln in bad.bootstrap_lines())
    no_seed = Report("p", [check(Status.IDENTICAL)], seed_pinned=True)
    assert not no_seed.ok and not no_seed.bootstrap_lines()[0]["identical"]
    assert Report("p", [check(Status.IDENTICAL)]).ok
    assert not Report("p", [check(Status.NOT_COVERED)]).ok  # nothing compared
    assert not Report("p", [check(Status.IDENTICAL), check(Status.ERROR)]).ok


LOG = """reading file: <stdio.h>
# starting M2-Planet build
M2-Planet --file ../a/M2-Mesoplanet-000000 --output ../a/M2-Planet-000000 --architecture x86 --debug 
# starting Blood-elf stub generation
blood-elf --file ../a/M2-Planet-000000 --little-endian --output ../a/blood-elf-000000 
# starting M1 assembly
M1 --file ../L/x86_defs.M1 --file ../L/libc-full.M1 --file ../a/M2-Planet-000000 --little-endian --architecture x86 --file ../a/blood-elf-000000 --output ../a/M1-macro-000000 
hex2 --file ../L/ELF-x86-debug.hex2 --file ../a/M1-macro-000000 --output ../bin/x.crosscheck-rerun --architecture x86 --base-address 0x8048000 --little-endian 
M1 is great
"""  # noqa: W291


def test_mesoplanet_spawned_commands_and_rerun_argv() -> None:
    commands = spawned_commands(LOG)
    assert [c[0] for c in commands] == ["M2-Planet", "blood-elf", "M1", "hex2"]
    assert commands[2][-1] == "../a/M1-macro-000000"
    planned = rerun_argv(("../bin/M2-Mesoplanet", "--architecture", "x86", "-f", "x.c",
                          "-o", "../bin/x"))
    assert planned == (["../bin/M2-Mesoplanet", "--dirty-mode", "--architecture", "x86",
                        "-f", "x.c", "-o", "/.rootseed-rerun/out/x"], "../bin/x")
    assert rerun_argv(("M2-Mesoplanet", "-f", "x.c")) is None
    m1 = command_step("s", 1, commands[2], "/stage0/extra")
    assert m1.covered and m1.tool == "M1" and m1.output == "/stage0/a/M1-macro-000000"
    assert m1.inputs[-1] == "/stage0/a/blood-elf-000000"
    m2 = command_step("s", 1, commands[0], "/stage0/extra")
    assert not m2.covered and m2.output == "/stage0/a/M2-Planet-000000"


def test_mesoplanet_steps_are_rerunnable_unless_unsafe() -> None:
    s = steps('FROM scratch\nWORKDIR /w\n'
              'RUN ["../bin/M2-Mesoplanet", "-f", "x.c", "-o", "../bin/x"]\n')
    assert rerunnable(s[0]) and not s[0].covered
    t = steps('FROM scratch\nRUN ["/bin/M2-Mesoplanet", "-f", "x.c", "-o", "/x"]\n'
              'RUN ["/bin/hex0", "/y", "/x"]\n')
    assert not rerunnable(t[0]) and "written again" in t[0].reason


def test_bootstrap_command_fails_on_a_crosscheck_difference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import rootseed.cli.bootstrap as cli_bootstrap
    from rootseed.bootstrap import BootstrapReport

    def fake(settings: object, *, demo: bool, no_cache: bool,
             crosscheck: object, events: object = None,
             remote: object = None) -> BootstrapReport:
        assert crosscheck is not None  # the command wires the crosscheck in
        report = BootstrapReport("p", demo, "t", "sha256:0", True, 0.0, {}, [], [], [], None)
        report.checks = Report("p", [check(Status.IDENTICAL, seed=True),
                                     check(Status.DIFFERENT)], seed_pinned=True
                               ).bootstrap_lines()
        return report

    monkeypatch.setattr(cli_bootstrap, "bootstrap", fake)
    r = rootseed("bootstrap", "--demo")
    assert r.returncode == 1
    # words: the report says what differs, for people (its --json is test_errors')
    assert "differs at offset 3" in " ".join(r.stderr.split())


def test_cc_x86_is_replayed_and_a_planted_byte_is_reported_at_its_step(tmp_path: Path) -> None:
    from rootseed.crosscheck.replay import replay
    from rootseed.tools.cc_x86 import compile_c

    (s,) = steps("""FROM scratch AS m2
WORKDIR /stage0
RUN ["./x86/artifact/cc_x86", "./x86/artifact/M2-0.c", "./x86/artifact/M2-0.M1"]
""")
    assert s.covered and s.tool == "cc_x86"
    assert s.inputs == ("/stage0/x86/artifact/M2-0.c",)
    assert s.output == "/stage0/x86/artifact/M2-0.M1"
    art = tmp_path / "stage0/x86/artifact"
    art.mkdir(parents=True)
    source = b"int g;\nint main() { char* s = \"hi\"; return g + s[1]; }\n"
    (art / "M2-0.c").write_bytes(source)
    (art / "cc_x86").write_bytes(b"\x7fELF")
    chain = bytearray(compile_c(source))
    (art / "M2-0.M1").write_bytes(bytes(chain))
    (check,) = replay(s, tmp_path)
    assert check.status is Status.IDENTICAL and check.reproduced_by == ("Python cc_x86",)
    chain[40] ^= 0x01
    (art / "M2-0.M1").write_bytes(bytes(chain))
    (check,) = replay(s, tmp_path)
    assert check.status is Status.DIFFERENT and check.offset == 40
    assert (check.stage, check.line, check.artifact) == ("m2", 3, s.output)
