"""Attacks on diverse double-compiling and on the crosscheck report file.

A cached stage is hostile: a top-level symlink pointing at a host directory must resolve
inside the sandbox, never on the host, so a DDC program cannot read (or write) the host's
files through it. A planted ``crosscheck.json`` symlink in the out dir must be replaced,
never followed. The canary (content, mode, link count) must be unchanged.
"""

from __future__ import annotations

import os
import shutil
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rootseed.crosscheck import Status
from rootseed.crosscheck.compilers import find_compilers
from rootseed.crosscheck.ddc import Diverse
from rootseed.crosscheck.model import Report
from rootseed.crosscheck.run import save_report
from rootseed.crosscheck.steps import command_step
from rootseed.engine.api import StageTree
from test_crosscheck_ddc import archives


def _canary(tmp: Path) -> tuple[Path, tuple[bytes, int, int]]:
    host = tmp / "host"
    host.mkdir()
    canary = host / "canary"
    canary.write_text("host data\n")
    canary.chmod(0o600)
    return canary, _state(canary)


def _state(canary: Path) -> tuple[bytes, int, int]:
    st = canary.stat()
    return canary.read_bytes(), stat.S_IMODE(st.st_mode), st.st_nlink


def test_a_stage_symlink_to_the_host_stays_inside_the_sandbox(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    found, missing = find_compilers(("gcc",))
    if not found:
        pytest.skip("needs gcc in /usr/bin")
    canary, before = _canary(tmp_path)
    stage = tmp_path / "stage"
    (stage / "out").mkdir(parents=True)
    os.symlink(str(canary.parent), stage / "evil")  # absolute, at the top level
    # the chain's file equals the canary: a DDC program that read the host file through
    # the link would make this check "identical"
    (stage / "out" / "x.M1").write_bytes(canary.read_bytes())
    step = command_step("cc", 1, ["./M2", "-f", "/evil/canary", "-o", "x.M1"], "/out")
    (tmp_path / "work").mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        diverse = Diverse(pool, archives(tmp_path), found, missing, tmp_path / "work",
                          tmp_path / "logs")
        (check,) = diverse.m2_step(step, StageTree(stage))
    assert check.status is Status.ERROR, check
    assert _state(canary) == before
    assert os.readlink(stage / "evil") == str(canary.parent)  # the stage is unchanged


def test_a_planted_report_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    canary, before = _canary(tmp_path)
    layout = tmp_path / "out" / "pkg"
    layout.mkdir(parents=True)
    os.symlink(canary, layout / "crosscheck.json")
    assert save_report(tmp_path / "out", Report("pkg")) == layout / "crosscheck.json"
    assert not (layout / "crosscheck.json").is_symlink()
    assert _state(canary) == before
    # an out/<package> that is itself a symlink is not written through
    os.symlink(canary.parent, tmp_path / "out" / "other")
    assert save_report(tmp_path / "out", Report("other")) is None
    assert sorted(p.name for p in canary.parent.iterdir()) == ["canary"]
