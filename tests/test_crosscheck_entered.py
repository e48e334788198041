"""The crosscheck's sandboxes (M2-Mesoplanet reruns, the DDC compilers) read a stage kept
as an overlay view by starting in the builder's mount namespace, not by copying the stage
(copying and removing ~20 MB per stage cost about a minute of a cold stage0 bootstrap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rootseed.crosscheck import Status, crosscheck
from rootseed.crosscheck import ahead as ahead_module
from rootseed.crosscheck import run as run_module
from rootseed.crosscheck.ahead import Ahead, Starter
from rootseed.crosscheck.sandboxroot import entered_root, stage_binds
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.sandbox import SandboxSpec
from rootseed.sandbox import run as sandbox_run
from rootseed.sandbox.overlay import OverlayUnavailable, probe
from rootseed.tree import Tree
from test_crosscheck_build import BUSYBOX, MESOPLANET_CONTAINERFILE, by_artifact, make_tree


def _overlay_works(scratch: Path) -> bool:
    try:
        probe(scratch).close()
    except OverlayUnavailable:
        return False
    return True


@pytest.fixture
def overlay(tmp_path: Path) -> None:
    if not BUSYBOX.is_file() or shutil.which("bwrap") is None:
        pytest.skip("needs a static busybox at /usr/bin/busybox and bubblewrap")
    if not _overlay_works(tmp_path / "probe"):
        pytest.skip("overlayfs in a user namespace is refused here (the copy executor "
                    "keeps plain directories: nothing to enter)")


def _cat(root_dir: Path, spec_entered: bool, binds: list[tuple[Path, str]],
         stage_entered: object, log: Path) -> tuple[int, str]:
    code = sandbox_run(SandboxSpec(
        rootfs=root_dir, argv=["/busybox", "cat", "/work/src/four.hex0"],
        env={"PATH": "/bin"}, ro_binds=[*binds, (BUSYBOX, "/busybox")],
        entered=stage_entered if spec_entered else None),  # type: ignore[arg-type]
        log=log)
    return code, log.read_text(errors="replace")


def test_a_sandbox_binds_a_view_from_the_builders_namespace(tmp_path: Path,
                                                            overlay: None) -> None:
    tree = make_tree(tmp_path, "ABCD")
    builder = Builder(Tree.load(tree), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    stage = builder.stage_tree("test-xc", "seed")
    assert stage.view and stage.entered is not None
    wanted = (stage.rootfs / "work" / "src" / "four.hex0").read_text()

    root = tmp_path / "root"
    root.mkdir()
    binds, taken = stage_binds(root, stage)
    assert {"bin", "work"} <= taken
    code, log = _cat(root, True, binds, entered_root(stage, root), tmp_path / "in.log")
    assert code == 0 and log == wanted

    # the same binds from outside the namespace see the empty mount point: the view is
    # not there, which is why the crosscheck used to copy it
    other = tmp_path / "other"
    other.mkdir()
    binds, _ = stage_binds(other, stage)
    code, log = _cat(other, False, binds, None, tmp_path / "out.log")
    assert code != 0 and wanted not in log


def test_crosscheck_reruns_on_views_without_copying(tmp_path: Path, overlay: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The standalone crosscheck and the one started while building: the M2-Mesoplanet
    stand-in is rerun in a sandbox on the view, and no stage is copied."""
    def refuse(*_: object) -> None:
        raise AssertionError("a stage was copied")

    monkeypatch.setattr(run_module, "copy_tree", refuse)
    monkeypatch.setattr(ahead_module, "copy_tree", refuse)
    tree = Tree.load(make_tree(tmp_path, "ABCD", MESOPLANET_CONTAINERFILE))
    builder = Builder(tree, cache_dir=tmp_path / "cache", out=tmp_path / "out")

    starter = Starter("test-xc", lambda: Ahead(builder, "test-xc",
                                               options=BuildOptions(progress=False)))
    builder.build(["test-xc"], BuildOptions(progress=False, events=starter.on_event))
    ahead = starter.started()
    assert ahead is not None and starter.error is None
    early = ahead.finish()
    after = crosscheck(builder, "test-xc")
    for report in (early, after):
        assert [c.stage for c in report.checks].count("driver") == 1
        # the stand-in (a file of the stage, bound from the view) ran in the sandbox
        [log] = Path(report.logs).glob("rerun-*.log")
        assert "stand-in M2-Mesoplanet writing" in log.read_text()
    assert by_artifact(after.checks, "/work/out/hex0").status is Status.IDENTICAL
