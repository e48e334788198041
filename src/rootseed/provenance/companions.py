"""rootseed's own records kept beside an image in ``out/<image>/``.

``provenance.json`` is written with the image; these are written later, about that exact
image, by other commands: ``crosscheck.json`` (``crosscheck``, ``bootstrap``) and
``challenge.json`` (``challenge``). ``report`` reads them. Publishing the same image again
keeps them (as regular files only: a link or FIFO under that name is dropped with the
entry); an image written anew drops them with the old entry, since they described it.
Signatures live outside out/ (``signatures/``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

CHALLENGE_FILE = "challenge.json"
CROSSCHECK_FILE = "crosscheck.json"
COMPANIONS: frozenset[str] = frozenset({CHALLENGE_FILE, CROSSCHECK_FILE})


def is_companion(image: Path, name: str) -> bool:
    """``name`` (relative to ``image``) is one of rootseed's records, as a regular file."""
    if name not in COMPANIONS:
        return False
    try:
        return stat.S_ISREG(os.lstat(image / name).st_mode)
    except OSError:
        return False
