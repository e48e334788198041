"""``rootseed crosscheck``: the Python tools check the binary chain.

Every step of a package's Containerfile that a Python tool covers (hex0, hex1, hex2-0,
catm, M0, M1, hex2, blood-elf) is replayed on the exact input files the sandboxed build
used — taken from the cached filesystem of that build stage — and the result compared
byte for byte with the file the chain's binary wrote. A step run by the seed is also
compared with the seed itself: the seed must be what its own source assembles to.
"""

from __future__ import annotations

from rootseed.crosscheck.compare import first_difference
from rootseed.crosscheck.model import ArtifactCheck, Report, Status
from rootseed.crosscheck.replay import replay
from rootseed.crosscheck.run import (
    crosscheck,
    crosscheck_package,
    needed_stages,
)
from rootseed.crosscheck.steps import REPLAYABLE, Step, stage_steps

__all__ = ["REPLAYABLE", "ArtifactCheck", "Report", "Status", "Step", "crosscheck",
           "crosscheck_package", "first_difference", "needed_stages", "replay",
           "stage_steps"]
