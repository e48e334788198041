"""COPY keeps hardlinks within what it copies, as BuildKit does.

BuildKit copies each source of a COPY with one copier (dockerfile2llb/convert_copy.go:
one ``llb.Copy`` per source path), whose inode map (tonistiigi/fsutil ``copy/copy.go``,
``getLinkSource``) turns a second path of an already-copied inode into a hardlink to the
copy. So links inside one source's tree survive; links to files outside the copied set,
or between two sources of one COPY, do not; nothing links back to the source.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.tree import Tree

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

CONTAINERFILE = """\
FROM rs/bootstrap-base AS made
RUN mkdir -p /set/sub && echo x > /set/a && ln /set/a /set/sub/b && echo y > /outside \\
    && ln /outside /set/c
FROM scratch AS final
COPY --from=made /set /copy/
COPY --from=made /set/a /set/sub/b /two/
COPY h* /ctx/
"""


def test_copy_keeps_hardlinks_within_each_source(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    package = app_package(tree, CONTAINERFILE)
    (package / "h1").write_text("linked\n")
    os.link(package / "h1", package / "h2")
    builder = Builder(Tree.load(tree), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    root = builder.stage_rootfs("core-app", "final", BuildOptions(progress=False))

    def ino(rel: str) -> int:
        return (root / rel).stat().st_ino

    # one source: a and sub/b stay one file; c's other link was outside the copied set
    assert ino("copy/a") == ino("copy/sub/b")
    assert (root / "copy/a").stat().st_nlink == 2
    assert ino("copy/c") != ino("copy/a") and (root / "copy/c").stat().st_nlink == 1
    # two sources of one COPY: two copiers, no link between them
    assert ino("two/a") != ino("two/b")
    # a wildcard is one source: its matches keep their link; never one to the context
    assert ino("ctx/h1") == ino("ctx/h2")
    assert ino("ctx/h1") != (package / "h1").stat().st_ino
    assert (root / "ctx/h1").read_text() == "linked\n"
