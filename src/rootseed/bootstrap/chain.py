"""The chain ``rootseed bootstrap`` prints, derived from what was built (pure: no I/O).

For every image of the chain, in build order: its manifest digest, the Containerfile
stages that produced it (built or taken from the cache) and the programs those stages ran
(the first word of each exec-form ``RUN``, in file order, each named once). Nothing here is
a fixed text: another tree, another Containerfile or another result gives another chain.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from rootseed.containerfile import Containerfile, Copy, Run, Stage


@dataclass(frozen=True)
class Link:
    """One image of the chain."""

    image: str  # "<stage>-<name>"
    manifest_digest: str  # "sha256:<hex>"
    stages: tuple[str, ...]  # Containerfile stages that produced it, in file order
    programs: tuple[str, ...]  # programs its RUN steps ran, first use order

    def as_dict(self) -> dict[str, object]:
        return {"image": self.image, "manifest_digest": self.manifest_digest,
                "stages": list(self.stages), "programs": list(self.programs)}


@dataclass(frozen=True)
class Chain:
    seed: str | None  # the seed's file name, when the chain has one
    links: tuple[Link, ...]

    def programs(self) -> tuple[str, ...]:
        """Every program the chain ran, first use order, each once."""
        return tuple(dict.fromkeys(p for link in self.links for p in link.programs))

    def text(self) -> str:
        """``seed → program → … ⇒ image sha256:… ⇒ …`` (digests shortened to 12 digits)."""
        parts: list[str] = []
        seen: set[str] = set()
        for link in self.links:
            new = [p for p in link.programs if p not in seen]
            seen.update(new)
            run = " → ".join(new)
            short = link.manifest_digest.removeprefix("sha256:")[:12]
            parts.append(f"{run} ⇒ {link.image} {short}" if run else f"{link.image} {short}")
        head = f"{self.seed} (seed) → " if self.seed and self.seed not in seen else ""
        return head + " ⇒ ".join(parts) if parts else (self.seed or "")

    def as_dict(self) -> dict[str, object]:
        return {"seed": self.seed, "programs": list(self.programs()),
                "links": [link.as_dict() for link in self.links]}


def image_stages(cf: Containerfile, target: str | None = None) -> list[Stage]:
    """The stages the image (``target``, default the last stage) is made from, in file
    order: the target, its base and every stage it copies from, transitively. The same
    whether this run executed them or found them in the cache."""
    last = cf.stage(target) if target is not None else cf.stages[-1]
    todo = [last] if last is not None else []
    seen: set[int] = set()
    while todo:
        stage = todo.pop()
        if stage.index in seen:
            continue
        seen.add(stage.index)
        refs = [stage.base] + [i.from_ for i in stage.instructions
                               if isinstance(i, Copy) and i.from_ is not None]
        todo.extend(s for s in (cf.stage(r) for r in refs) if s is not None)
    return [s for s in cf.stages if s.index in seen]


def stage_programs(ordered: Sequence[Stage]) -> tuple[str, ...]:
    """The programs the stages' RUN steps ran, first use order, each once."""
    programs: dict[str, None] = {}
    for stage in ordered:
        for instruction in stage.instructions:
            if isinstance(instruction, Run) and not instruction.shell_form \
                    and instruction.command:
                programs.setdefault(posixpath.basename(instruction.command[0]), None)
            elif isinstance(instruction, Run) and instruction.command:
                # Shell form: the shell ran it; name the command's first word.
                words = instruction.command[0].split()
                if words:
                    programs.setdefault(posixpath.basename(words[0]), None)
    return tuple(programs)


def link(image: str, manifest_digest: str, cf: Containerfile,
         target: str | None = None) -> Link:
    stages = image_stages(cf, target)
    return Link(image, manifest_digest, tuple(s.label for s in stages),
                stage_programs(stages))
