"""Attack: a build context whose files are hardlinks of a host file.

COPY keeps hardlinks *within* what it copies (BuildKit's copier), but a copy must never
be a link to the source itself: otherwise a later RUN writing the copied file would write
the host's file. The canary (content, mode, link count) must be unchanged after a build
that copies its links and overwrites the copies.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.tree import Tree

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def test_copied_hardlinks_never_reach_the_host_file(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    package = app_package(tree, "FROM rs/bootstrap-base AS final\nCOPY h* /x/\n"
                                "RUN echo pwned > /x/h1 && chmod 777 /x/h2\n")
    canary = tmp_path / "canary"  # on the host, outside the tree
    canary.write_text("host data\n")
    canary.chmod(0o600)
    os.link(canary, package / "h1")
    os.link(canary, package / "h2")
    before = (canary.read_bytes(), stat.S_IMODE(canary.stat().st_mode), canary.stat().st_nlink)
    builder = Builder(Tree.load(tree), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    root = builder.stage_rootfs("core-app", "final", BuildOptions(progress=False))
    after = (canary.read_bytes(), stat.S_IMODE(canary.stat().st_mode), canary.stat().st_nlink)
    assert after == before
    assert (root / "x/h2").read_text() == "pwned\n"  # the copies are linked to each other
