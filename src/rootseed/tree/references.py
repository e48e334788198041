"""Which images a Containerfile refers to (FROM and COPY --from), with line numbers.

Only the references are read here; full parsing lives in ``rootseed.containerfile``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dockerfile

from rootseed.errors import RootseedError


@dataclass(frozen=True)
class ImageReference:
    ref: str
    line: int


def image_references(path: Path) -> list[ImageReference]:
    """FROM bases and COPY --from sources that are not stages of the same file."""
    try:
        commands = dockerfile.parse_file(str(path))
    except dockerfile.GoParseError as e:
        raise RootseedError(f"{path}: cannot parse Containerfile: {e}") from e
    except OSError as e:
        raise RootseedError(f"{path}: cannot read Containerfile: {e}") from e
    stages: set[str] = {"scratch", "fetch"}
    refs: list[ImageReference] = []
    for c in commands:
        if c.cmd.upper() == "FROM":
            words = list(c.value)
            if words and words[0] not in stages:
                refs.append(ImageReference(words[0], c.start_line))
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2])
        elif c.cmd.upper() in ("COPY", "ADD"):
            for flag in c.flags:
                if flag.startswith("--from="):
                    source = flag.split("=", 1)[1]
                    if source not in stages and not source.isdigit():
                        refs.append(ImageReference(source, c.start_line))
    return refs


def strip_tag(ref: str) -> str:
    """``ns/name:tag`` or ``ns/name@sha256:…`` → ``ns/name``."""
    ref = ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref = ref[: len(ref) - len(last)] + last.split(":", 1)[0]
    return ref
