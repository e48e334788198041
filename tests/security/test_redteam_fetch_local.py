"""Red-team: package.toml ``file:`` mirrors that name host files and special files.

* ``file:`` of a regular file that never ends (``/proc/kcore`` claims 128 TiB; here a
  sparse file of 1 TiB in the tree): ``rootseed fetch`` read it to the end, writing it
  into the cache (here: stopped by a file size limit on the process instead of filling
  the disk).
* ``file:///<host file>`` (or a symlink in the tree to one): read, hashed, and the
  mismatch message printed its sha256 and size: a package.toml author reading the CI log
  learnt the hash of any file on the build machine.
* FIFOs, devices, directories, symlinks to them, in the tree or in a ``--mirror`` dir:
  refused without being opened, never a hang.

Every case ends in "could not be fetched", within the time limit, no traceback, nothing
in the source cache, the host canaries unchanged.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree
from kinds import cli_error
from rootseed.errors import ErrorKind

ZERO64 = "0" * 64
FSIZE_LIMIT = 256 << 20  # a run that copies a huge file dies here, not at a full disk


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))


def fetch(tree: HostileTree, *extra: str, timeout: float = 60
          ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rootseed", "fetch", "--tree", str(tree.root), "--cache-dir",
         str(tree.cache), "--offline", "--json", *extra],
        capture_output=True, text=True, check=False, timeout=timeout,
        preexec_fn=_limit_file_size)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def package(tree: HostileTree, mirrors: list[str], *, digest: str = ZERO64,
            file: str = "src.tar") -> Path:
    d = tree.root / "test" / "p"
    d.mkdir(parents=True, exist_ok=True)
    urls = ", ".join(f'"{m}"' for m in mirrors)
    (d / "package.toml").write_text(
        '[package]\nname = "p"\nversion = "1.0"\ndescription = "a"\nlicense = "MIT"\n'
        f'[sources.s]\nhash = "{digest}"\nfile = "{file}"\nmirrors = [{urls}]\n')
    (d / "Containerfile").write_text("FROM scratch\n")
    return d


def cached(tree: HostileTree) -> list[str]:
    d = tree.cache / "sources" / "sha256"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def refused(proc: subprocess.CompletedProcess[str], tree: HostileTree) -> str:
    """A fetch error (``fetch`` asks for ``--json``), nothing cached; its message (which
    says, mirror by mirror, why each was not used) for the caller to check."""
    message = cli_error(proc, ErrorKind.FETCH, exit_code=1)["message"]
    assert cached(tree) == []
    return " ".join(message.split())


def test_a_huge_regular_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    package(tree, ["file:huge.tar"])
    huge = tree.root / "huge.tar"
    with huge.open("wb") as f:
        f.truncate(1 << 40)  # sparse: a regular file that claims 1 TiB, like /proc/kcore
    text = refused(fetch(tree), tree)
    assert f"larger ({1 << 40} bytes) than the" in text


def test_proc_kcore_is_refused(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    package(tree, ["file:///proc/kcore"])  # refused by where it is: present here or not
    assert "a file: mirror must name a file inside the tree" in refused(fetch(tree), tree)


def test_a_host_file_is_neither_read_nor_its_hash_shown(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    (tree.root / "link.tar").symlink_to(canaries.secret)
    package(tree, [canaries.secret.as_uri(), "file:link.tar", "file:../host/secret",
                   "file:///proc/self/environ"])
    text = refused(fetch(tree), tree)
    secret = canaries.secret.read_bytes()
    assert hashlib.sha256(secret).hexdigest() not in text
    assert f"{len(secret)} bytes" not in text
    assert text.count("a file: mirror must name a file inside the tree") == 4, text
    canaries.assert_unchanged()


def test_a_file_in_the_tree_that_does_not_match_shows_no_hash(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    data = b"in the tree, but not what is pinned\n"
    (tree.root / "src.tar").write_bytes(data)
    package(tree, ["file:src.tar"])
    text = refused(fetch(tree), tree)
    assert f"does not match the pinned sha256 {ZERO64}" in text
    assert hashlib.sha256(data).hexdigest() not in text


def test_markup_in_a_mirror_url_is_shown_as_text(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    (tree.root / "a[").mkdir()
    (tree.root / "a[" / "b]c").write_bytes(b"not what is pinned\n")
    package(tree, ["file:a[/b]c"])  # rich markup: a closing tag that matches nothing
    proc = fetch(tree)
    refused(proc, tree)
    # words: what the terminal shows is the test (markup shown as text)
    assert "warning: file:a[/b]c: sha256 mismatch" in " ".join(proc.stderr.split())


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _dir(p: Path) -> None:
    p.mkdir()


def _to_dev_zero(p: Path) -> None:
    p.symlink_to("/dev/zero")


def _to_fifo(p: Path) -> None:
    os.mkfifo(p.with_name("fifo"))
    p.symlink_to("fifo")


SPECIAL: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "not a regular file (a FIFO)"),
    "directory": (_dir, "not a regular file (a directory)"),
    "dev-zero": (_to_dev_zero, "a character device"),
    "symlink-to-fifo": (_to_fifo, "not a regular file (a FIFO)"),
}


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_files_in_the_tree_are_refused_unopened(tmp_path: Path, kind: str) -> None:
    tree = HostileTree(tmp_path)
    make, why = SPECIAL[kind]
    make(tree.root / "src.tar")
    package(tree, ["file:src.tar"])
    text = refused(fetch(tree, timeout=30), tree)
    if kind != "dev-zero":  # a link out of the tree: refused before its type is looked at
        assert why in text
    else:
        assert "inside the tree" in text


@pytest.mark.parametrize("kind", sorted(SPECIAL))
def test_special_files_in_a_mirror_dir_are_refused_unopened(tmp_path: Path, kind: str
                                                            ) -> None:
    tree = HostileTree(tmp_path)
    make, why = SPECIAL[kind]
    make(tree.mirror / "src.tar")
    package(tree, ["https://invalid.example/{file}"])
    assert why in refused(fetch(tree, "--mirror", str(tree.mirror), timeout=30), tree)
