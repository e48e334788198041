"""Red-team: archive member names that the OS cannot take (NUL bytes via PAX headers).

A ustar name field stops at the first NUL, but a PAX ``path``/``linkpath`` record keeps
it; ``os.open``/``os.symlink`` then raise ``ValueError`` ("embedded null byte"), which
the extractor did not expect: ADD of such an archive ended in an internal error (exit 70).
The same for an OCI layer unpacked from a (hostile) cache or out/.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from hostile import Canaries, HostileTree
from kinds import cli_error, raises_kind
from rootseed.engine.extract import ArchiveError, extract_archive
from rootseed.errors import ErrorKind
from rootseed.oci.unpack import UnpackError, member_path


def _pax(name: str, linkname: str | None = None, kind: bytes = tarfile.REGTYPE) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("placeholder")
        info.type = kind
        info.pax_headers = {"path": name}
        if linkname is not None:
            info.pax_headers["linkpath"] = linkname
        if kind == tarfile.REGTYPE:
            info.size = 2
            tar.addfile(info, io.BytesIO(b"x\n"))
        else:
            tar.addfile(info)
    return buf.getvalue()


CASES = {
    "nul-in-path": ("a\0b", None, tarfile.REGTYPE),
    "nul-in-symlink-target": ("s", "t\0x", tarfile.SYMTYPE),
    "nul-in-hardlink-target": ("h", "t\0x", tarfile.LNKTYPE),
    "nul-in-directory": ("d\0/x", None, tarfile.REGTYPE),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_nul_in_a_member_name_is_an_archive_error(tmp_path: Path, case: str) -> None:
    name, linkname, kind = CASES[case]
    (tmp_path / "root").mkdir()
    (tmp_path / "a.tar").write_bytes(_pax(name, linkname, kind))
    with raises_kind(ErrorKind.ARCHIVE, ArchiveError):
        extract_archive(tmp_path / "a.tar", tmp_path / "root", "/")


def test_add_of_an_archive_with_a_nul_name_fails_clearly(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.package("nul", "FROM scratch\nADD evil.tar /x/\n",
                 files={"evil.tar": _pax("a\0b")})
    proc = tree.build("test-nul", extra=("--json",))  # asserts: no traceback, no exit 70
    error = cli_error(proc, ErrorKind.ARCHIVE, exit_code=1, package="test-nul", line=2,
                      step="ADD")
    assert "evil.tar" in error["message"]  # words: names the archive, for people
    assert not (tree.out / "test-nul").exists()
    canaries.assert_unchanged()


def test_layer_member_with_a_nul_is_refused() -> None:
    with raises_kind(ErrorKind.REFUSED, UnpackError):
        member_path("a\0b")
