"""Go's archive/tar headers (rootseed.oci.buildkit.tar), checked against BuildKit's layers."""

from __future__ import annotations

import io
import tarfile

import pytest

from buildkit_reference import archive_files, layer_tars, members, reference
from rootseed.oci.buildkit.tar import Header, Kind, TarWriter, encode, pax_record

KINDS = {tarfile.REGTYPE: Kind.FILE, tarfile.DIRTYPE: Kind.DIR, tarfile.SYMTYPE: Kind.SYMLINK,
         tarfile.LNKTYPE: Kind.HARDLINK, tarfile.FIFOTYPE: Kind.FIFO}


def _rewrite(data: bytes) -> bytes:
    """``data``'s entries written again by our writer."""
    out = io.BytesIO()
    writer = TarWriter(out)
    with tarfile.open(fileobj=io.BytesIO(data), encoding="utf-8",
                      errors="surrogateescape") as tar:
        for m in tar.getmembers():
            name = m.name.encode("utf-8", "surrogateescape") + (b"/" if m.isdir() else b"")
            header = Header(name=name, kind=KINDS[m.type], mode=m.mode, mtime=int(m.mtime),
                            size=m.size if m.isreg() else 0,
                            linkname=m.linkname.encode("utf-8", "surrogateescape"))
            writer.add(header, tar.extractfile(m) if m.isreg() else None)
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize("case", ["add-archive", "copy-kinds", "layers", "multistage",
                                  "run-whiteout", "stagex-bootstrap-stage0"])
def test_every_reference_layer_is_written_again_byte_for_byte(case: str) -> None:
    files = archive_files(reference() / "out" / f"{case}.oci.tar")
    layers = layer_tars(files)
    assert layers
    for data in layers:
        assert _rewrite(data) == data


def test_reference_layers_show_what_the_writer_must_do() -> None:
    """The kinds the writer's unit tests below stand for are really in BuildKit's layers."""
    files = archive_files(reference() / "out" / "run-whiteout.oci.tar")
    second, third = (members(x) for x in layer_tars(files)[1:])
    assert [m.name for m in second][:3] == ["dev", "proc", "sys"]  # runc's mount points
    assert [(m.name, m.type, m.linkname) for m in second][-1] == ("x/z", tarfile.LNKTYPE, "x/y")
    assert [(m.name, m.mode, m.mtime) for m in third if ".wh." in m.name] == [
        ("x/.wh.gone", 0, 0), ("x/.wh.z", 0, 0)]


def test_ustar_fields_are_go_s() -> None:
    block = encode(Header(name=b"bin/", kind=Kind.DIR, mode=0o755, mtime=1))
    assert len(block) == 512
    assert block[100:108] == b"0000755\0"
    assert block[108:124] == b"0000000\0" * 2
    assert block[124:136] == b"00000000000\0"
    assert block[136:148] == b"00000000001\0"
    assert block[257:265] == b"ustar\x0000"
    assert block[329:345] == b"0000000\0" * 2  # devmajor/devminor even for a directory
    assert block[148:156].endswith(b"\0 ")
    assert int(block[148:154], 8) == sum(block[:148]) + 8 * 32 + sum(block[156:])


def test_a_long_ascii_path_is_split_into_prefix_and_name() -> None:
    name = b"d" * 120 + b"/" + b"f" * 20
    block = encode(Header(name=name, kind=Kind.FILE, mode=0o644, mtime=1))
    assert len(block) == 512  # no PAX header
    assert block[345:345 + 120] == b"d" * 120 and block[0:20] == b"f" * 20


def test_pax_only_where_ustar_cannot_hold_the_value() -> None:
    name = "data/ünï.txt".encode()
    blocks = encode(Header(name=name, kind=Kind.FILE, mode=0o644, mtime=1, size=3))
    assert blocks[156:157] == b"x"
    assert blocks[0:100].rstrip(b"\0") == b"data/PaxHeaders.0/n.txt"  # ASCII only
    assert blocks[329:345] == b"\0" * 16  # Go leaves the PAX header's device fields NUL
    assert blocks[512:512 + 30].startswith(pax_record("path", name))
    main = blocks[1024:1536]
    assert main[0:100].rstrip(b"\0") == b"data/n.txt"
    assert main[329:345] == b"0000000\0" * 2


def test_pax_record_length_counts_itself() -> None:
    assert pax_record("path", b"x" * 90) == b"99 path=" + b"x" * 90 + b"\n"
    # 4 + 92 + 3 = 99 (+2 digits = 101), but "101 " makes it 102: Go's final adjustment
    assert pax_record("path", b"x" * 92) == b"102 path=" + b"x" * 92 + b"\n"


def test_archive_ends_with_exactly_two_zero_blocks() -> None:
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.add(Header(name=b"a", kind=Kind.FILE, mode=0o644, mtime=1, size=2), io.BytesIO(b"hi"))
    writer.add(Header(name=b"b", kind=Kind.HARDLINK, mode=0o644, mtime=1, linkname=b"a"))
    writer.close()
    data = out.getvalue()
    assert len(data) == 512 * 5
    assert data[-1024:] == bytes(1024)
    assert data[1024 + 156:1024 + 157] == b"1" and data[1024 + 157:1024 + 158] == b"a"
