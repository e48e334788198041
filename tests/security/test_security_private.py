"""Cache and out are private: a setuid-root file in an image is never reachable by another
local user (issue #12, item 2). Runs as root only (it switches to uid 65534)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostile import BUSYBOX, HostileTree, rootseed
from kinds import cli_error
from rootseed.errors import ErrorKind

SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None or not BUSYBOX.is_file()
    or shutil.which("bwrap") is None,
    reason="needs root (to switch to uid 65534 with setpriv), busybox and bubblewrap")


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    assert SETPRIV is not None
    return subprocess.run([SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
                           *argv], capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def world_traversable() -> Iterator[Path]:
    """A base directory another user can traverse (pytest's own tmp dir is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="rootseed-private-", dir="/var/tmp"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_setuid_file_in_cache_and_out_is_out_of_reach(world_traversable: Path) -> None:
    base = world_traversable
    probe = base / "probe.txt"
    probe.write_text("readable\n")
    os.chmod(probe, 0o644)
    assert as_nobody("cat", str(probe)).returncode == 0  # the test can see a failure

    tree = HostileTree(base)
    d = tree.package("suid", "FROM scratch\nCOPY --chmod=4755 busybox /bin/sh\n"
                     "COPY --chmod=2755 busybox /bin/sgid\n"
                     "COPY --chmod=0644 note.txt /note.txt\n",
                     files={"note.txt": b"secret note\n"})
    shutil.copy2(BUSYBOX, d / "busybox")
    # as if created by an older rootseed or by hand: world-readable roots are fixed
    tree.cache.mkdir(mode=0o755)
    tree.out.mkdir(mode=0o755)
    os.chmod(tree.cache, 0o755)
    os.chmod(tree.out, 0o755)
    proc = tree.build("test-suid")
    assert proc.returncode == 0, proc.stderr

    for root in (tree.cache, tree.out):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
    setuid = [p for p in tree.cache.rglob("*") if p.is_file() and not p.is_symlink()
              and os.lstat(p).st_mode & (stat.S_ISUID | stat.S_ISGID)]
    assert setuid, "the build should have left setuid/setgid files in the cache"
    for path in setuid:
        assert as_nobody(str(path), "id", "-u").returncode != 0, path
        assert as_nobody("cat", str(path)).returncode != 0, path
    for path in [*tree.out.rglob("*"), *tree.cache.rglob("note.txt")]:
        if path.is_file():
            assert as_nobody("cat", str(path)).returncode != 0, path
    assert as_nobody("ls", str(tree.cache)).returncode != 0
    assert as_nobody("ls", str(tree.out)).returncode != 0


def test_a_cache_of_someone_else_is_refused(world_traversable: Path) -> None:
    tree = HostileTree(world_traversable)
    tree.package("a", "FROM scratch\nCOPY note.txt /\n", files={"note.txt": b"hi\n"})
    tree.cache.mkdir()
    os.chown(tree.cache, 65534, 65534)
    proc = tree.build("test-a", extra=("--json",))
    cli_error(proc, ErrorKind.REFUSED, exit_code=1, file=str(tree.cache))


def test_a_shared_directory_is_not_made_private(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    tree = HostileTree(tmp_path)
    tree.package("a", "FROM scratch\nCOPY note.txt /\n", files={"note.txt": b"hi\n"})
    proc = rootseed("build", "test-a", "--tree", str(tree.root), "--cache-dir", str(shared),
                    "--out", str(tree.out), "--offline", "--json")
    cli_error(proc, ErrorKind.REFUSED, exit_code=1, file=str(shared))
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
