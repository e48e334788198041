"""Red-team: a DDC re-run's working directory through a stage's top-level host symlink.

``Diverse.m2_step`` builds a fresh sandbox root in which the stage's top-level symlinks
are recreated as they are (so they resolve inside the sandbox). The step's working
directory (the stage's WORKDIR: hostile) was then created with ``Path.mkdir(parents=True)``
on the *host* path ``root/<workdir>``: through a recreated absolute symlink
(``/evil -> /some/host/dir``) that made directories on the host.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hostile import Canaries
from rootseed.crosscheck import Status
from rootseed.crosscheck.compilers import find_compilers
from rootseed.crosscheck.ddc import Diverse
from rootseed.crosscheck.mesoplanet import replay_mesoplanet
from rootseed.crosscheck.steps import command_step
from rootseed.engine.api import StageTree
from rootseed.errors import RootseedError
from test_crosscheck_ddc import archives


@pytest.mark.parametrize("workdir", ["/evil/made-on-the-host", "/evil"])
def test_workdir_through_a_stage_symlink_is_not_created_on_the_host(tmp_path: Path,
                                                                    workdir: str) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    found, missing = find_compilers(("gcc",))
    if not found:
        pytest.skip("needs gcc in /usr/bin")
    canaries = Canaries(tmp_path)
    stage = tmp_path / "stage"
    (stage / "out").mkdir(parents=True)
    os.symlink(str(canaries.dir), stage / "evil")  # absolute, at the top level
    (stage / "out" / "x.M1").write_bytes(b"chain output\n")
    step = command_step("cc", 1, ["./M2", "-f", "x.c", "-o", "/out/x.M1"], workdir)
    assert step.output == "/out/x.M1"
    (tmp_path / "work").mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        diverse = Diverse(pool, archives(tmp_path), found, missing, tmp_path / "work",
                          tmp_path / "logs")
        try:
            checks = diverse.m2_step(step, StageTree(stage))
        except RootseedError:  # a clear, typed error (the directory is not in the sandbox)
            checks = []
    assert all(c.status is not Status.IDENTICAL for c in checks)
    canaries.assert_unchanged()
    assert not (canaries.dir / "made-on-the-host").exists()


def test_mesoplanet_rerun_workdir_through_a_stage_symlink_stays_off_the_host(
        tmp_path: Path) -> None:
    """The same for crosscheck's M2-Mesoplanet rerun root (crosscheck.mesoplanet)."""
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    canaries = Canaries(tmp_path)
    stage = tmp_path / "stage"
    (stage / "bin").mkdir(parents=True)
    (stage / "bin" / "M2-Mesoplanet").write_bytes(b"#!/bin/false\n")
    os.symlink(str(canaries.dir), stage / "evil")
    step = command_step("cc", 1, ["/bin/M2-Mesoplanet", "-f", "x.c", "-o", "/bin/x"],
                        "/evil/made-on-the-host")
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "rerun.log"
    try:
        checks = replay_mesoplanet(step, StageTree(stage), {"PATH": "/bin"}, work, log)
    except RootseedError:
        checks = []
    assert all(c.status is not Status.IDENTICAL for c in checks)
    canaries.assert_unchanged()
    assert not (canaries.dir / "made-on-the-host").exists()
