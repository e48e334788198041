"""Red-team: ADD of a tiny archive that expands without bound is refused, and the step
timeout applies to ADD as it does to RUN.

On main before this change: a 22 KB ``.tar.xz`` of 300,000 entries took 42-72 s and
225 MB (TarFile keeps every member it read); a 10 KB sparse tar became a file of its
full apparent size on disk; ``--step-timeout`` did not apply to ADD at all.
"""

from __future__ import annotations

import io
import json
import lzma
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from hostile import Canaries, HostileTree

CONTEXT = "FROM scratch\nADD evil.tar /x/\n"


def _many_entries(count: int, same_name: bool = True) -> bytes:
    if same_name:  # one header block, repeated: what tarfile would write, in a second
        data = tarfile.TarInfo("f").tobuf(tarfile.GNU_FORMAT) * count + b"\0" * 1024
        return lzma.compress(data, preset=0)  # 22 KB all the same
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for n in range(count):
            tar.addfile(tarfile.TarInfo(f"d/f{n}"))
    return lzma.compress(buf.getvalue(), preset=0)


def _sparse(tmp_path: Path, size: str) -> bytes:
    if shutil.which("tar") is None or shutil.which("truncate") is None:
        pytest.skip("GNU tar and truncate make the sparse archive")
    work = tmp_path / "sparse"
    work.mkdir()
    subprocess.run(["truncate", "-s", size, str(work / "hole")], check=True)
    subprocess.run(["tar", "-S", "-cf", str(tmp_path / "sparse.tar"), "-C", str(work), "hole"],
                   check=True)
    data = (tmp_path / "sparse.tar").read_bytes()
    shutil.rmtree(work)
    return data


def _build(tmp_path: Path, archive: bytes, *extra: str
           ) -> tuple[HostileTree, dict[str, Any], float]:
    """The tree, the build's --json error and the seconds it took."""
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.package("a", CONTEXT, files={"evil.tar": archive})
    started = time.monotonic()
    proc = tree.build("test-a", extra=(*extra, "--json"))
    seconds = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    error: dict[str, Any] = json.loads(proc.stdout)["error"]
    assert (error["package"], error["step"], error["line"]) == ("test-a", "ADD", 2), error
    assert not (tree.out / "test-a").exists()
    assert not list((tree.cache / "actions").glob(".tmp-*")), "a work directory was left"
    canaries.assert_unchanged()
    return tree, error, seconds


def test_a_tiny_archive_of_300000_entries_is_refused_quickly(tmp_path: Path) -> None:
    archive = _many_entries(300_000)
    assert len(archive) < 40_000
    _, error, seconds = _build(tmp_path, archive)
    assert (error["kind"], error["bound"]) == ("archive", "entries"), error
    assert seconds < 120, seconds  # (main: 42-72 s unloaded, all 300,000 unpacked)


def test_a_sparse_member_counts_at_its_full_size(tmp_path: Path) -> None:
    archive = _sparse(tmp_path, "8G")  # a few KB of tar
    assert len(archive) < 64_000
    _, error, _ = _build(tmp_path, archive)
    assert (error["kind"], error["bound"]) == ("archive", "size"), error


def test_the_disk_limit_bounds_what_add_writes(tmp_path: Path) -> None:
    _, error, _ = _build(tmp_path, _sparse(tmp_path, "300M"), "--max-disk", "64M")
    assert (error["kind"], error["bound"]) == ("archive", "disk"), error


def test_the_step_timeout_applies_to_add(tmp_path: Path) -> None:
    _, error, _ = _build(tmp_path, _many_entries(9_000, same_name=False),
                         "--step-timeout", "0.3")
    assert error["kind"] == "step-timeout", error
