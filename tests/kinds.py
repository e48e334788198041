"""Check which error happened by its kind and fields, not by its English."""

from __future__ import annotations

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
