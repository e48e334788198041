"""A real install: sdist and wheel built from this checkout, the wheel installed into a fresh
virtualenv, and ``rootseed`` run from an empty directory (nothing from the checkout in reach).

Slow-ish (a PEP 517 build in an isolated environment plus a ``pip install`` of the runtime
dependencies): everything lives in this one module and shares one install. It runs in CI like
every other test; deselect it locally with ``-m 'not install'``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from filelock import FileLock

from rootseed import shipped

pytestmark = pytest.mark.install
SOURCE = Path(__file__).resolve().parents[1]  # the checkout under test (read, not written to)


@dataclass(frozen=True)
class Install:
    wheel: Path
    sdist: Path
    rootseed: Path  # the console script inside the fresh venv
    empty: Path     # an empty working directory
    env: dict[str, str]


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False,
                          **kwargs)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory) -> Install:
    work = tmp_path_factory.mktemp("install")
    # One build per test run, shared by the xdist workers: two builds of one checkout at
    # once race on its egg-info and build/ directories.
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's basetemp, common to every worker
    dist = base / "install-dist"
    with FileLock(str(base / "install-dist.lock")):
        if not (dist / ".built").exists():
            # sdist first, then the wheel from the unpacked sdist (python -m build's
            # default): what a user or a distribution gets, and proof the sdist is complete.
            r = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(SOURCE)])
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            (dist / ".built").touch()
    (wheel,) = dist.glob("rootseed-*.whl")
    (sdist,) = dist.glob("rootseed-*.tar.gz")
    venv = work / "venv"
    r = _run([sys.executable, "-m", "venv", str(venv)])
    assert r.returncode == 0, r.stderr
    r = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    empty = work / "empty"
    empty.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work / "home"),
           "ROOTSEED_CACHE_DIR": str(work / "cache"), "COLUMNS": "200", "LC_ALL": "C.UTF-8"}
    return Install(wheel, sdist, venv / "bin" / "rootseed", empty, env)


def rootseed(inst: Install, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(inst.rootseed), *args], cwd=inst.empty, env=inst.env)


def expected_revision() -> str | None:
    """What the build should have embedded: HEAD of this checkout, or None without git."""
    def git(*args: str) -> str | None:
        try:
            r = _run(["git", "-C", str(SOURCE), *args])
        except OSError:
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != SOURCE:
        return None
    head = git("rev-parse", "--verify", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return None if head is None else head + ("-dirty" if dirty else "")


def test_wheel_and_sdist_carry_the_shipped_data(install: Install) -> None:
    with zipfile.ZipFile(install.wheel) as z:
        names = set(z.namelist())
    for data in ("rootseed/data/packages/bootstrap/stage0/package.toml",
                 "rootseed/data/examples/seed/hex0/Containerfile",
                 "rootseed/data/examples/mirror/hex0-seed",
                 "rootseed/data/seeds/x86/hex0.hex0",
                 "rootseed/data/digests/bootstrap.txt",
                 "rootseed/data/digests/seed.txt",
                 "rootseed/py.typed"):
        assert data in names, f"{data} missing from {install.wheel.name}"
    with tarfile.open(install.sdist) as t:
        top = t.getnames()[0].split("/")[0]
        assert f"{top}/src/rootseed/data/examples/mirror/hex0-seed" in t.getnames()


def test_version_names_the_source_revision(install: Install) -> None:
    r = rootseed(install, "--version")
    assert r.returncode == 0, r.stderr
    revision = expected_revision()
    if revision is None:
        assert r.stdout.strip() == "rootseed 0.1.0 (unknown revision)"
    else:
        assert r.stdout.strip() == f"rootseed 0.1.0 (revision {revision})"


def test_runs_from_the_venv_not_the_checkout(install: Install) -> None:
    python = install.rootseed.parent / "python"
    r = _run([str(python), "-c", "import rootseed.shipped as s; print(s.examples())"],
             cwd=install.empty, env=install.env)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).is_relative_to(install.rootseed.parents[1])


def test_bootstrap_demo_from_an_empty_directory(install: Install) -> None:
    r = rootseed(install, "bootstrap", "--demo", "--offline", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["package"] == "seed-hello" and report["demo"] is True
    assert all(t["expected"] for t in report["tools"])
    recorded = (shipped.digests() / "seed.txt").read_text().split()
    assert report["manifest_digest"] == "sha256:" + recorded[recorded.index("seed-hello") - 1]
    assert any("recorded" in line for line in report["verified"])
    # out/ is the working directory's, as documented; nothing is written into the venv.
    assert (install.empty / "out" / "seed-hello" / "index.json").is_file()
    human = rootseed(install, "bootstrap", "--demo", "--offline")
    assert human.returncode == 0, human.stderr
    assert "seed-hello" in human.stdout and "Traceback" not in human.stderr


def test_list_from_an_empty_directory(install: Install) -> None:
    r = rootseed(install, "list", "--json")
    assert r.returncode == 0, r.stderr
    names = [p["name"] for p in json.loads(r.stdout)["packages"]]
    assert "bootstrap-stage0" in names


def test_tool_hex0_from_an_empty_directory(install: Install, tmp_path: Path) -> None:
    source = tmp_path / "in.hex0"
    source.write_text("48 65 6c 6c 6f  # Hello\n0a ; newline\n")
    out = tmp_path / "out.bin"
    r = rootseed(install, "tool", "hex0", str(source), str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"Hello\n"
    # And on the shipped seed source: the 180-byte seed, a fixed point.
    seed = tmp_path / "seed"
    r = rootseed(install, "tool", "hex0", str(shipped.seeds() / "x86" / "hex0.hex0"), str(seed))
    assert r.returncode == 0, r.stderr
    mirror_seed = (shipped.examples() / "mirror" / "hex0-seed").read_bytes()
    assert hashlib.sha256(seed.read_bytes()).digest() == hashlib.sha256(mirror_seed).digest()


def test_version_string_shape() -> None:
    """The in-process answer for this checkout: version plus a revision or 'unknown'."""
    from rootseed.version import describe

    assert re.fullmatch(r"\S+ \((revision [0-9a-f]{40}(-dirty)?|unknown revision)\)",
                        describe())


def test_compiled_gzip_is_installed(install: Install) -> None:
    """The C extension behind rootseed.oci.gogzip is compiled into the wheel from the
    sdist's source, and works from the installed venv."""
    with zipfile.ZipFile(install.wheel) as z:
        assert any(re.fullmatch(r"rootseed/oci/_goflate\..*\.so", n) for n in z.namelist())
    with tarfile.open(install.sdist) as t:
        assert any(n.endswith("/src/rootseed/oci/_goflate.c") for n in t.getnames())
    python = install.rootseed.parent / "python"
    code = ("import gzip, sys; from rootseed.oci import gogzip; "
            "out = gogzip.gzip_bytes(b'rootseed' * 1000); "
            "assert gzip.decompress(out) == b'rootseed' * 1000; "
            "print(gogzip.__file__, out[:10].hex())")
    r = _run([str(python), "-c", code], cwd=install.empty, env=install.env)
    assert r.returncode == 0, r.stderr
    where, header = r.stdout.split()
    assert Path(where).is_relative_to(install.rootseed.parents[1])
    assert header == "1f8b08000000000000ff"
