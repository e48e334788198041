"""Stage snapshots in the builder cache and the --jobs slots.

Intermediate stages are cached as directory snapshots (no image); these tests check that a
child stage never changes its base's snapshot, that ``--target`` of an intermediate stage
after a full build is a cache hit giving the same image as building it directly, and that
``--jobs`` slots go to the most urgent waiting stage.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.slots import Slots
from rootseed.oci import unpack_image
from rootseed.tree import Tree

needs_sandbox = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

# `first` writes files; `second` (FROM first) changes them in place, through a hardlink
# and by appending, so a snapshot that shared inodes with a child would change.
CHAIN = """\
FROM rs/bootstrap-base AS first
RUN echo one > /data && ln /data /data-link && echo keep > /keep
FROM first AS second
RUN echo two >> /data-link && echo changed > /keep
FROM scratch
COPY --from=first /data /first-data
COPY --from=second /data /second-data
"""


def _builder(tree: Path, tmp: Path, name: str) -> Builder:
    return Builder(Tree.load(tree), cache_dir=tmp / f"cache-{name}", out=tmp / f"out-{name}")


@needs_sandbox
def test_children_never_change_a_snapshot_and_target_is_a_hit(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, CHAIN)
    quiet = BuildOptions(progress=False)
    full = _builder(tree, tmp_path, "full")
    last = full.build(["core-app"], quiet)[-1]
    unpack_image(last.image, tmp_path / "final")
    assert (tmp_path / "final" / "first-data").read_text() == "one\n"
    assert (tmp_path / "final" / "second-data").read_text() == "one\ntwo\n"

    # after the full build, --target first is served from the cache (nothing runs) ...
    hit = full.build(["core-app"], BuildOptions(target="first", progress=False))[-1]
    assert hit.cached and hit.stages_built == ()
    unpack_image(hit.image, tmp_path / "first")
    assert (tmp_path / "first" / "data").read_text() == "one\n"
    assert (tmp_path / "first" / "keep").read_text() == "keep\n"
    # ... and is byte for byte the image a direct build of that stage gives
    direct = _builder(tree, tmp_path, "direct").build(
        ["core-app"], BuildOptions(target="first", progress=False))[-1]
    assert not direct.cached
    assert direct.manifest_digest == hit.manifest_digest
    # a second --target hit reuses the image written the first time
    again = full.build(["core-app"], BuildOptions(target="first", progress=False))[-1]
    assert again.cached and again.manifest_digest == hit.manifest_digest


@needs_sandbox
def test_an_entry_of_an_older_layout_is_rebuilt(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, CHAIN)
    b = _builder(tree, tmp_path, "x")
    copies = BuildOptions(progress=False, snapshots="copy")  # entries with a rootfs/
    first = b.build(["core-app"], copies)[-1]
    builds = tmp_path / "cache-x" / "builds"
    for entry in builds.iterdir():  # what an older rootseed left: an image, no snapshot
        shutil.rmtree(entry / "rootfs")
    again = b.build(["core-app"], copies)[-1]
    assert not again.cached and again.manifest_digest == first.manifest_digest
    assert all((entry / "rootfs").is_dir() for entry in builds.iterdir())


def _wait_for(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.005)


def test_slots_go_to_the_most_urgent_waiter() -> None:
    slots = Slots(1)
    order: list[str] = []
    gate = threading.Event()

    def job(name: str, priority: float, hold: threading.Event | None = None) -> None:
        with slots.hold(priority):
            order.append(name)
            if hold is not None:
                hold.wait(10)

    holder = threading.Thread(target=job, args=("holder", 0.0, gate))
    holder.start()
    _wait_for(lambda: order == ["holder"], "the holder did not start")
    waiters = []
    for n, (name, prio) in enumerate((("low", 1.0), ("high", 9.0), ("mid", 5.0),
                                      ("mid2", 5.0))):
        waiters.append(threading.Thread(target=job, args=(name, prio)))
        waiters[-1].start()
        _wait_for(lambda n=n: len(slots._waiting) == n + 1, f"{name} did not queue")
    assert order == ["holder"]  # one slot: everyone else waits
    gate.set()
    for t in [holder, *waiters]:
        t.join(10)
    assert order == ["holder", "high", "mid", "mid2", "low"]


def test_slots_never_hand_out_more_than_n() -> None:
    slots = Slots(2)
    busy = most = 0
    lock = threading.Lock()

    def held_job() -> None:
        nonlocal busy, most
        with slots.hold():
            with lock:
                busy += 1
                most = max(most, busy)
            time.sleep(0.02)
            with lock:
                busy -= 1

    threads = [threading.Thread(target=held_job) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert most == 2
