"""What a crosscheck found, per artifact (pure data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    IDENTICAL = "identical"
    DIFFERENT = "different"
    NOT_COVERED = "not covered"
    ERROR = "error"  # the replay itself failed (a missing input, the tool refused)


@dataclass(frozen=True)
class ArtifactCheck:
    stage: str
    line: int  # of the RUN in the Containerfile
    artifact: str  # absolute path inside the stage's image
    tool: str  # the Python tool, or the chain's program when not covered
    status: Status
    offset: int | None = None  # first differing offset (DIFFERENT)
    chain_size: int | None = None
    python_size: int | None = None
    detail: str = ""  # why not covered / what failed / what was compared
    seed: bool = False  # the seed itself, compared with its own output

    def summary(self) -> str:
        if self.status is Status.IDENTICAL:
            return f"{self.artifact}: identical ({self.chain_size} bytes, {self.tool})"
        if self.status is Status.DIFFERENT:
            return (f"{self.artifact}: differs at offset {self.offset} (chain "
                    f"{self.chain_size} bytes, Python {self.tool} {self.python_size} bytes)")
        return f"{self.artifact}: {self.status.value}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "line": self.line, "artifact": self.artifact,
                "tool": self.tool, "status": self.status.value, "offset": self.offset,
                "chain_size": self.chain_size, "python_size": self.python_size,
                "detail": self.detail, "seed": self.seed}


@dataclass
class Report:
    package: str
    checks: list[ArtifactCheck] = field(default_factory=list)
    seed_pinned: bool = False  # the package pins a seed: its self-check is required

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status is status)

    @property
    def ok(self) -> bool:
        """Every covered artifact is identical, at least one was compared, and a pinned
        seed was compared with its own source's assembly."""
        return (self.count(Status.DIFFERENT) == 0 and self.count(Status.ERROR) == 0
                and self.count(Status.IDENTICAL) > 0
                and (bool(self.seed_checks) or not self.seed_pinned))

    @property
    def seed_checks(self) -> list[ArtifactCheck]:
        return [c for c in self.checks if c.seed]

    def counts_line(self) -> str:
        parts = [f"{self.count(Status.IDENTICAL)} artifacts identical"]
        for status in (Status.DIFFERENT, Status.ERROR):
            if self.count(status):
                parts.append(f"{self.count(status)} {status.value}")
        parts.append(f"{self.count(Status.NOT_COVERED)} not covered")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {"package": self.package, "ok": self.ok, "seed_pinned": self.seed_pinned,
                "counts": {s.value: self.count(s) for s in Status},
                "checks": [c.as_dict() for c in self.checks]}

    def bootstrap_lines(self) -> list[dict[str, Any]]:
        """The lines ``rootseed bootstrap`` shows: the seed headline(s), the counts, and
        every artifact that is not identical."""
        lines: list[dict[str, Any]] = []
        for c in self.seed_checks:
            lines.append({"identical": c.status is Status.IDENTICAL, "summary": c.detail
                          if c.status is Status.IDENTICAL else c.summary(), "seed": True})
        if not self.seed_checks and self.seed_pinned:
            lines.append({"identical": False, "seed": True,
                          "summary": "the seed was not compared: no step where the seed "
                                     "rebuilt itself from its source"})
        lines.append({"identical": self.ok, "summary": self.counts_line()})
        for c in self.checks:
            if c.status in (Status.DIFFERENT, Status.ERROR):
                lines.append({"identical": False, "summary": f"[{c.stage}] {c.summary()}"})
        return lines
