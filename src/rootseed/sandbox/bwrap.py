"""Where bubblewrap is (asked before a build starts, without loading the runner)."""

from __future__ import annotations

import shutil

from rootseed.errors import ErrorKind, RootseedError


def find_bwrap() -> str:
    """The bubblewrap executable, or a RootseedError saying how to install it."""
    path = shutil.which("bwrap")
    if path is None:
        raise RootseedError("bubblewrap (bwrap) is not installed; every RUN step needs it",
                            hint="apt-get install bubblewrap", kind=ErrorKind.SANDBOX)
    return path
