"""Check which error happened by its kind and fields, not by its English.

In process: :func:`raises_kind`; a command: run it with ``--json`` and :func:`cli_error`.
A check of an error's words is kept only where the words are what is tested (a seed
tool's message, a path named for people) and carries ``# words: why``
(tests/test_no_error_text.py fails on one without it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rootseed.errors import ErrorKind, RootseedError


@contextmanager
def raises_kind(kind: ErrorKind, error: type[RootseedError] = RootseedError, **fields: Any
                ) -> Iterator[pytest.ExceptionInfo[RootseedError]]:
    """Like ``pytest.raises(error)``, then: the error is of ``kind`` and has ``fields``
    (``package=``, ``file=``, ``line=``, ``step=``)."""
    with pytest.raises(error) as info:
        yield info
    got = info.value
    assert got.kind is kind, f"{got.kind} instead of {kind}: {got.message}"
    assert {name: getattr(got, name) for name in fields} == fields, got.message


def cli_error(result: Any, kind: ErrorKind, *, exit_code: int | None = None,
              **fields: Any) -> dict[str, Any]:
    """The ``{"error": ...}`` object a command run with ``--json`` printed on stdout (a
    :class:`clirun.Result` or a :class:`subprocess.CompletedProcess`), checked to be of
    ``kind`` with ``fields`` and, when given, ``exit_code`` (also the process's)."""
    out = result.stdout.decode() if isinstance(result.stdout, bytes) else result.stdout
    try:
        error: dict[str, Any] = json.loads(out)["error"]
    except (ValueError, KeyError, TypeError) as e:
        raise AssertionError(f"no JSON error on stdout ({e}):\n{out}\n{result.stderr}") from e
    assert error["kind"] == kind.value, f"{error['kind']} instead of {kind}: {error['message']}"
    assert {name: error.get(name) for name in fields} == fields, error
    if exit_code is not None:
        assert (result.returncode, error["exit_code"]) == (exit_code, exit_code), error
    assert result.returncode == error["exit_code"] != 0, (result.returncode, error)
    return error
