"""crosscheck of M2-Mesoplanet steps on the temporaries the build kept (``--dirty-mode``).

The stage here is made by the Python tools themselves (so no upstream source is needed):
what is tested is the plumbing: the build log's spawned commands, the files they name in
the stage, the program compared with the step's own output, a planted byte found at its
own temporary, and every case where nothing usable was kept (the caller reruns then).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from rootseed.containerfile import parse_string
from rootseed.crosscheck.ahead import _remove_when_done
from rootseed.crosscheck.mesoplanet import replay_kept
from rootseed.crosscheck.model import ArtifactCheck, Status
from rootseed.crosscheck.replay import run_tool
from rootseed.crosscheck.steps import Step, rerunnable, stage_steps
from rootseed.plan import Platform, plan

WORKDIR = "/stage0/mescc-tools-extra"
TMP = "../x86/artifact"
#: what M2-Mesoplanet prints before each program it spawns (as in the build's step log)
COMMANDS = [
    f"M2-Planet --file {TMP}/M2-Mesoplanet-000000 --output {TMP}/M2-Planet-000000 "
    "--architecture x86 --debug",
    f"blood-elf --file {TMP}/M2-Planet-000000 --little-endian --output {TMP}/blood-elf-000000",
    f"M1 --file ../M2libc/x86/x86_defs.M1 --file {TMP}/M2-Planet-000000 --little-endian "
    f"--architecture x86 --file {TMP}/blood-elf-000000 --output {TMP}/M1-macro-000000",
    f"hex2 --file ../M2libc/x86/ELF-x86-debug.hex2 --file {TMP}/M1-macro-000000 --output "
    "../x86/bin/tool --architecture x86 --base-address 0x8048000 --little-endian",
]
LOG = "".join(f"# starting a spawn\n{c} \n" for c in COMMANDS)


def mesoplanet_step(*flags: str) -> Step:
    text = f"""FROM scratch AS extra-tool
WORKDIR {WORKDIR}
RUN ["../x86/bin/M2-Mesoplanet", {"".join(f'"{f}", ' for f in flags)}"--operating-system", \
"Linux", "--architecture", "x86", "-f", "tool.c", "-o", "../x86/bin/tool"]
"""
    (step,) = stage_steps(plan(parse_string(text), platform=Platform("linux", "386"),
                               all_stages=True).get(0))
    assert rerunnable(step)
    return step


def kept_stage(root: Path) -> Path:
    """A stage root as an extra-<tool> stage with kept temporaries holds it; the files
    the chain's programs wrote are made here by the Python tools, run from the workdir."""
    s0 = root / "stage0"
    for d in ("mescc-tools-extra", "x86/artifact", "x86/bin", "M2libc/x86"):
        (s0 / d).mkdir(parents=True)
    (s0 / "M2libc/x86/x86_defs.M1").write_text("DEFINE LOAD_IMMEDIATE_eax B8\n"
                                               "DEFINE RETURN C3\n")
    (s0 / "M2libc/x86/ELF-x86-debug.hex2").write_text(":ELF_base\n7F 45 4C 46\n:ELF_text\n")
    art = s0 / "x86/artifact"
    (art / "M2-Mesoplanet-000000").write_text("int main() { return 1; }\n")
    (art / "M2-Planet-000000").write_text(":FUNCTION_main\nLOAD_IMMEDIATE_eax %1\nRETURN\n"
                                          ":ELF_data\n:ELF_end\n")
    here = s0 / "mescc-tools-extra"
    for command in COMMANDS[1:]:
        words = command.split()
        args = [str(here / w) if w.startswith("..") else w for w in words[1:]]
        assert run_tool(words[0], args) == (0, ""), command
    return root


def by_tool(checks: list[ArtifactCheck]) -> dict[str, ArtifactCheck]:
    return {c.tool: c for c in checks}


def test_the_kept_temporaries_are_replayed_and_the_program_compared(tmp_path: Path) -> None:
    root = kept_stage(tmp_path / "root")
    checks = replay_kept(mesoplanet_step("--dirty-mode"), root, LOG)
    assert checks is not None
    found = by_tool(checks)
    assert [c.tool for c in checks] == ["M2-Planet", "blood-elf", "M1", "hex2"]
    assert found["M2-Planet"].status is Status.NOT_COVERED  # no DDC check given here
    for tool in ("blood-elf", "M1", "hex2"):
        assert found[tool].status is Status.IDENTICAL, found[tool].detail
        assert "kept by the build's --dirty-mode" in found[tool].detail
    assert found["M1"].artifact == "/stage0/x86/artifact/M1-macro-000000"
    assert found["hex2"].artifact == "/stage0/x86/bin/tool"  # the step's own program
    assert found["hex2"].program == "/stage0/x86/bin/M2-Mesoplanet"


def test_a_planted_byte_in_a_kept_temporary_is_reported_there(tmp_path: Path) -> None:
    root = kept_stage(tmp_path / "root")
    target = root / "stage0/x86/artifact/M1-macro-000000"
    data = bytearray(target.read_bytes())
    data[3] ^= 0x01
    target.write_bytes(bytes(data))
    checks = replay_kept(mesoplanet_step("--dirty-mode"), root, LOG)
    assert checks is not None
    found = by_tool(checks)
    assert found["M1"].status is Status.DIFFERENT and found["M1"].offset == 3
    assert found["M1"].artifact == "/stage0/x86/artifact/M1-macro-000000"
    assert found["blood-elf"].status is Status.IDENTICAL


def test_a_compile_check_gets_the_kept_m2_planet_command_and_the_stage(tmp_path: Path
                                                                       ) -> None:
    root = kept_stage(tmp_path / "root")
    seen: list[tuple[list[str], Path]] = []

    def compile_check(step: Step, command: list[str], chain_root: Path) -> ArtifactCheck:
        seen.append((list(command), chain_root))
        return ArtifactCheck(step.stage, step.line, "x", "DDC", Status.IDENTICAL)

    checks = replay_kept(mesoplanet_step("--dirty-mode"), root, LOG,
                         compile_check=compile_check)  # type: ignore[arg-type]
    assert checks is not None and by_tool(checks)["DDC"].status is Status.IDENTICAL
    assert seen == [(COMMANDS[0].split(), root)]


def test_nothing_usable_kept_means_none(tmp_path: Path) -> None:
    root = kept_stage(tmp_path / "root")
    step = mesoplanet_step("--dirty-mode")
    # the build did not keep its temporaries
    assert replay_kept(mesoplanet_step(), root, LOG) is None
    # no log of the spawned commands, or not all of them
    assert replay_kept(step, root, "") is None
    assert replay_kept(step, root, LOG.replace("M1 --file", "M1x --file")) is None
    # hex2 wrote another program than the step's
    assert replay_kept(step, root, LOG.replace("../x86/bin/tool ", "../x86/bin/other ")) \
        is None
    # a temporary the commands name is not in the stage
    (root / "stage0/x86/artifact/blood-elf-000000").unlink()
    assert replay_kept(step, root, LOG) is None


def test_a_stage_copy_is_removed_once_its_checks_are_done(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    (copy / "a" / "b").mkdir(parents=True)
    (copy / "a" / "b" / "f").write_bytes(b"x")
    gate = threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures: list[Future[list[ArtifactCheck]]] = [
            pool.submit(lambda: []), pool.submit(lambda: (gate.wait(10), [])[1])]
        _remove_when_done(futures, copy)
        futures[0].result()
        assert copy.is_dir()  # one check still reads it
        gate.set()
    assert not copy.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    _remove_when_done([], empty)
    assert not empty.exists()
