"""Run one command hermetically under bubblewrap.

The command line is composed like mkosi's: one small function per concern
(:mod:`rootseed.sandbox.options`) returns an argv fragment; :func:`bwrap_argv` concatenates
them. Nothing ever goes through a shell. :func:`run` owns the rest: the environment of
``bwrap`` itself, stdin, the umask, the log, the ``--debug`` echo of the exact command, and
removing the mount points bwrap had to create inside the root filesystem.
"""

from __future__ import annotations

from rootseed.sandbox.execute import find_bwrap, run
from rootseed.sandbox.options import bwrap_argv
from rootseed.sandbox.spec import SandboxSpec

__all__ = ["SandboxSpec", "bwrap_argv", "find_bwrap", "run"]
