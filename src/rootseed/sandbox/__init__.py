"""Run one command hermetically under bubblewrap.

The command line is composed like mkosi's: one small function per concern
(:mod:`rootseed.sandbox.options`) returns an argv fragment; :func:`bwrap_argv` concatenates
them. Nothing ever goes through a shell. :func:`run` owns the rest: the environment of
``bwrap`` itself, stdin, the umask, the log, the ``--debug`` echo of the exact command, and
removing the mount points bwrap had to create inside the root filesystem.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rootseed.sandbox.bwrap import find_bwrap
    from rootseed.sandbox.execute import run
    from rootseed.sandbox.options import bwrap_argv
    from rootseed.sandbox.spec import SandboxSpec

__all__ = ["SandboxSpec", "bwrap_argv", "find_bwrap", "run"]

#: Each name's module, imported when the name is first used: a warm build that runs no
#: step never loads the runner (subprocess handling, ctypes for the neutral root, cgroups).
_WHERE = {"SandboxSpec": "rootseed.sandbox.spec", "bwrap_argv": "rootseed.sandbox.options",
          "find_bwrap": "rootseed.sandbox.bwrap", "run": "rootseed.sandbox.execute"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
