"""Shared fixtures; ``tests/`` is put on sys.path so helper modules import by name."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from filelock import FileLock

sys.path.insert(0, str(Path(__file__).parent))

from trust_helpers import GPG, Keys, fingerprints, gpg, kill_agent, short_gnupghome

if TYPE_CHECKING:
    from remotecluster import Cluster

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


#: The fixture every real-chain test reads; a test that uses it must be marked ``mirror``.
REAL_CHAIN = "stage0_built"


def _run_dir(config: pytest.Config) -> Path:
    """The run's basetemp, common to every xdist worker of the run."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


class _Stage0:
    """``bootstrap-stage0`` built from ``ROOTSEED_MIRROR`` once per test run, in a process
    of its own started as soon as the run knows a real-chain test was selected, so the
    minutes it takes overlap the rest of the suite instead of stalling a worker.

    Files in the run's basetemp (shared by the xdist workers): ``stage0-cache/`` (the
    cache), ``stage0-build.log``, ``stage0-build.status`` (the build's exit code, written
    when it ends). Only the process that started the build holds its handle.
    """

    process: subprocess.Popen[bytes] | None = None

    #: The build in a wrapper that writes the status file whatever happens to the build.
    SCRIPT = (
        "import os, subprocess, sys\n"
        "mirror, base = sys.argv[1:]\n"
        "with open(os.path.join(base, 'stage0-build.log'), 'wb') as log:\n"
        "    code = subprocess.run([sys.executable, '-m', 'rootseed', 'build',\n"
        "        'bootstrap-stage0', '--mirror', mirror, '--offline', '--cache-dir',\n"
        "        os.path.join(base, 'stage0-cache'), '--out', os.path.join(base, 'stage0-out')],\n"
        "        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode\n"
        "status = os.path.join(base, 'stage0-build.status')\n"
        "with open(status + '.tmp', 'w') as f:\n"
        "    f.write(str(code))\n"
        "os.replace(status + '.tmp', status)\n")

    @classmethod
    def start(cls, base: Path, mirror: str) -> None:
        with FileLock(str(base / "stage0-build.lock")):
            started = base / "stage0-build.started"
            if started.exists():
                return
            cls.process = subprocess.Popen([sys.executable, "-c", cls.SCRIPT, mirror, str(base)],
                                           stdin=subprocess.DEVNULL, start_new_session=True)
            started.touch()

    @staticmethod
    def wait(base: Path) -> Path:
        status = base / "stage0-build.status"
        while not status.exists():
            time.sleep(0.5)
        code = status.read_text()
        if code != "0":
            log = (base / "stage0-build.log").read_text(errors="replace")
            pytest.fail(f"building bootstrap-stage0 from ROOTSEED_MIRROR failed (exit {code}):\n"
                        f"{log[-4000:]}", pytrace=False)
        return base / "stage0-cache"

    @classmethod
    def finish(cls, interrupted: bool) -> None:
        """The process that started the build waits for it (another worker may still need
        it), or ends it if the run was interrupted: no build outlives its test run."""
        if cls.process is None:
            return
        if interrupted and cls.process.poll() is None:
            os.killpg(cls.process.pid, signal.SIGKILL)
        cls.process.wait()


@pytest.hookimpl(trylast=True)  # after -m/-k have deselected what does not run
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Every real-chain test is marked ``mirror`` and runs last; if one is selected, the one
    stage0 build of the run starts now, beside the other tests."""
    real = [item for item in items if REAL_CHAIN in getattr(item, "fixturenames", ())]
    unmarked = [item.nodeid for item in real if item.get_closest_marker("mirror") is None]
    if unmarked:
        raise pytest.UsageError("these tests read the real stage0 chain but are not marked "
                                f"@pytest.mark.mirror: {', '.join(unmarked)}")
    if not real:
        return
    chain = set(real)
    items[:] = [i for i in items if i not in chain] + real
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if mirror and not config.option.collectonly:
        _Stage0.start(_run_dir(config), mirror)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _Stage0.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)


@pytest.fixture(scope="session")
def stage0_built(pytestconfig: pytest.Config) -> Path:
    """A cache holding ``bootstrap-stage0`` built from ``ROOTSEED_MIRROR`` in this run, from
    the seed: the one real-chain build every real-chain test reads (the bootstrap digest,
    the pinned tools, the crosscheck and DDC, stage1's head, the Python tools against the
    chain's binaries). Tests may add entries (a cache is safe to share); none may change
    what is there.
    """
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> to "
                    "build bootstrap-stage0 for real")
    base = _run_dir(pytestconfig)
    _Stage0.start(base, mirror)  # already started, unless this test was not collected so
    return _Stage0.wait(base)


#: Stages of ``bootstrap-stage0`` whose ``/stage0`` together hold every source, artifact and
#: tool of the chain (each stage holds what the stage it is FROM holds).
CHAIN_STAGES = ("m2-planet", "m2-mesoplanet")


@pytest.fixture(scope="session")
def stage0_tree(stage0_built: Path, pytestconfig: pytest.Config) -> Path:
    """The real chain's ``/stage0`` as one plain directory (``x86/``, ``x86/artifact/``,
    ``x86/bin/``, ``M2libc/``, …), copied out of :func:`stage0_built`'s stages once per run:
    for the tests that run the chain's own binaries or read its intermediate files."""
    from rootseed import shipped
    from rootseed.engine.engine import Builder
    from rootseed.tree import Tree

    base = _run_dir(pytestconfig)
    top, done = base / "stage0-tree", base / "stage0-tree.done"
    with FileLock(str(base / "stage0-tree.lock")):
        if not done.exists():
            mirror = Path(os.environ["ROOTSEED_MIRROR"])
            with Builder(Tree.load(shipped.packages()), cache_dir=stage0_built,
                         out=base / "stage0-tree-out", mirrors=(mirror,),
                         offline=True) as builder:  # its overlay views end with it
                for stage in CHAIN_STAGES:
                    shutil.copytree(builder.stage_rootfs("bootstrap-stage0", stage) / "stage0",
                                    top, symlinks=True, dirs_exist_ok=True)
            done.touch()
    return top


@pytest.fixture(scope="session")
def remote_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's REAPI cluster (tests/remotecluster.py: ROOTSEED_REMOTE's, or one
    started for the session and stopped after)."""
    from remotecluster import cluster_session

    yield from cluster_session(tmp_path_factory)
