"""``digests/<stage>.txt``: one ``<manifest sha256 hex> <stage>-<name>`` line per image
(a package's image, and one ``<stage>-<sub>`` line per subpackage image)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from rootseed.errors import RootseedError
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


def write_digests(directory: Path, digests: Mapping[str, str], stages: Mapping[str, str]
                  ) -> list[Path]:
    """Merge ``digests`` (package → "sha256:hex" or hex) into ``<directory>/<stage>.txt``.

    ``stages`` maps package → stage. Lines are sorted by package name; each file is
    replaced atomically. Returns the files written.
    """
    by_stage: dict[str, dict[str, str]] = {}
    for package, digest in digests.items():
        by_stage.setdefault(stages[package], {})[package] = digest.removeprefix("sha256:")
    written: list[Path] = []
    directory.mkdir(parents=True, exist_ok=True)
    for stage, entries in sorted(by_stage.items()):
        path = directory / f"{stage}.txt"
        current = read_file(path)
        current.update(entries)
        atomic_write(path, "".join(f"{hexd} {pkg}\n"
                                  for pkg, hexd in sorted(current.items())).encode())
        written.append(path)
    return written


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
