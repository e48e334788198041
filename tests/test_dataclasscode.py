"""Dataclass methods' code kept between runs (:mod:`rootseed.dataclasscode`): the same
classes as compiling gives, and only a file this module would have written is believed."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from rootseed import dataclasscode
from rootseed.dataclasscode import HEADER, CodeCache, pack


def _make(cache: CodeCache, monkeypatch: pytest.MonkeyPatch) -> type:
    monkeypatch.setattr(dataclasses, "exec", cache.exec, raising=False)

    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Point:
        x: int
        y: tuple[int, ...] = ()

    monkeypatch.delattr(dataclasses, "exec")
    return Point


def _methods(cls: type) -> dict[str, bytes]:
    return {n: getattr(cls, n).__code__.co_code for n in
            ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__")}


def test_kept_code_makes_the_same_class_as_compiling(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dataclasses.marshal"
    first = CodeCache(str(path))
    made = _make(first, monkeypatch)
    assert len(first.added) == 6
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    first.save()
    again = CodeCache(str(path))
    kept = _make(again, monkeypatch)
    assert not again.added and again.known is not None and len(again.known) == 6
    assert _methods(kept) == _methods(made)
    p = kept(x=1, y=(2,))
    assert p == kept(x=1, y=(2,)) and hash(p) == hash(kept(x=1, y=(2,)))
    assert repr(p).endswith("Point(x=1, y=(2,))")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.x = 3  # type: ignore[misc]


def test_nothing_is_written_without_byte_code_writing(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CodeCache(str(tmp_path / "dataclasses.marshal"))
    _make(cache, monkeypatch)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    cache.save()
    assert not (tmp_path / "dataclasses.marshal").exists()


def _planted(path: Path, text_to_code: dict[str, types.CodeType], header: bytes = HEADER,
             mode: int = 0o644) -> None:
    path.write_bytes(header + pack(marshal.dumps(text_to_code))[len(HEADER):])
    os.chmod(path, mode)


@pytest.mark.parametrize("how", ["other python", "not a mapping", "writable by others",
                                 "group writable", "garbage"])
def test_a_file_it_would_not_have_written_is_not_believed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    path = tmp_path / "dataclasses.marshal"
    first = CodeCache(str(tmp_path / "real.marshal"))
    _make(first, monkeypatch)
    # every text of the class, mapped to code that is not what the text compiles to
    wrong = compile("raise SystemExit('planted code ran')", "<string>", "exec")
    forged = dict.fromkeys(first.added, wrong)
    if how == "other python":
        _planted(path, forged, header=b"rootseed dataclass code\0" + b"\x00\x00\r\n")
    elif how == "not a mapping":
        path.write_bytes(pack(marshal.dumps(list(forged.items()))))
    elif how == "writable by others":
        _planted(path, forged, mode=0o646)
    elif how == "group writable":
        _planted(path, forged, mode=0o664)
    else:
        path.write_bytes(pack(b"\xff" * 100))
    cache = CodeCache(str(path))
    made = _make(cache, monkeypatch)  # compiled: the planted code never runs
    assert len(cache.added) == 6 and made(x=1) == made(x=1)


def test_a_link_in_place_of_the_file_is_not_followed(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither read through nor written through: the linked file stays as it was."""
    first = CodeCache(str(tmp_path / "real.marshal"))
    _make(first, monkeypatch)
    target = tmp_path / "target"
    wrong = compile("raise SystemExit('planted code ran')", "<string>", "exec")
    _planted(target, dict.fromkeys(first.added, wrong))
    before = target.read_bytes()
    link = tmp_path / "dataclasses.marshal"
    link.symlink_to(target)
    cache = CodeCache(str(link))
    made = _make(cache, monkeypatch)
    assert len(cache.added) == 6 and made(x=1) == made(x=1)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache.save()  # replaces the link by a file (os.replace), never writes its target
    assert target.read_bytes() == before and not link.is_symlink()


def test_the_cli_keeps_the_code_in_the_package_s_pycache(tmp_path: Path) -> None:
    """A command's dataclasses are made with the kept code: install() patches dataclasses
    once, and the file is the package's, for this Python."""
    path = dataclasscode.cache_file("build")
    assert path is not None and path.startswith(os.path.dirname(dataclasscode.__file__))
    assert os.path.basename(path).startswith("dataclasses.build.")
    assert dataclasscode.cache_file("../x") is None
    code = ("import dataclasses\nfrom rootseed import dataclasscode\n"
            "dataclasscode.install('build'); first = dataclasses.exec\n"
            "dataclasscode.install('build'); assert dataclasses.exec == first\n"
            "assert isinstance(first.__self__, dataclasscode.CodeCache)\n"
            "assert first.__self__.path == dataclasscode.cache_file('build')\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_file_as_it_would_have_written_it_is_believed(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the tests above: the same forged mapping, in a file of this user,
    this Python, not writable by others, is used (as a .pyc there would be)."""
    first = CodeCache(str(tmp_path / "real.marshal"))
    _make(first, monkeypatch)
    wrong = compile("raise SystemExit('planted code ran')", "<string>", "exec")
    path = tmp_path / "dataclasses.marshal"
    _planted(path, dict.fromkeys(first.added, wrong))
    with pytest.raises(SystemExit) as ran:
        _make(CodeCache(str(path)), monkeypatch)
    assert ran.value.code == "planted code ran"  # words: the planted code's own marker


def test_a_full_file_keeps_only_what_this_run_used(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dataclasses.marshal"
    first = CodeCache(str(path))
    _make(first, monkeypatch)
    stale = {f"# an old version's text {i}\n": compile("pass", "<string>", "exec")
             for i in range(dataclasscode.MAX_TEXTS)}
    _planted(path, {**stale, **first.added})
    cache = CodeCache(str(path))
    made = _make(cache, monkeypatch)
    made2 = _make(cache, monkeypatch)  # the same texts again: all kept, none compiled
    assert made(x=1) == made(x=1) and made2 is not made and not cache.added
    cache.added["new text\n"] = compile("pass", "<string>", "exec")
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache.save()
    kept = CodeCache(str(path))
    kept.code("new text\n")
    assert kept.known is not None and set(kept.known) == {*first.added, "new text\n"}


def test_a_damaged_file_is_not_unmarshalled(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """One byte changed after the checksum: the file is ignored before ``marshal.loads``
    (which some damaged input keeps busy for seconds at every start)."""
    first = CodeCache(str(tmp_path / "real.marshal"))
    _make(first, monkeypatch)
    path = tmp_path / "dataclasses.marshal"
    _planted(path, first.added)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    loads = []
    monkeypatch.setattr(dataclasscode.marshal, "loads",
                        lambda b: loads.append(b) or marshal.loads(b))
    cache = CodeCache(str(path))
    _make(cache, monkeypatch)
    assert loads == [] and cache.known == {} and len(cache.added) == len(first.added)
