"""The dataclass code kept in the package's ``__pycache__`` is not believed from a file of
another user (as root under ``sudo``: not the invoking user's either): only this user or
root could have written what the code cache would run."""

from __future__ import annotations

import dataclasses
import marshal
import os
from pathlib import Path

import pytest

from rootseed import dataclasscode
from rootseed.dataclasscode import HEADER, CodeCache

OTHER = 65534  # nobody


def test_a_file_of_another_user_is_not_believed(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    collect = CodeCache(str(tmp_path / "unused.marshal"))
    monkeypatch.setattr(dataclasses, "exec", collect.exec, raising=False)

    @dataclasses.dataclass(frozen=True)
    class First:
        x: int

    monkeypatch.delattr(dataclasses, "exec")
    texts = dict(collect.added)
    assert texts
    planted = compile("raise SystemExit(97)", "<string>", "exec")
    path = tmp_path / "dataclasses.build.marshal"
    path.write_bytes(HEADER + marshal.dumps(dict.fromkeys(texts, planted)))
    os.chmod(path, 0o644)
    if os.geteuid() == 0:  # root (sudo) and a file of a user
        os.chown(path, OTHER, OTHER)
    else:  # a user, and a file of someone else (as this process sees it)
        euid = os.geteuid() + 1
        monkeypatch.setattr(dataclasscode.os, "geteuid", lambda: euid)
    cache = CodeCache(str(path))
    monkeypatch.setattr(dataclasses, "exec", cache.exec, raising=False)

    @dataclasses.dataclass(frozen=True)
    class Probe:
        x: int

    monkeypatch.delattr(dataclasses, "exec")
    assert cache.known == {} and len(cache.added) == len(texts)
    assert Probe(1) == Probe(1)  # compiled: the planted code (exit 97) never ran
