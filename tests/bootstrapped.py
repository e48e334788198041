"""What the ``stage0_bootstrapped`` fixture (tests/conftest.py) gives a real-chain test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Bootstrapped:
    """The run's one ``rootseed bootstrap --mirror … --json`` on :func:`stage0_built`'s
    cache: ``report`` its JSON, ``out`` its ``--out`` (``out/bootstrap-stage0/`` holds the
    image and ``crosscheck.json``, the crosscheck with DDC of the chain)."""

    cache: Path
    out: Path
    report: dict[str, Any]
