"""``digests/<stage>.txt``: one ``<manifest sha256 hex> <stage>-<name>`` line per image
(a package's image, and one ``<stage>-<sub>`` line per subpackage image)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rootseed.errors import ErrorKind, RootseedError
from rootseed.fsutil import atomic_write

_LINE = re.compile(r"^([0-9a-f]{64}) ([A-Za-z0-9][A-Za-z0-9._+-]*)$")


def read_digests(directory: Path) -> dict[str, str]:
    """Package → manifest hex from every ``*.txt`` of ``directory`` (absent: empty)."""
    found: dict[str, str] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            m = _LINE.match(line.strip())
            if m is None:
                raise RootseedError(f"{path}:{n}: expected '<sha256 hex> <stage>-<name>', "
                                    f"got {line!r}")
            found[m.group(2)] = m.group(1)
    return found


@dataclass(frozen=True)
class DigestChange:
    """What recording one image's digest does to ``digests/<stage>.txt``: ``old`` is the
    recorded hex (None: not recorded yet), ``new`` the built one."""

    image: str
    stage: str
    old: str | None
    new: str

    @property
    def status(self) -> str:
        """``added``, ``unchanged`` or ``differs``."""
        if self.old is None:
            return "added"
        return "unchanged" if self.old == self.new else "differs"

    def to_json(self) -> dict[str, object]:
        return {"image": self.image, "stage": self.stage, "status": self.status,
                "recorded": None if self.old is None else f"sha256:{self.old}",
                "built": f"sha256:{self.new}"}


class RecordedDigestsDiffer(RootseedError):
    """Recording would replace recorded digests with different ones (``changes``: those),
    and replacing was not asked for: a recorded value may be one someone else published."""

    kind = ErrorKind.DIGEST_MISMATCH

    def __init__(self, message: str, *, changes: list[DigestChange], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.changes = changes


def digest_changes(directory: Path, digests: Mapping[str, str], stages: Mapping[str, str]
                   ) -> list[DigestChange]:
    """What :func:`write_digests` would do, image by image (sorted by stage, image)."""
    changes: list[DigestChange] = []
    current: dict[str, dict[str, str]] = {}
    for image, digest in digests.items():
        stage = stages[image]
        if stage not in current:
            current[stage] = read_file(directory / f"{stage}.txt")
        changes.append(DigestChange(image, stage, current[stage].get(image),
                                    digest.removeprefix("sha256:")))
    return sorted(changes, key=lambda c: (c.stage, c.image))


def write_digests(directory: Path, digests: Mapping[str, str], stages: Mapping[str, str],
                  *, replace: bool = False) -> tuple[list[DigestChange], list[Path]]:
    """Merge ``digests`` (image → "sha256:hex" or hex) into ``<directory>/<stage>.txt``.

    ``stages`` maps image → stage. Lines are sorted by image name; each file is replaced
    atomically, and only when something in it changes. A recorded digest that differs from
    the built one is never replaced silently: unless ``replace``, nothing is written and
    :class:`RecordedDigestsDiffer` names each such image. Returns every image's change and
    the files written.
    """
    changes = digest_changes(directory, digests, stages)
    differing = [c for c in changes if c.status == "differs"]
    if differing and not replace:
        n = len(differing)
        raise RecordedDigestsDiffer(
            f"{n} recorded digest{'s' if n != 1 else ''} in {directory} "
            f"differ{'s' if n == 1 else ''} from this build; nothing was written:\n  "
            + "\n  ".join(f"{c.image}: recorded sha256:{c.old} → built sha256:{c.new}"
                          for c in differing),
            changes=changes,
            hint="a recorded value may be one someone else published (StageX signs the "
                 "digests its builds give): it is what the build is checked against, not "
                 "something to overwrite. `rootseed challenge PACKAGE` rebuilds independently "
                 "and compares; pass --replace only when these files are your own record")
    by_stage: dict[str, list[DigestChange]] = {}
    for change in changes:
        by_stage.setdefault(change.stage, []).append(change)
    written: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    for stage, entries in sorted(by_stage.items()):
        if all(c.status == "unchanged" for c in entries):
            continue
        path = directory / f"{stage}.txt"
        current = read_file(path)
        current.update({c.image: c.new for c in entries})
        atomic_write(path, "".join(f"{hexd} {pkg}\n"
                                  for pkg, hexd in sorted(current.items())).encode())
        written.append(path)
    return changes, written


def read_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            m = _LINE.match(line.strip())
            if m is None:
                raise RootseedError(f"{path}:{n}: expected '<sha256 hex> <stage>-<name>'")
            found[m.group(2)] = m.group(1)
    return found


def check_digests(built: Iterable[tuple[str, str]], recorded: Mapping[str, str]) -> list[str]:
    """Problems (empty when every built digest equals the recorded one)."""
    problems: list[str] = []
    for package, digest in built:
        hexd = digest.removeprefix("sha256:")
        want = recorded.get(package)
        if want is None:
            problems.append(f"{package}: no recorded digest (built sha256:{hexd})")
        elif want != hexd:
            problems.append(f"{package}: built sha256:{hexd}, recorded sha256:{want}")
    return problems
