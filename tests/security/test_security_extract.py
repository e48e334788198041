"""Hostile archives and symlinks in ADD/COPY never reach the host (issue #12, item 1).

Each archive is ADDed both from the build context and from a sha256-pinned source
(``fetch/``). Every test checks that the host canaries (a root-only file, a public file and
a directory, outside tree, cache and out) are unchanged: content, mode, link count, inode
and mtime; and that nothing ends in a traceback or exit 70.
"""

from __future__ import annotations

import os
import stat
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree, directory, link, reg, special, tar_bytes
from kinds import cli_error
from rootseed.errors import ErrorKind
from rootseed.oci import unpack_image

pytestmark = pytest.mark.skipif(not Path("/usr/bin/bwrap").exists()
                                and not Path("/bin/bwrap").exists(),
                                reason="needs bubblewrap")

Members = list[tuple[tarfile.TarInfo, bytes | None]]


def _up(n: int = 12) -> str:
    return "../" * n


# name -> (members for canaries, refused?) ; refused attacks must fail clearly.
ATTACKS: dict[str, tuple[Callable[[Canaries], Members], bool]] = {
    "hardlink-absolute": (lambda c: [link("evil", str(c.secret), hard=True)], True),
    "hardlink-dotdot": (lambda c: [link("evil", _up() + str(c.secret).lstrip("/"),
                                        hard=True)], True),
    "hardlink-through-symlink": (lambda c: [link("lnk", str(c.dir)),
                                            link("evil", "lnk/secret", hard=True)], True),
    "hardlink-through-relative-symlink": (
        lambda c: [link("lnk", _up() + str(c.dir).lstrip("/")),
                   link("evil", "lnk/secret", hard=True)], True),
    "member-dotdot": (lambda c: [reg(_up() + str(c.dir).lstrip("/") + "/pwned")], True),
    "fifo": (lambda c: [special("pipe", tarfile.FIFOTYPE)], True),
    "char-device": (lambda c: [special("null", tarfile.CHRTYPE)], True),
    "block-device": (lambda c: [special("disk", tarfile.BLKTYPE)], True),
    # made harmless: the links are created, but never followed on the host
    "symlink-then-file-through-it": (lambda c: [link("lnk", str(c.dir)),
                                                reg("lnk/pwned", b"pwned\n")], False),
    "symlink-then-overwrite-it": (lambda c: [link("lnk", str(c.public)),
                                             reg("lnk", b"pwned\n", mode=0o4777)], False),
    "relative-symlink-then-file": (lambda c: [link("up", _up() + str(c.dir).lstrip("/")),
                                              reg("up/etc/passwd", b"pwned\n")], False),
    "dir-then-symlink-same-name": (lambda c: [directory("d", 0o777), reg("d/f"),
                                              link("d", str(c.dir))], False),
    "absolute-member": (lambda c: [reg(str(c.dir) + "/pwned", b"pwned\n")], False),
    "symlink-to-file-then-hardlink-to-symlink": (
        lambda c: [link("lnk", str(c.secret)), link("hard", "lnk", hard=True),
                   reg("hard", b"pwned\n")], False),
}

CONTEXT = "FROM scratch\nADD evil.tar /x/\n"
FETCH = "FROM scratch\nARG SRC_SOURCE\nADD fetch/${SRC_SOURCE} /x/\n"


