"""The dataclass code kept in the package's ``__pycache__`` is not believed from a file of
another user (as root under ``sudo``: not the invoking user's either): only this user or
root could have written what the code cache would run."""

from __future__ import annotations

import dataclasses
import importlib.util
import marshal
import os
import random
import sys
import types
from pathlib import Path

import pytest

from rootseed import dataclasscode
from rootseed.dataclasscode import CodeCache, pack

OTHER = 65534  # nobody


def _texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, types.CodeType]:
    """The dataclass method texts (and their code) of a frozen class of one ``int`` field,
    as :func:`_made_with`'s probe makes them."""
    collect = CodeCache(str(tmp_path / "collect.marshal"))
    monkeypatch.setattr(dataclasses, "exec", collect.exec, raising=False)

    @dataclasses.dataclass(frozen=True)
    class Third:
        x: int

    monkeypatch.delattr(dataclasses, "exec")
    return dict(collect.added)


def _forged(texts: dict[str, types.CodeType]) -> bytes:
    """The file's bytes with ``texts`` mapped to code that exits 97."""
    planted = compile("raise SystemExit(97)", "<string>", "exec")
    return pack(marshal.dumps(dict.fromkeys(texts, planted)))


def _made_with(path: str, monkeypatch: pytest.MonkeyPatch) -> CodeCache:
    cache = CodeCache(path)
    monkeypatch.setattr(dataclasses, "exec", cache.exec, raising=False)

    @dataclasses.dataclass(frozen=True)
    class Probe:
        x: int

    monkeypatch.delattr(dataclasses, "exec")
    assert Probe(1) == Probe(1)  # compiled: the planted code (exit 97) never ran
    return cache


def test_a_file_of_another_user_is_not_believed(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(tmp_path, monkeypatch)
    assert texts
    path = tmp_path / "dataclasses.build.marshal"
    path.write_bytes(_forged(texts))
    os.chmod(path, 0o644)
    if os.geteuid() == 0:  # root (sudo) and a file of a user
        os.chown(path, OTHER, OTHER)
    else:  # a user, and a file of someone else (as this process sees it)
        euid = os.geteuid() + 1
        monkeypatch.setattr(dataclasscode.os, "geteuid", lambda: euid)
    cache = _made_with(str(path), monkeypatch)
    assert cache.known == {} and len(cache.added) == len(texts)


def test_a_hardlinked_file_is_not_believed(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is always written by renaming a fresh one; one with another name too is
    someone's file linked into the cache's place (whoever can link into ``__pycache__``
    needs no .pyc there to be read when ``sys.pycache_prefix`` moves the .pyc files
    elsewhere), however it is owned."""
    elsewhere = tmp_path / "downloads" / "notes.txt"  # this user's file, someone's bytes
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(_forged(_texts(tmp_path, monkeypatch)))
    os.chmod(elsewhere, 0o644)
    path = tmp_path / "dataclasses.build.marshal"
    os.link(elsewhere, path)
    cache = _made_with(str(path), monkeypatch)
    assert cache.known == {} and cache.added


def test_with_a_pycache_prefix_the_package_s_pycache_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python keeps and reads the package's .pyc files under ``sys.pycache_prefix`` then,
    never in ``rootseed/__pycache__``: that directory is trusted by no one, so the code
    cache is not kept there either."""
    prefix = tmp_path / "pycache-prefix"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    path = dataclasscode.cache_file("build")
    assert path is not None
    package = os.path.dirname(os.path.abspath(dataclasscode.__file__))
    assert path.startswith(str(prefix) + os.sep)
    assert not path.startswith(os.path.join(package, "__pycache__"))
    assert os.path.dirname(path) == os.path.dirname(importlib.util.cache_from_source(
        os.path.join(package, "__init__.py")))


def test_a_damaged_file_is_ignored_not_a_crash_at_every_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A few bytes changed in the file (a crash after the rename, a bad disk) can make
    ``marshal.loads`` raise SystemError, which every command then died of with a
    traceback, until someone removed the file."""
    collect = CodeCache(str(tmp_path / "collect.marshal"))
    monkeypatch.setattr(dataclasses, "exec", collect.exec, raising=False)

    @dataclasses.dataclass(frozen=True)
    class Fourth:
        x: int
        y: str = "a"

    monkeypatch.delattr(dataclasses, "exec")
    payload = marshal.dumps(collect.added)
    rng = random.Random(1)
    damaged = None
    for _ in range(2000):
        b = bytearray(payload)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        try:
            marshal.loads(bytes(b))
        except SystemError:
            damaged = bytes(b)
            break
        except Exception:  # the other kinds: what _read caught already
            continue
    assert damaged is not None, "no damage found that makes marshal raise SystemError"
    path = tmp_path / "dataclasses.build.marshal"
    path.write_bytes(pack(damaged))
    os.chmod(path, 0o644)
    cache = _made_with(str(path), monkeypatch)
    assert cache.known == {} and cache.added
