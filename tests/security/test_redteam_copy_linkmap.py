"""Red-team: COPY's hardlink map re-used through a directory replaced by a host symlink.

COPY keeps hardlinks within one source (fsops.LinkMap: inode → the first copy made of
it). A wildcard source expands to several entries sharing one map, all copied into the
same destination directory. Attack, all inside the package directory:

* ``d1/sub/passwd`` and ``d3/y`` are hardlinks of one file (nlink 2);
* ``d2/sub`` is a symlink to a host directory (``/etc`` in real life);
* ``COPY d* /dest/`` copies d1 (``/dest/sub/passwd`` becomes the inode's first copy), then
  d2 (``/dest/sub`` is replaced by the symlink, as Docker does), then d3: ``/dest/y``
  must be linked to the first copy, and ``/dest/sub/passwd`` now goes through the symlink
  to the *host's* file. ``os.link`` follows symlinks in the path's directories, so the
  host file would be hardlinked into the image (and a later RUN would write it).
"""

from __future__ import annotations

import os
from pathlib import Path

from hostile import Canaries, HostileTree


def test_link_map_never_links_through_a_replaced_directory(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    pkg = tree.package("links", "FROM scratch\nCOPY d* /dest/\n",
                       files={"d1/sub/passwd": b"image data\n"})
    (pkg / "d2").mkdir()
    os.symlink(canaries.subdir, pkg / "d2" / "sub")  # -> the host's "etc"
    (pkg / "d3").mkdir()
    os.link(pkg / "d1" / "sub" / "passwd", pkg / "d3" / "y")
    proc = tree.build("test-links")
    canaries.assert_unchanged()  # link count of host/etc/passwd above all
    assert proc.returncode == 0, proc.stderr
    for rootfs in tree.cache.rglob("rootfs"):
        y = rootfs / "dest" / "y"
        if y.exists():
            assert y.read_bytes() == b"image data\n"
            assert os.lstat(y).st_ino != os.lstat(canaries.subdir / "passwd").st_ino
