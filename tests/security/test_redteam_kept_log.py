"""Red-team: the build's step log crosscheck reads for M2-Mesoplanet's spawned commands.

The log is in the cache (hostile). A planted symlink in its place, to a host file holding
what looks like M2-Mesoplanet's commands, must not be followed: crosscheck then has no
log (and reruns the step), reads nothing of the host and changes nothing there.
"""

from __future__ import annotations

import os
from pathlib import Path

from hostile import Canaries
from rootseed.crosscheck.run import _build_log
from rootseed.crosscheck.steps import command_step
from rootseed.engine.stage import step_log_name


class _Builder:
    """What ``_build_log`` uses of a Builder: the log root and a step's log in it."""

    def __init__(self, logs: Path) -> None:
        self.log_root = logs

    def step_log(self, package: str, stage: str, line: int) -> Path:
        return self.log_root / package / step_log_name(stage, line)


def test_a_planted_log_link_is_not_followed(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    bait = canaries.dir / "commands.log"
    bait.write_text("hex2 --file /etc/passwd --output ../x86/bin/tool\n")
    canaries.before = canaries.snapshot()
    logs = tmp_path / "cache" / "logs"
    (logs / "pkg").mkdir(parents=True)
    step = command_step("extra-tool", 12, ["../x86/bin/M2-Mesoplanet", "-f", "a.c", "-o",
                                           "../x86/bin/tool"], "/stage0/mescc-tools-extra")
    builder = _Builder(logs)
    log = builder.step_log("pkg", step.stage, step.line)
    os.symlink(bait, log)
    assert _build_log(builder, "pkg", step) is None  # type: ignore[arg-type]
    # a link to the directory above, then a real log: only the real one is read
    log.unlink()
    (logs / "pkg").rmdir()
    os.symlink(canaries.dir, logs / "pkg")
    assert _build_log(builder, "pkg", step) is None  # type: ignore[arg-type]
    (logs / "pkg").unlink()
    (logs / "pkg").mkdir()
    log.write_text("M1 --file x --output y\n")
    assert _build_log(builder, "pkg", step) == "M1 --file x --output y\n"  # type: ignore[arg-type]
    canaries.assert_unchanged()
