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
    #: what independently produced the same bytes ("Python M1", "DDC: gcc 12.2.0", …)
    reproduced_by: tuple[str, ...] = ()
    program: str = ""  # the chain's program that wrote it (inside the image)
    inputs: tuple[str, ...] = ()  # the files that program read (inside the image)

    @property
    def confirmation(self) -> str:
        """How this artifact was independently confirmed, in words for the report."""
        if self.status is Status.IDENTICAL:
            return ", ".join(self.reproduced_by) or self.tool
        if self.status is Status.NOT_COVERED:
            return f"not covered ({self.detail})"
        return self.status.value

    def summary(self) -> str:
        if self.status is Status.IDENTICAL:
            return f"{self.artifact}: identical ({self.chain_size} bytes, {self.tool})"
        if self.status is Status.DIFFERENT:
            other = "DDC" if self.tool == "DDC" else f"Python {self.tool}"
            return (f"{self.artifact}: differs at offset {self.offset} (chain "
                    f"{self.chain_size} bytes, {other} {self.python_size} bytes)")
        return f"{self.artifact}: {self.status.value}: {self.detail}"

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "line": self.line, "artifact": self.artifact,
                "tool": self.tool, "status": self.status.value, "offset": self.offset,
                "chain_size": self.chain_size, "python_size": self.python_size,
                "detail": self.detail, "seed": self.seed,
                "reproduced_by": list(self.reproduced_by), "confirmation": self.confirmation,
                "program": self.program, "inputs": list(self.inputs)}


@dataclass
class Report:
    package: str
    checks: list[ArtifactCheck] = field(default_factory=list)
    seed_pinned: bool = False  # the package pins a seed: its self-check is required
    #: diverse double-compiling: the compilers used, their flags, the ones skipped and why
    ddc: dict[str, Any] | None = None
    #: the directory holding this run's logs (reruns, DDC builds), kept after the run
    logs: str | None = None

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
                "checks": [c.as_dict() for c in self.checks],
                "ddc": self.ddc, "headline": self.headline(), "logs": self.logs}

    def headline(self) -> str | None:
        """Which independent compilers reproduced the chain's M2-Planet binary: the DDC
        rows of its compile, with the Python M1 and hex2 for the rest."""
        planet = [c for c in self.checks if c.artifact.endswith("/bin/M2-Planet")
                  and c.tool == "hex2"]
        if not planet:
            return None
        final = planet[-1]
        if final.status is not Status.IDENTICAL:
            return f"{final.artifact}: {final.status.value} ({final.summary()})"
        compiles = [c for c in self.checks if c.tool == "DDC"
                    and c.artifact.endswith("/M2-1.M1")]
        if not compiles:
            return (f"{final.artifact}: identical ({final.confirmation}); its C compile "
                    "was not reproduced by an independent compiler")
        labels = [lab.removeprefix("DDC: ") for lab in compiles[-1].reproduced_by]
        if compiles[-1].status is not Status.IDENTICAL or not labels:
            return f"{final.artifact}: its C compile: {compiles[-1].summary()}"
        return (f"{final.artifact} ({final.chain_size} bytes) reproduced byte for byte by "
                f"M2-Planet built with {', '.join(labels)}, linked by the Python M1 and "
                "hex2")

    def bootstrap_lines(self) -> list[dict[str, Any]]:
        """The lines ``rootseed bootstrap`` shows: the seed headline(s), the counts, and
        every artifact that is not identical."""
        lines: list[dict[str, Any]] = []
        headline = self.headline()
        for c in self.seed_checks:
            lines.append({"identical": c.status is Status.IDENTICAL, "summary": c.detail
                          if c.status is Status.IDENTICAL else c.summary(), "seed": True})
        if not self.seed_checks and self.seed_pinned:
            lines.append({"identical": False, "seed": True,
                          "summary": "the seed was not compared: no step where the seed "
                                     "rebuilt itself from its source"})
        if headline is not None:
            lines.append({"identical": self.ok, "summary": headline, "ddc": True})
        lines.append({"identical": self.ok, "summary": self.counts_line()})
        for c in self.checks:
            if c.status in (Status.DIFFERENT, Status.ERROR):
                lines.append({"identical": False, "summary": f"[{c.stage}] {c.summary()}"})
        return lines