@pytest.mark.parametrize("via", ["context", "fetch"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_hostile_archive(tmp_path: Path, attack: str, via: str) -> None:
    canaries = Canaries(tmp_path)
    make, refused = ATTACKS[attack]
    data = tar_bytes(make(canaries), gz=via == "fetch")
    tree = HostileTree(tmp_path)
    if via == "context":
        tree.package("a", CONTEXT, files={"evil.tar": data})
    else:
        tree.package("a", FETCH, sources={"src": data})
    proc = tree.build("test-a", extra=("--json",))
    canaries.assert_unchanged()
    if refused:
        cli_error(proc, ErrorKind.ARCHIVE, exit_code=1, package="test-a", step="ADD")
        assert not (tree.out / "test-a").exists()
        return
    assert proc.returncode == 0, proc.stderr
    rootfs = tmp_path / "unpacked"
    unpack_image(tree.out / "test-a", rootfs)
    if attack == "symlink-then-file-through-it":
        assert os.readlink(rootfs / "x" / "lnk") == str(canaries.dir)
        assert (rootfs / str(canaries.dir).lstrip("/") / "pwned").read_bytes() == b"pwned\n"
    if attack == "symlink-then-overwrite-it":
        st = os.lstat(rootfs / "x" / "lnk")
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o4777
    if attack == "dir-then-symlink-same-name":
        assert os.readlink(rootfs / "x" / "d") == str(canaries.dir)


COPY_THROUGH_SYMLINK = """\
FROM scratch AS s
ADD links.tar /x/
COPY note.txt /x/etc/passwd
COPY note.txt /x/abs/
COPY tree/ /x/
COPY note.txt /x/dangling/deep/note.txt
FROM scratch
COPY --from=s /x /y
COPY --from=s /x/etc /z/
COPY --from=s /no /no
"""


def test_copy_through_in_image_symlinks_stays_in_the_image(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    links = tar_bytes([link("etc", str(canaries.subdir)),
                       link("abs", _up() + str(canaries.dir).lstrip("/")),
                       link("sub", str(canaries.dir)),
                       # a link whose target's parents are missing in the image
                       link("dangling", "/no/such/parents/here")])
    tree.package("c", COPY_THROUGH_SYMLINK, files={
        "links.tar": links, "note.txt": b"pwned\n", "tree/sub/secret": b"pwned\n",
        "tree/etc/passwd": b"pwned\n"})
    proc = tree.build("test-c")
    canaries.assert_unchanged()
    assert proc.returncode == 0, proc.stderr
    rootfs = tmp_path / "unpacked"
    unpack_image(tree.out / "test-c", rootfs)
    assert (rootfs / "no" / "such" / "parents" / "here" / "deep" / "note.txt").is_file()
    assert os.readlink(rootfs / "y" / "abs").startswith("../")  # copied as a link
    assert (rootfs / str(canaries.dir).lstrip("/") / "note.txt").is_file() is False  # in s
    assert (rootfs / "y" / "sub" / "secret").read_bytes() == b"pwned\n"
    assert (rootfs / "y" / "etc").is_dir()  # COPY tree/ /x/ replaced the link by a dir


@pytest.mark.parametrize("containerfile", [
    "FROM scratch\nCOPY <<.. /x/\nhello\n..\n",
    "FROM scratch\nCOPY <<. /x/\nhello\n.\n",
    "FROM scratch\nRUN <<..\n#!/bin/sh\necho hi\n..\n"])
def test_heredoc_named_dotdot_is_a_clear_error(tmp_path: Path, containerfile: str) -> None:
    tree = HostileTree(tmp_path)
    tree.package("h", containerfile)
    proc = tree.build("test-h", extra=("--json",))
    cli_error(proc, ErrorKind.TREE, exit_code=1, package="test-h", problem="plan")


@pytest.mark.parametrize("kind", ["fifo", "socket", "fifo-in-subdir"])
def test_special_file_in_build_context_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    tree = HostileTree(tmp_path)
    d = tree.package("f", "FROM scratch\nCOPY note.txt /\n", files={"note.txt": b"hi\n"})
    if kind == "socket":
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(d / "sock"))
        s.close()
        name = "sock"
    else:
        where = d / "sub" if kind == "fifo-in-subdir" else d
        where.mkdir(exist_ok=True)
        os.mkfifo(where / "pipe")
        name = "pipe"
    proc = tree.build("test-f", extra=("--json",), timeout=120)  # the old code hung here
    error = cli_error(proc, ErrorKind.REFUSED, exit_code=1)
    assert name in error["message"]  # words: names the file, for people
