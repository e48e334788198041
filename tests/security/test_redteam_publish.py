"""Red-team: the publisher (engine/publish.py) against a hostile ``out/``.

``out/<image>`` planted as a symlink to a host directory, ``out`` itself a symlink, a
hostile provenance.json (garbage, FIFO, huge file, symlink to a host file), a blob
changed between the check and the copy, and two builds publishing one image at once.
Each ends with the host unchanged (canaries: content, mode, link count, inode, mtime)
and either ``out/<image>`` verified or one clear error (exit != 0, no traceback).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree
from kinds import cli_error, raises_kind
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.errors import ErrorKind
from rootseed.oci import read_image
from rootseed.provenance.statement import read_statement
from rootseed.tree import Tree

IMAGE = "test-plain"
CONTAINERFILE = "FROM scratch\nCOPY f /f\n"  # no sandbox: what is attacked is the publisher


def plain(tmp_path: Path) -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.package("plain", CONTAINERFILE, files={"f": b"data\n"})
    return tree


def assert_published(out: Path, digest: str | None = None) -> str:
    """``out/<IMAGE>`` is a real directory holding a verified image and its provenance,
    and nothing half-written lies beside it."""
    image = out / IMAGE
    assert not image.is_symlink() and image.is_dir()
    found = read_image(image).manifest_digest  # every blob re-hashed
    assert digest is None or found == digest
    assert read_statement(image / "provenance.json", package=IMAGE).subject_digest == found
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")], \
        sorted(p.name for p in out.iterdir())
    return found


def test_image_planted_as_a_symlink_to_a_host_dir(tmp_path: Path) -> None:
    host = Canaries(tmp_path)
    tree = plain(tmp_path)
    tree.out.mkdir(mode=0o700)
    (tree.out / IMAGE).symlink_to(host.dir)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert_published(tree.out)
    host.assert_unchanged()


def test_image_planted_as_a_symlink_to_a_host_copy_of_itself(tmp_path: Path) -> None:
    """The link leads to a valid copy of the very image: still nothing is written
    through it (provenance.json included), and out/ gets a directory of its own."""
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    host = Canaries(tmp_path)
    shutil.copytree(tree.out / IMAGE, host.dir / "copy")
    (host.dir / "copy" / "provenance.json").write_text("host's own file\n")
    host.before = host.snapshot()
    shutil.rmtree(tree.out / IMAGE)
    (tree.out / IMAGE).symlink_to(host.dir / "copy")
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert_published(tree.out, digest)
    host.assert_unchanged()


@pytest.mark.parametrize("inner", ["blobs", "blobs/sha256"])
def test_blobs_planted_as_a_symlink_to_a_host_copy_are_replaced(tmp_path: Path,
                                                                inner: str) -> None:
    """Every blob verifies, but through a link to the host: out/ must not keep a
    layout whose blobs live (and may change) outside it."""
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    host = Canaries(tmp_path)
    shutil.copytree(tree.out / IMAGE / inner, host.dir / "blobs")
    host.before = host.snapshot()
    shutil.rmtree(tree.out / IMAGE / inner)
    (tree.out / IMAGE / inner).symlink_to(host.dir / "blobs")
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert_published(tree.out, digest)
    for part in ("blobs", "blobs/sha256"):
        assert not (tree.out / IMAGE / part).is_symlink(), part
    host.assert_unchanged()


def test_cached_image_blobs_linked_to_the_host_never_reach_out(tmp_path: Path) -> None:
    """The cache is hostile too: its image's blobs/sha256 replaced by a link to a host
    copy (every blob still verifies). out/ must not get the link."""
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    shutil.rmtree(tree.out / IMAGE)
    [cached] = [p for p in (tree.cache / "builds").glob("*/image/blobs/sha256")]
    host = Canaries(tmp_path)
    shutil.copytree(cached, host.dir / "blobs")
    host.before = host.snapshot()
    shutil.rmtree(cached)
    cached.symlink_to(host.dir / "blobs")
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr  # the cached image is written again
    assert "writing it again" in proc.stderr  # words: a warning for people (it has no kind)
    assert_published(tree.out, digest)
    assert not (tree.out / IMAGE / "blobs" / "sha256").is_symlink()
    assert not cached.is_symlink()
    host.assert_unchanged()


@pytest.mark.parametrize("extra", ["link", "fifo", "file"])
def test_only_the_layout_itself_is_published_from_the_cache(tmp_path: Path,
                                                            extra: str) -> None:
    """Files planted in the cached image beside its layout (a link to the host, a FIFO,
    junk) verify as nothing: they must not reach out/ (nor hang or crash the copy)."""
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    listing = sorted(str(p.relative_to(tree.out / IMAGE)) for p in (tree.out / IMAGE).rglob("*"))
    shutil.rmtree(tree.out / IMAGE)
    [cached] = list((tree.cache / "builds").glob("*/image"))
    host = Canaries(tmp_path)
    for where in (cached / "planted", cached / "blobs" / "sha256" / "planted"):
        if extra == "link":
            where.symlink_to(host.dir)
        elif extra == "fifo":
            os.mkfifo(where)
        else:
            where.write_text("junk\n")
    proc = tree.build("test-plain", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_published(tree.out, digest)
    assert sorted(str(p.relative_to(tree.out / IMAGE))
                  for p in (tree.out / IMAGE).rglob("*")) == listing
    host.assert_unchanged()


def test_a_link_put_beside_the_image_in_out_is_removed(tmp_path: Path) -> None:
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    listing = sorted(str(p.relative_to(tree.out / IMAGE)) for p in (tree.out / IMAGE).rglob("*"))
    host = Canaries(tmp_path)
    (tree.out / IMAGE / "blobs" / "sha256" / "ssh").symlink_to(host.dir)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert "holds more than the image" in proc.stderr  # words: a warning for people
    assert_published(tree.out, digest)
    assert sorted(str(p.relative_to(tree.out / IMAGE))
                  for p in (tree.out / IMAGE).rglob("*")) == listing
    host.assert_unchanged()


def test_out_itself_a_symlink_to_a_host_dir_is_refused(tmp_path: Path) -> None:
    host = Canaries(tmp_path)
    (host.dir / IMAGE).mkdir()  # a host directory named like the image
    (host.dir / IMAGE / "notes").write_text("mine\n")
    host.before = host.snapshot()
    tree = plain(tmp_path)
    tree.out.symlink_to(host.dir)
    proc = tree.build("test-plain", extra=("--json",))
    error = cli_error(proc, ErrorKind.REFUSED)
    assert str(tree.out) in error["message"]  # words: names the link, for people
    host.assert_unchanged()


@pytest.mark.parametrize("kind", ["directory", "file", "fifo"])
def test_a_foreign_entry_named_like_the_image_is_not_replaced(tmp_path: Path,
                                                              kind: str) -> None:
    """``--out`` pointed at a directory of one's own: an entry that is no image layout
    is someone's data, never removed to make room (nor opened, if it is a FIFO)."""
    tree = plain(tmp_path)
    tree.out.mkdir(mode=0o700)
    mine = tree.out / IMAGE
    if kind == "directory":
        mine.mkdir()
        (mine / "thesis.tex").write_text("years of work\n")
    elif kind == "file":
        mine.write_text("years of work\n")
    else:
        os.mkfifo(mine)
    before = os.lstat(mine)
    proc = tree.build("test-plain", extra=("--json",), timeout=120)
    error = cli_error(proc, ErrorKind.PUBLISH, exit_code=1)
    assert str(mine) in error["message"]  # words: names the entry kept, for people
    after = os.lstat(mine)
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (
        before.st_ino, before.st_mode, before.st_mtime_ns)
    if kind != "fifo":
        text = (mine / "thesis.tex" if kind == "directory" else mine).read_text()
        assert text == "years of work\n"


