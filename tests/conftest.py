"""Shared fixtures; ``tests/`` is put on sys.path so helper modules import by name."""

from __future__ import annotations

import json
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

from bootstrapped import Bootstrapped
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
#: The fixture with the run's one real ``rootseed bootstrap`` report (it reads REAL_CHAIN).
REAL_BOOTSTRAP = "stage0_bootstrapped"


def _run_dir(config: pytest.Config) -> Path:
    """The run's basetemp, common to every xdist worker of the run."""
    base = config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


class _Stage0:
    """``bootstrap-stage0`` built from ``ROOTSEED_MIRROR`` once per test run, in a process
    of its own started as soon as the run knows a real-chain test was selected, so the
    minutes it takes overlap the rest of the suite instead of stalling a worker. When a
    test reads the real ``bootstrap`` report (:func:`stage0_bootstrapped`), the same
    process then runs ``rootseed bootstrap --json`` on that cache once (the build a cache
    hit, the crosscheck with DDC done once for the whole run, its memo kept in the cache):
    the tests that read the report or bootstrap again share it instead of each replaying
    the chain.

    Files in the run's basetemp (shared by the xdist workers): ``stage0-cache/`` (the
    cache), ``stage0-out/``, and for each job (``build``, ``bootstrap``)
    ``stage0-JOB.log`` (its stderr), ``stage0-JOB.json`` (its stdout) and
    ``stage0-JOB.status`` (its exit code, written when it ends; the build's if the build
    failed). Only the process that started the jobs holds their handle.
    """

    process: subprocess.Popen[bytes] | None = None

    #: The jobs in a wrapper that writes each status file whatever happens to the job.
    SCRIPT = (
        "import os, subprocess, sys\n"
        "mirror, base, then_bootstrap = sys.argv[1:]\n"
        "def status(job, code):\n"
        "    path = os.path.join(base, f'stage0-{job}.status')\n"
        "    with open(path + '.tmp', 'w') as f:\n"
        "        f.write(str(code))\n"
        "    os.replace(path + '.tmp', path)\n"
        "def run(job, *argv):\n"
        "    with open(os.path.join(base, f'stage0-{job}.log'), 'wb') as log, \\\n"
        "            open(os.path.join(base, f'stage0-{job}.json'), 'wb') as out:\n"
        "        return subprocess.run([sys.executable, '-m', 'rootseed', *argv,\n"
        "            '--mirror', mirror, '--offline', '--json', '--cache-dir',\n"
        "            os.path.join(base, 'stage0-cache'), '--out', os.path.join(base, 'stage0-out')],\n"
        "            stdout=out, stderr=log, stdin=subprocess.DEVNULL).returncode\n"
        "code = run('build', 'build', 'bootstrap-stage0')\n"
        "status('build', code)\n"
        "if then_bootstrap == '1':\n"
        "    status('bootstrap', run('bootstrap', 'bootstrap') if code == 0 else code)\n")

    @classmethod
    def start(cls, base: Path, mirror: str, bootstrap: bool) -> None:
        with FileLock(str(base / "stage0-build.lock")):
            started = base / "stage0-build.started"
            if started.exists():
                return
            cls.process = subprocess.Popen(
                [sys.executable, "-c", cls.SCRIPT, mirror, str(base), "1" if bootstrap else "0"],
                stdin=subprocess.DEVNULL, start_new_session=True)
            if bootstrap:
                (base / "stage0-bootstrap.planned").touch()
            started.touch()

    @staticmethod
    def wait(base: Path, job: str = "build") -> Path:
        """Wait for ``job``; its stdout (``stage0-JOB.json``), or the failure with its log."""
        status = base / f"stage0-{job}.status"
        while not status.exists():
            if job != "build" and not (base / f"stage0-{job}.planned").exists():
                pytest.fail(f"the real-chain {job} was not started with the build: only "
                            "tests collected at the start of the run get it", pytrace=False)
            time.sleep(0.5)
        code = status.read_text()
        if code != "0":
            failed = job if (base / "stage0-build.status").read_text() == "0" else "build"
            log = (base / f"stage0-{failed}.log").read_text(errors="replace")
            pytest.fail(f"rootseed {failed} bootstrap-stage0 from ROOTSEED_MIRROR failed "
                        f"(exit {code}):\n{log[-4000:]}", pytrace=False)
        return base / f"stage0-{job}.json"

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
    """Every real-chain test is marked ``mirror`` and runs last (those that read the run's
    bootstrap report at the very end); if one is selected, the one stage0 build of the run
    (and its bootstrap, if a test reads that) starts now, beside the other tests."""
    # the longest tests that need nothing of the run's own builds (marked start_first, e.g.
    # a whole stage0 built on the remote workers) start at once, beside everything else,
    # instead of being the last thing a worker does
    first = [item for item in items if item.get_closest_marker("start_first") is not None]
    items[:] = first + [item for item in items if item not in set(first)]
    real = [item for item in items if REAL_CHAIN in getattr(item, "fixturenames", ())]
    unmarked = [item.nodeid for item in real if item.get_closest_marker("mirror") is None]
    if unmarked:
        raise pytest.UsageError("these tests read the real stage0 chain but are not marked "
                                f"@pytest.mark.mirror: {', '.join(unmarked)}")
    if not real:
        return
    chain = set(real)
    # the tests that wait for the run's one bootstrap after the build (stage0_bootstrapped)
    # go last: the other real-chain tests run while it crosschecks the chain
    real.sort(key=lambda item: REAL_BOOTSTRAP in getattr(item, "fixturenames", ()))
    items[:] = [i for i in items if i not in chain] + real
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if mirror and not config.option.collectonly:
        _Stage0.start(_run_dir(config), mirror, bootstrap=any(
            REAL_BOOTSTRAP in getattr(item, "fixturenames", ()) for item in real))


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
    _Stage0.start(base, mirror, bootstrap=False)  # already started, unless not collected so
    _Stage0.wait(base)
    return base / "stage0-cache"


@pytest.fixture(scope="session")
def stage0_bootstrapped(stage0_built: Path, pytestconfig: pytest.Config) -> Bootstrapped:
    """``rootseed bootstrap`` run once in this run, after the real-chain build (a cache hit:
    what it adds is the crosscheck of every step with the Python tools and DDC, and its
    memo). Tests read the report; a later ``bootstrap`` on this cache recalls it."""
    base = _run_dir(pytestconfig)
    report = json.loads(_Stage0.wait(base, "bootstrap").read_text())
    return Bootstrapped(stage0_built, base / "stage0-out", report)


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
