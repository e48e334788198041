"""Shared fixtures; ``tests/`` is put on sys.path so helper modules import by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).parent))

from trust_helpers import GPG, Keys, fingerprints, gpg, kill_agent, short_gnupghome

#: With this set to 1 (``.ci/run`` sets it when the source mirrors are present), a skipped
#: test is a failure: a CI run that has everything must run everything.
REQUIRE_ALL = "ROOTSEED_REQUIRE_ALL"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if os.environ.get(REQUIRE_ALL) != "1" or not report.skipped \
            or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
    report.outcome = "failed"
    report.longrepr = (f"skipped, but {REQUIRE_ALL}=1 forbids skips (every input is "
                       f"present, so every test must run): {reason}")


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    """Throwaway OpenPGP keys (real GnuPG), generated once per session (per xdist worker)."""
    if GPG is None:
        pytest.skip("GnuPG (gpg) is not installed")
    with short_gnupghome() as home:
        yield _make_keys(home)


def _make_keys(home: Path) -> Keys:
    def new_key(uid: str, *extra: str, expire: str = "0") -> str:
        gpg(home, *extra, "--quick-gen-key", uid, "ed25519", "sign", expire)
        return fingerprints(home, uid)[0]

    alice = new_key("Alice <alice@example.org>")
    gpg(home, "--quick-add-key", alice, "ed25519", "sign", "0")
    alice_sub = fingerprints(home, alice)[1]
    bob = new_key("Bob <bob@example.org>")
    mallory = new_key("Mallory <mallory@example.org>")
    eve = new_key("Eve <eve@example.org>", "--faked-system-time", "20200101T000000",
                  expire="2020-06-01")
    rita = new_key("Rita <rita@example.org>")
    return Keys(home, alice, alice_sub, bob, mallory, eve, rita)


@pytest.fixture
def gnupghome(keys: Keys) -> Iterator[Path]:
    """This test's own GNUPGHOME: a copy of the session's keys (secret and public), at a
    short path (see :func:`trust_helpers.short_gnupghome`)."""
    with short_gnupghome() as base:
        home = base / "g"
        shutil.copytree(keys.home, home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
        home.chmod(0o700)
        try:
            yield home
        finally:
            kill_agent(home)


@pytest.fixture(scope="session")
def stage0_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding ``bootstrap-stage0`` built from ``ROOTSEED_MIRROR`` once per test run.

    The real chain takes minutes; the tests that need a built stage0 (the bootstrap digest,
    the pinned tools, the crosscheck) share this one cold build, made in this run from the
    seed, instead of making one each. Shared by the xdist workers of the run (the first
    one builds, the others wait for it).
    """
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> to "
                    "build bootstrap-stage0 for real")
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's basetemp, common to every worker
    cache, done = base / "stage0-cache", base / "stage0-cache.built"
    with FileLock(str(base / "stage0-cache.lock")):
        if not done.exists():
            r = subprocess.run(
                [sys.executable, "-m", "rootseed", "build", "bootstrap-stage0", "--mirror",
                 mirror, "--offline", "--cache-dir", str(cache), "--out",
                 str(base / "stage0-out")], capture_output=True, text=True, check=False)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            done.touch()
    return cache


@pytest.fixture
def stage0_cache(stage0_built: Path) -> Iterator[Path]:
    """:func:`stage0_built`'s cache, used by one test at a time.

    Two crosschecks must not run on one cache at once: their M2-Mesoplanet reruns see each
    other's spawned commands ("unexpected spawned commands"), so the tests take turns.
    """
    with FileLock(str(stage0_built.parent / "stage0-cache.use.lock")):
        yield stage0_built
