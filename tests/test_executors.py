"""Every executor passes the same tests: the overlay and copy executors rootseed ships,
and a third one written here as the worked example of docs/architecture.md ("A new
executor"): :class:`FreshCopyExecutor` copies the whole snapshot for every action (true
copy-on-write, no layers, nothing cached), in about twenty lines."""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rootseed.engine import fsops
from rootseed.engine.copyexec import CopyExecutor
from rootseed.engine.errors import Cancelled
from rootseed.engine.executor import OverlayExecutor
from rootseed.engine.interface import Executor, LayerResult
from rootseed.engine.layers import layer_digest
from rootseed.engine.ops import ExecOp, FileOp, Op, Root, StepFailed, run_op
from rootseed.engine.reapi import directory_digest, snapshot_digest
from rootseed.engine.refs import CacheLayout, LayerRef
from rootseed.engine.snapshots import Layer, LayerStore, Snapshot, Verifier
from rootseed.errors import ErrorKind
from rootseed.sandbox.overlay import OverlayUnavailable, probe
from rootseed.sandbox.spec import EnteredRoot

BUSYBOX = Path("/usr/bin/busybox")
pytestmark = pytest.mark.skipif(not BUSYBOX.is_file() or shutil.which("bwrap") is None,
                                reason="needs busybox and bubblewrap")


class FreshCopyExecutor:
    """The worked example: an :class:`Executor` that gives every action a fresh full copy
    of its snapshot. Nothing else in the engine had to change to add it."""

    layered = False

    def __init__(self, layout: CacheLayout) -> None:
        self.empty = layout.empty
        self.empty.mkdir(parents=True, exist_ok=True)

    def cached(self, snapshot: Snapshot, key: str) -> LayerResult | None:
        return None

    def execute(self, snapshot: Snapshot, op: Op, key: str, *, work: Path,
                stop: threading.Event | None = None) -> LayerResult:
        tree = work / f"fresh-{secrets.token_hex(6)}"
        fsops.copy_tree(self.view(snapshot), tree)
        run_op(op, Root(tree), stop)
        layer = Layer(tree, layer_digest(tree), LayerRef.work(tree.name[6:]))
        return LayerResult(Snapshot.base(f"fresh:{layer.digest}", (layer,)), layer)

    def view(self, snapshot: Snapshot) -> Path:
        return snapshot.layers[-1].path if snapshot.layers else self.empty

    def entered(self, snapshot: Snapshot) -> EnteredRoot | None:
        return None

    def keep(self, snapshot: Snapshot, entry: Path) -> None:
        fsops.copy_tree(self.view(snapshot), entry / "rootfs")

    def close(self) -> None:
        pass


def _open(kind: str, cache: Path) -> Executor:
    layout = CacheLayout(cache)
    if kind == "copy":
        return CopyExecutor(layout)
    if kind == "fresh":
        return FreshCopyExecutor(layout)
    try:
        ns = probe(layout.work)
    except OverlayUnavailable as e:
        pytest.skip(f"overlay snapshots are not available here: {e.message}")
    return OverlayExecutor(ns, LayerStore(layout, Verifier()))


@pytest.fixture(params=["overlay", "copy", "fresh"])
def executor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Executor]:
    found = _open(str(request.param), tmp_path / "cache")
    try:
        yield found
    finally:
        found.close()


def _base(tmp_path: Path) -> Snapshot:
    """A base image's tree as the store holds one: busybox and a file."""
    root = tmp_path / "image" / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    (root / "etc").mkdir()
    (root / "etc" / "motd").write_text("base\n")
    ref = LayerRef.image("ab" * 32)
    return Snapshot.base(str(ref), (Layer(root, layer_digest(root), ref),))


def _run(tmp_path: Path, script: str, cwd: str = "/") -> ExecOp:
    return ExecOp(argv=("/bin/busybox", "sh", "-c", script), env={"PATH": "/bin"}, cwd=cwd,
                  platform="linux/amd64", log=tmp_path / "logs" / f"{secrets.token_hex(4)}.log",
                  log_root=tmp_path, where="pkg: Containerfile:3: RUN", summary=f"RUN {script}")


def _mkdir(path: str) -> FileOp:
    def apply(root: Path) -> None:
        fsops.makedirs(root, path)
    return FileOp("WORKDIR", apply)


def _work(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return work


def test_actions_change_the_snapshot_not_its_base(executor: Executor, tmp_path: Path) -> None:
    base = _base(tmp_path)
    before = layer_digest(base.layers[0].path)
    work = _work(tmp_path)
    first = executor.execute(base, _mkdir("/srv/app"), "k1", work=work)
    second = executor.execute(first.snapshot, _run(tmp_path, "echo hi > out && rm /etc/motd",
                                                   cwd="/srv/app"), "k2", work=work)
    view = executor.view(second.snapshot)
    assert (view / "srv" / "app" / "out").read_text() == "hi\n"
    assert not (view / "etc" / "motd").exists()
    assert (view / "bin" / "busybox").is_file()
    assert layer_digest(base.layers[0].path) == before  # the base image is untouched
    assert second.snapshot.digest not in (base.digest, first.snapshot.digest)
    # the REAPI input root of the result is the tree as it shows (layers merged)
    plain = tmp_path / "plain"
    fsops.copy_tree(view, plain)
    assert snapshot_digest(executor, second.snapshot) == directory_digest(plain)


def test_a_failing_step_names_itself_and_its_log(executor: Executor, tmp_path: Path) -> None:
    with pytest.raises(StepFailed) as caught:
        executor.execute(_base(tmp_path), _run(tmp_path, "echo broken; exit 3"), "k",
                         work=_work(tmp_path))
    assert caught.value.log.read_text() == "broken\n"
    assert caught.value.status == 3 and caught.value.kind is ErrorKind.STEP_FAILED


def test_a_stopped_step_is_cancelled(executor: Executor, tmp_path: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    try:
        with pytest.raises(Cancelled):
            executor.execute(_base(tmp_path), _run(tmp_path, "sleep 30"), "k",
                             work=_work(tmp_path), stop=stop)
    finally:
        timer.cancel()


def test_a_stage_is_kept_as_its_final_tree(executor: Executor, tmp_path: Path) -> None:
    work = _work(tmp_path)
    base = _base(tmp_path)
    done = executor.execute(base, _run(tmp_path, "echo kept > /kept"), "k", work=work)
    entry = tmp_path / "entry"
    entry.mkdir()
    executor.keep(done.snapshot, entry)
    if executor.layered:  # its layers are cached actions; the entry lists them
        assert executor.cached(base, "k") is not None
        assert (executor.view(done.snapshot) / "kept").read_text() == "kept\n"
    else:
        assert (entry / "rootfs" / "kept").read_text() == "kept\n"
        assert executor.cached(base, "k") is None
