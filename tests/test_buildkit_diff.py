"""A layer directory as BuildKit's overlay differ writes it (rootseed.oci.buildkit.diff).

The layer here is built by hand in overlayfs's upper-directory format (whiteouts are 0/0
character devices, which need CAP_MKNOD: those tests skip without it)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rootseed.oci.buildkit.diff import layer_entries
from rootseed.oci.buildkit.tar import Kind


def names(upper: Path, lower: Path | None, **kw: object) -> list[str]:
    return [e.header.name.decode() for e in layer_entries(upper, lower, epoch=1, **kw)]  # type: ignore[arg-type]


def whiteout(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    except PermissionError:
        pytest.skip("making a whiteout (0/0 character device) needs CAP_MKNOD")


def test_entries_walk_depth_first_by_name_with_parents_first(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    for rel in ("a-b", "a/x", "a/sub/y", "b"):
        (upper / rel).parent.mkdir(parents=True, exist_ok=True)
        (upper / rel).write_text(rel)
    # filepath.Walk order: "a" and its subtree come before "a-b" ('/' sorts after '-' in a
    # full path, but Walk sorts the names of one directory)
    assert names(upper, None) == ["a/", "a/sub/", "a/sub/y", "a/x", "a-b", "b"]


def test_unchanged_parent_directory_is_still_written_before_its_child(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "bin").mkdir(parents=True)
    (upper / "bin").mkdir(parents=True)
    (upper / "bin" / "tool").write_text("x")
    os.chmod(lower / "bin", 0o755)
    os.chmod(upper / "bin", 0o755)
    entries = layer_entries(upper, lower, epoch=1)
    assert [(e.header.name, e.header.kind) for e in entries] == [
        (b"bin/", Kind.DIR), (b"bin/tool", Kind.FILE)]


def test_same_directory_without_changes_below_is_left_out(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (upper / "etc").mkdir(parents=True)
    os.chmod(lower / "etc", 0o755)
    os.chmod(upper / "etc", 0o755)
    assert names(upper, lower) == []
    os.chmod(upper / "etc", 0o700)  # a changed mode is a change
    assert names(upper, lower) == ["etc/"]


def test_second_name_of_an_inode_is_a_hard_link_to_the_first(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    (upper / "x").mkdir(parents=True)
    (upper / "x" / "y").write_text("hi")
    os.link(upper / "x" / "y", upper / "x" / "z")
    entries = layer_entries(upper, None, epoch=1)
    last = entries[-1].header
    assert (last.name, last.kind, last.linkname, last.size) == (b"x/z", Kind.HARDLINK, b"x/y", 0)
    assert entries[-2].header.size == 2


def test_mtimes_are_clamped_to_the_epoch_but_earlier_ones_kept(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "new").write_text("n")
    (upper / "old").write_text("o")
    os.utime(upper / "old", (0, 0))
    assert [e.header.mtime for e in layer_entries(upper, None, epoch=5)] == [5, 0]


def test_whiteout_of_a_lower_name_and_dropped_whiteout_of_nothing(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "x" / "gone").mkdir(parents=True)
    (upper / "x").mkdir(parents=True)
    whiteout(upper / "x" / "gone")
    whiteout(upper / "x" / "never")  # nothing below: no entry
    entries = layer_entries(upper, lower, epoch=1)
    assert [e.header.name for e in entries] == [b"x/", b"x/.wh.gone"]
    gone = entries[1].header
    assert (gone.kind, gone.mode, gone.mtime) == (Kind.FILE, 0, 0)


def test_run_mount_points_are_added_where_missing(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "proc").mkdir(parents=True)  # already there: runc makes no new one
    (upper / "x").mkdir(parents=True)
    assert names(upper, lower, mount_points=("dev", "proc", "sys")) == ["dev/", "sys/", "x/"]


def test_opaque_directory_is_compared_with_the_lower_one(tmp_path: Path) -> None:
    """``rm -rf x && mkdir x`` in a step: overlayfs marks x opaque; BuildKit writes whiteouts
    for what x hid, and the new entries (continuity's double walk of lower vs. upper)."""
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for rel in ("x/a", "x/b"):
        (lower / rel).parent.mkdir(parents=True, exist_ok=True)
        (lower / rel).write_text(rel)
    (upper / "x").mkdir(parents=True)
    (upper / "x" / "c").write_text("c")
    try:
        os.setxattr(upper / "x", "user.overlay.opaque", b"y")
    except OSError:
        pytest.skip("this file system takes no user.* extended attributes")
    os.chmod(upper / "x", 0o755)
    os.chmod(lower / "x", 0o755)
    assert names(upper, lower) == ["x/", "x/.wh.a", "x/.wh.b", "x/c"]
