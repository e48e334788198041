"""``challenge --against``: the other image's archive is hostile.

Only ``index.json``, ``oci-layout`` and ``blobs/sha256/<64 hex>`` regular files are taken
from it: path traversal, absolute names, links and device entries are ignored (never
extracted), so the host is unchanged and the verdict comes from verified blobs only."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from hostile import Canaries, link, reg, special, tar_bytes
from kinds import raises_kind
from rootseed.challenge.against import AgainstError, compare_against
from rootseed.errors import ErrorKind
from rootseed.oci import ImageConfig, write_image


@pytest.mark.parametrize("attack", ["traversal", "absolute", "symlink", "hardlink", "fifo"])
def test_hostile_archive_entries_never_reach_the_host(tmp_path: Path, attack: str) -> None:
    canaries = Canaries(tmp_path)
    target = canaries.public
    blob = "blobs/sha256/" + "a" * 64
    members = {
        "traversal": [reg(f"../../{target.relative_to(tmp_path)}", b"owned\n"),
                      reg(f"blobs/../../{target.name}", b"owned\n")],
        "absolute": [reg(str(target), b"owned\n")],
        "symlink": [link("index.json", str(canaries.secret)), link(blob, str(target))],
        "hardlink": [link("index.json", str(canaries.secret), hard=True)],
        "fifo": [special("index.json", tarfile.FIFOTYPE)],
    }[attack]
    archive = tmp_path / "evil.tar"
    archive.write_bytes(tar_bytes(members))
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "f").write_text("x")
    ours = tmp_path / "ours"
    write_image(ours, rootfs, ImageConfig(), {})  # a real image: theirs is what is read
    with raises_kind(ErrorKind.LAYOUT, AgainstError, file=str(archive)):
        compare_against(ours, archive)
    canaries.assert_unchanged()
    assert not (tmp_path / target.name).exists()
