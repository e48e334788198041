"""Moved to :mod:`rootseed.provenance.record`: provenance reads a build's record and the
engine fills it, so the record lives with provenance and imports run one way only
(engine → provenance). These names stay for code that imports them from here."""

from __future__ import annotations

from rootseed.provenance.record import BuildRecord as BuildRecord
from rootseed.provenance.record import ParentImage as ParentImage
from rootseed.provenance.record import ResolvedSource as ResolvedSource
