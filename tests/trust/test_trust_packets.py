"""OpenPGP packet framing and the compression bound (no cryptography)."""

from __future__ import annotations

import bz2
import zlib
from pathlib import Path

import pytest

from rootseed.trust import packets, store


def new_format(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        n -= 192
        length = bytes([(n >> 8) + 192, n & 0xFF])
    else:
        length = b"\xff" + n.to_bytes(4, "big")
    return bytes([0xC0 | tag]) + length + body


def test_lengths_of_both_formats_and_partial_bodies() -> None:
    for size in (0, 1, 191, 192, 8383, 8384, 70000):
        body = bytes(range(256)) * (size // 256) + bytes(size % 256)
        assert list(packets.packets(new_format(11, body))) == [(11, body)]
    old = bytes([0x80 | (11 << 2) | 1]) + (300).to_bytes(2, "big") + b"x" * 300
    assert list(packets.packets(old)) == [(11, b"x" * 300)]
    indeterminate = bytes([0x80 | (8 << 2) | 3]) + b"rest"
    assert list(packets.packets(indeterminate)) == [(8, b"rest")]
    partial = bytes([0xC0 | 11, 0xE0 | 2]) + b"abcd" + bytes([3]) + b"efg"
    assert list(packets.packets(partial)) == [(11, b"abcdefg")]


@pytest.mark.parametrize("data", [b"\x00", b"\xcb\x05abc", b"\x85\x01", b"\xcb\xff\x00",
                                  bytes([0xC0 | 11, 0xE3]) + b"ab"])
def test_malformed_framing_is_refused(data: bytes) -> None:
    with pytest.raises(packets.FramingError):
        list(packets.packets(data))


def _compressed(algorithm: int, content: bytes) -> bytes:
    if algorithm == 1:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = c.compress(content) + c.flush()
    elif algorithm == 2:
        data = zlib.compress(content)
    else:
        data = bz2.compress(content)
    return new_format(packets.TAG_COMPRESSED, bytes([algorithm]) + data)


@pytest.mark.parametrize("algorithm", [1, 2, 3])
def test_compressed_content_is_bounded(algorithm: int) -> None:
    inner = new_format(11, b"payload")
    packets.check_bounded(_compressed(algorithm, inner), 1024)
    with pytest.raises(packets.FramingError) as e:
        packets.check_bounded(_compressed(algorithm, new_format(11, b"\0" * 5000)), 1024)
    assert e.value.reason is packets.Framing.TOO_LARGE


def test_compression_inside_compression_is_refused() -> None:
    nested = _compressed(1, _compressed(1, new_format(11, b"x")))
    with pytest.raises(packets.FramingError) as e:
        packets.check_bounded(nested, 1 << 20)
    assert e.value.reason is packets.Framing.NESTED
    with pytest.raises(packets.FramingError):
        packets.check_bounded(new_format(packets.TAG_COMPRESSED, b"\x01garbage"), 1024)
    with pytest.raises(packets.FramingError) as e:
        packets.check_bounded(new_format(packets.TAG_COMPRESSED, b"\x07abc"), 1024)
    assert e.value.reason is packets.Framing.UNKNOWN_COMPRESSION


def test_store_reads_up_to_the_first_gap_and_adds_the_smallest_free_number(
        tmp_path: Path) -> None:
    d = tmp_path / "sigs"
    assert store.read_signatures(d) == store.Listing((), ())
    for n in (1, 2, 4, 10):
        d.mkdir(exist_ok=True)
        (d / f"signature-{n}").write_bytes(b"%d" % n)
    (d / "signature-01").write_bytes(b"not a number")
    (d / "provenance-1").write_bytes(b"p")
    listing = store.read_signatures(d)
    assert [f.name for f in listing.files] == ["signature-1", "signature-2"]
    assert [f.data for f in listing.files] == [b"1", b"2"]
    assert listing.ignored == ("signature-4", "signature-10")
    assert store.add_signature(d, b"3").name == "signature-3"
    assert [f.name for f in store.read_signatures(d).files][-1] == "signature-4"
    assert store.read_signatures(d, store.Kind.PROVENANCE).files == (
        store.Stored("provenance-1", b"p"),)
    (d / "signature-5").write_bytes(b"x" * (store.MAX_FILE + 1))
    [big] = [f for f in store.read_signatures(d).files if f.name == "signature-5"]
    assert big.data is None and "larger than" in (big.problem or "")
