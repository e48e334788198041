"""Build the real stage0 x86 chain from ROOTSEED_MIRROR, once per test run, for tests
that compare the Python tools with the binaries the chain builds.

The layout is the one stage0-posix's kaem scripts expect: the seed under
``bootstrap-seeds/POSIX/x86/``, stage0-posix-x86 as ``x86/``, and M2libc, M2-Planet,
M2-Mesoplanet, mescc-tools beside it. We run the seed, ``mescc-tools-mini-kaem.kaem``
with kaem-0, then the part of ``kaem.run`` that builds M2-Planet and M2-Mesoplanet with
the chain's own tools (``mescc-tools-full-kaem.kaem``).
"""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from filelock import FileLock

SOURCES = ("stage0-posix-x86", "M2libc", "M2-Planet", "M2-Mesoplanet", "mescc-tools")


def mirror() -> Path:
    value = os.environ.get("ROOTSEED_MIRROR")
    if not value:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the pinned stage0 tarballs and hex0-seed> "
                    "to run the real-chain tests")
    path = Path(value)
    if not (path / "hex0-seed").is_file():
        pytest.skip(f"ROOTSEED_MIRROR={path} has no hex0-seed")
    return path


def _tarball(source: Path, name: str) -> Path:
    """``<name>-<40 hex digits>.tar.gz`` (so mescc-tools does not pick mescc-tools-extra)."""
    for path in sorted(source.glob(f"{name}-*.tar.gz")):
        commit = path.name[len(name) + 1:-len(".tar.gz")]
        if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit):
            return path
    pytest.skip(f"ROOTSEED_MIRROR={source} has no {name}-<commit>.tar.gz")


def _unpack(source: Path, top: Path) -> None:
    for name in SOURCES:
        staging = top / f".unpack-{name}"
        with tarfile.open(_tarball(source, name)) as tar:
            tar.extractall(staging, filter="tar")
        (inner,) = staging.iterdir()
        inner.rename(top / ("x86" if name == "stage0-posix-x86" else name))
        staging.rmdir()
    seed = top / "bootstrap-seeds/POSIX/x86/hex0-seed"
    seed.parent.mkdir(parents=True)
    seed.write_bytes((source / "hex0-seed").read_bytes())
    seed.chmod(0o755)


def _run(top: Path, argv: list[str], log: Path) -> None:
    with log.open("ab") as out:
        r = subprocess.run(argv, cwd=top, stdout=out, stderr=subprocess.STDOUT, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"stage0 chain step failed ({r.returncode}): {' '.join(argv)}; "
                           f"see {log}")


def _build(top: Path) -> None:
    log = top / "chain.log"
    try:
        _run(top, ["./bootstrap-seeds/POSIX/x86/hex0-seed", "./x86/hex0_x86.hex0",
                   "./x86/artifact/hex0"], log)
    except OSError as e:
        pytest.skip(f"cannot run the i386 hex0 seed here: {e}")
    _run(top, ["./x86/artifact/hex0", "./x86/kaem-minimal.hex0", "./x86/artifact/kaem-0"], log)
    _run(top, ["./x86/artifact/kaem-0", "./x86/mescc-tools-mini-kaem.kaem"], log)
    # kaem.run up to (and including) the full-kaem phase; the rest needs more sources
    lines = (top / "x86/kaem.run").read_text().splitlines()
    end = next(i for i, line in enumerate(lines) if "mescc-tools-full-kaem.kaem" in line)
    (top / "chain-part.kaem").write_text("\n".join(lines[:end + 1]) + "\n")
    _run(top, ["./x86/bin/kaem", "--verbose", "--strict", "--file", "chain-part.kaem"], log)


def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The top directory of a finished chain (``x86/bin``, ``x86/artifact``)."""
    source = mirror()
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # one build for all workers
    top = shared / "stage0-chain"
    with FileLock(str(shared / "stage0-chain.lock")):
        if not (top / "done").exists():
            if top.exists():
                raise RuntimeError(f"an earlier chain build in {top} did not finish")
            top.mkdir()
            _unpack(source, top)
            _build(top)
            (top / "done").write_text("ok\n")
    return top
