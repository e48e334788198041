"""A warm rebuild does only what it needs: no overlay namespace (engine/lazyoverlay.py) and
no second validation of a provenance statement whose exact bytes passed before
(engine/statements.py). What each memo may and may not skip is attacked in
tests/security/test_warm_memo_attack.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import rootseed.provenance.validate as validate
from hostile import HostileTree
from rootseed.engine import lazyoverlay
from rootseed.engine.copyexec import CopyExecutor
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.executor import OverlayExecutor
from rootseed.sandbox.overlay import OverlayUnavailable

IMAGE = "test-plain"


def plain(tmp_path: Path, data: bytes = b"data\n") -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": data})
    return tree


def builder(tree: HostileTree, out: Path | None = None) -> Builder:
    from rootseed.tree import Tree

    return Builder(Tree.load(tree.root), cache_dir=tree.cache, out=out or tree.out,
                   mirrors=[tree.mirror], offline=True)


def namespace(b: Builder) -> lazyoverlay.LazyNamespace | None:
    ns = b.executor.ns if isinstance(b.executor, OverlayExecutor) else None
    return ns if isinstance(ns, lazyoverlay.LazyNamespace) else None


def test_a_warm_rebuild_starts_no_overlay_namespace(tmp_path: Path) -> None:
    tree = plain(tmp_path)
    with builder(tree) as b:
        first = b.build([IMAGE], BuildOptions(progress=False))[-1]
        assert namespace(b) is None  # no memo yet: probed at once
    with builder(tree, tmp_path / "out2") as b:  # warm, into a fresh out/
        warm = b.build([IMAGE], BuildOptions(progress=False))[-1]
        ns = namespace(b)
        assert ns is not None and not ns.started
    assert warm.cached and warm.manifest_digest == first.manifest_digest
    # a step to run starts it (probe first), and the build works as before
    (tree.root / "test" / "plain" / "f").write_bytes(b"other\n")
    with builder(tree) as b:
        changed = b.build([IMAGE], BuildOptions(progress=False))[-1]
        ns = namespace(b)
        assert ns is not None and ns.started
    assert not changed.cached and changed.manifest_digest != first.manifest_digest


def test_overlay_that_stopped_working_fails_once_then_falls_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = plain(tmp_path)
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
    (tree.root / "test" / "plain" / "f").write_bytes(b"other\n")  # a step must run

    def refused(scratch: Path) -> Any:
        raise OverlayUnavailable("overlayfs in a user namespace is refused here: test")

    monkeypatch.setattr(lazyoverlay, "probe", refused)
    with builder(tree) as b, pytest.raises(OverlayUnavailable):
        b.build([IMAGE], BuildOptions(progress=False))
    assert not (tree.cache / "overlay-probe.json").exists()  # forgotten
    with builder(tree) as b:  # auto: copies, as on any machine without overlay
        b.build([IMAGE], BuildOptions(progress=False))
        assert isinstance(b.executor, CopyExecutor)


def test_a_statement_is_validated_once_per_exact_bytes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = validate.validate_statement

    def counted(statement: Any, *, where: str = "statement") -> None:
        calls.append(where)
        real(statement, where=where)

    monkeypatch.setattr(validate, "validate_statement", counted)
    tree = plain(tmp_path)
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
    assert len(calls) == 1
    for out in ("out2", "out3", "out"):  # fresh out/s and the same one: no validation
        with builder(tree, tmp_path / out) as b:
            b.build([IMAGE], BuildOptions(progress=False))
    assert len(calls) == 1
    (tree.root / "test" / "plain" / "f").write_bytes(b"other\n")  # another statement
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
    assert len(calls) == 2


def test_a_package_is_planned_once_unless_a_stage_starts_from_an_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rootseed.engine.planner as planner

    tree = plain(tmp_path)
    tree.package("child", "FROM evil/test-plain\nCOPY g /g\n", files={"g": b"g\n"})
    calls: list[str] = []
    real = planner.plan_package

    def counted(package: Any, **kw: Any) -> Any:
        calls.append(package.name)
        return real(package, **kw)

    monkeypatch.setattr(planner, "plan_package", counted)
    with builder(tree) as b:
        results = {r.package: r for r in b.build(["test-child"], BuildOptions(progress=False))}
    # test-plain starts from scratch: one plan; test-child from test-plain's image: the
    # second plan reads that image's configuration (ENV, WORKDIR, USER)
    assert calls == ["test-plain", "test-child", "test-child"]
    assert set(results) == {"test-plain", "test-child"}


def test_a_stage_tree_after_a_warm_rebuild_is_mounted_on_demand(tmp_path: Path) -> None:
    """What reads a cached stage's tree (crosscheck, challenge) gets its view: the lazily
    started namespace comes up (probe first) and mounts it."""
    tree = plain(tmp_path)
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
    with builder(tree) as b:
        b.build([IMAGE], BuildOptions(progress=False))
        ns = namespace(b)
        assert ns is not None and not ns.started
        found = b.stage_tree(IMAGE, "0", BuildOptions(progress=False))
        assert found.view and ns.started
        assert (found.rootfs / "f").read_bytes() == b"data\n"