def test_leftovers_of_a_killed_publisher_are_swept_without_following_links(
        tmp_path: Path) -> None:
    """A publisher killed (SIGKILL, power loss) between its copy and the rename leaves a
    temporary copy in out/; the next publish removes it, a planted link as a link."""
    host = Canaries(tmp_path)
    tree = plain(tmp_path)
    tree.out.mkdir(mode=0o700)
    partial = tree.out / f".{IMAGE}.0123456789ab.partial"
    (partial / "blobs").mkdir(parents=True)
    (partial / "blobs" / "half").write_bytes(b"half a blob")
    old = tree.out / ".other-image.aaaaaaaaaaaa.old"
    old.symlink_to(host.dir)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert_published(tree.out)  # nothing but the image: the leftovers are gone
    host.assert_unchanged()


def fifo(path: Path) -> None:
    os.mkfifo(path)


def garbage(path: Path) -> None:
    path.write_text('{"_type": "https://in-toto.io/Statement/v1", "subject": []}')


def huge(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: a read of it all would take 64 MiB


def directory(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize("plant", [fifo, garbage, huge, directory, "symlink"])
def test_hostile_provenance_in_out_is_rewritten(tmp_path: Path,
                                                plant: Callable[[Path], None] | str) -> None:
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    host = Canaries(tmp_path)
    statement = tree.out / IMAGE / "provenance.json"
    statement.unlink()
    if plant == "symlink":
        statement.symlink_to(host.public)
    else:
        assert callable(plant)
        plant(statement)
    proc = tree.build("test-plain", timeout=120)  # a FIFO read would block: the timeout
    assert proc.returncode == 0, proc.stderr
    assert_published(tree.out, digest)
    host.assert_unchanged()


def builder(tree: HostileTree, cache: str) -> Builder:
    return Builder(Tree.load(tree.root), cache_dir=tree.base / cache, out=tree.out,
                   mirrors=[tree.mirror], offline=True)


def test_a_blob_changed_between_the_check_and_the_copy_is_never_published(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached layout passes its check, then a blob in it changes before the copy
    (the window an attacker with access to the cache would aim at): the copy is read
    back before it takes its name, so out/ never holds it."""
    tree = plain(tmp_path)
    import rootseed.engine.publish as publish

    real = publish._copy_files

    def swap_then_copy(src: Path, dest: Path, files: list[str]) -> None:
        blobs = sorted((src / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
        victim = blobs[-1]  # the layer
        os.chmod(victim, 0o644)
        victim.write_bytes(b"swapped" + victim.read_bytes()[7:])
        real(src, dest, files)

    monkeypatch.setattr(publish, "_copy_files", swap_then_copy)
    with builder(tree, "cache") as b, raises_kind(ErrorKind.PUBLISH, package="test-plain"):
        b.build(["test-plain"], BuildOptions(progress=False))
    assert not (tree.out / IMAGE).exists()
    assert not [p for p in tree.out.iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    with builder(tree, "cache") as b:  # the damaged cached image is found and rewritten
        result = b.build(["test-plain"], BuildOptions(progress=False))[-1]
    assert_published(tree.out, result.manifest_digest)


def test_two_builds_publish_one_image_at_once(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Two builders (caches of their own) publish into one out/ at the same moment: both
    find no ``out/<image>`` and reach the rename together unless the publisher keeps
    them apart (a barrier at the rename makes the race certain)."""
    tree = plain(tmp_path)
    meet = threading.Barrier(2)
    real = os.replace

    def meet_then_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                          **fds: int | None) -> None:
        if Path(dst) == tree.out / IMAGE and Path(src).name.endswith(".partial"):
            with contextlib.suppress(threading.BrokenBarrierError):
                meet.wait(timeout=3)  # with the publisher's lock, the other never comes
        real(src, dst, **fds)

    monkeypatch.setattr(os, "replace", meet_then_replace)
    results: dict[str, str | BaseException] = {}

    def build(cache: str) -> None:
        try:
            with builder(tree, cache) as b:
                results[cache] = b.build(["test-plain"], BuildOptions(progress=False))[-1] \
                    .manifest_digest
        except BaseException as e:
            results[cache] = e

    threads = [threading.Thread(target=build, args=(f"cache{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    digests = set(results.values())
    assert len(digests) == 1 and all(isinstance(d, str) for d in digests), results
    assert_published(tree.out, str(digests.pop()))


def test_a_blob_changed_in_out_is_reported_and_written_again(tmp_path: Path) -> None:
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    blob = max((tree.out / IMAGE / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    os.chmod(blob, 0o644)
    blob.write_bytes(b"swapped" + blob.read_bytes()[7:])
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    # words: a warning for people (it has no kind) that names the blob
    assert "writing it again" in proc.stderr and blob.name in proc.stderr
    assert_published(tree.out, digest)


def test_two_processes_with_caches_of_their_own_publish_into_one_out(tmp_path: Path) -> None:
    """The same race as above between processes (whether they meet at the rename is up
    to the machine; the out/ lock must hold either way)."""
    tree = plain(tmp_path)
    procs = [subprocess.Popen(
        [sys.executable, "-m", "rootseed", "build", "test-plain", "--tree", str(tree.root),
         "--cache-dir", str(tmp_path / f"cache{i}"), "--out", str(tree.out), "--offline"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert_published(tree.out)


def test_rootseeds_own_records_beside_the_image_are_kept(tmp_path: Path) -> None:
    """crosscheck.json and challenge.json describe this exact image: building it again
    keeps them (no warning); a link under such a name is still never kept."""
    tree = plain(tmp_path)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = assert_published(tree.out)
    (tree.out / IMAGE / "crosscheck.json").write_text('{"package":"test-plain"}\n')
    (tree.out / IMAGE / "challenge.json").write_text('{"verdict":"identical"}\n')
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert "holds more than the image" not in proc.stderr  # words: no warning for people
    assert_published(tree.out, digest)
    assert (tree.out / IMAGE / "crosscheck.json").read_text() == '{"package":"test-plain"}\n'
    assert (tree.out / IMAGE / "challenge.json").read_text() == '{"verdict":"identical"}\n'
    host = Canaries(tmp_path)
    (tree.out / IMAGE / "challenge.json").unlink()
    (tree.out / IMAGE / "challenge.json").symlink_to(host.dir)
    proc = tree.build("test-plain")
    assert proc.returncode == 0, proc.stderr
    assert "holds more than the image (challenge.json)" in proc.stderr  # words: a warning
    assert not os.path.lexists(tree.out / IMAGE / "challenge.json")
    host.assert_unchanged()
