"""``rootseed challenge``: an independent rebuild that trusts no cache, compared with the record.

The rebuild runs as a separate ``rootseed build`` process with a fresh, empty cache, in
another directory, with different environment variables, umask, TMPDIR, time zone, locale
and job count, so anything that leaks from the builder's conditions into the image shows up
as a difference. Sources are re-verified by their pinned sha256 on the way in.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.challenge.compare import Difference, compare_trees
from rootseed.engine.api import RemoteTarget, read_digests
from rootseed.errors import RootseedError
from rootseed.fetch.cache import SourceCache
from rootseed.oci import manifest_digest, unpack_image
from rootseed.settings import Settings
from rootseed.tree import Tree

IDENTICAL, COULD_NOT_DECIDE, DIFFERS = 0, 1, 2


@dataclass(frozen=True)
class Conditions:
    """What the rebuild deliberately does differently from a usual build."""

    jobs: int
    umask: int
    env: dict[str, str]

    def describe(self) -> list[str]:
        return [f"jobs={self.jobs}", f"umask={self.umask:03o}"] + [
            f"{k}={v}" for k, v in sorted(self.env.items())]


@dataclass
class ChallengeResult:
    package: str
    recorded: str | None  # "sha256:…"
    recorded_from: str
    rebuilt: str | None
    verdict: str  # "identical", "differs", "undecided"
    conditions: list[str]
    differences: list[Difference] = field(default_factory=list)
    reason: str | None = None
    rebuild_log: str | None = None
    diffoscope: str | None = None

    @property
    def exit_code(self) -> int:
        return {"identical": IDENTICAL, "differs": DIFFERS}.get(self.verdict, COULD_NOT_DECIDE)

    def as_dict(self) -> dict[str, object]:
        return {"package": self.package, "verdict": self.verdict, "recorded": self.recorded,
                "recorded_from": self.recorded_from, "rebuilt": self.rebuilt,
                "conditions": self.conditions, "reason": self.reason,
                "differences": [d.as_dict() for d in self.differences],
                "diffoscope": self.diffoscope}


def recorded_digest(settings: Settings, tree: Tree, package: str,
                    digests_dir: Path | None) -> tuple[str | None, str, Path | None]:
    """(digest, where it came from, local layout or None): the out dir first, then digests/."""
    layout = settings.out / package
    if (layout / "index.json").is_file():
        return manifest_digest(layout), str(layout), layout
    directory = digests_dir or tree.root.parent / "digests"
    recorded = read_digests(directory).get(package)
    if recorded is not None:
        return f"sha256:{recorded}", str(directory / f"{tree.get(package).stage}.txt"), None
    return None, f"neither {layout} nor {directory}", None


def leave_the_recorded_second(layout: Path | None, *, now: Callable[[], float] = time.time,
                              sleep: Callable[[float], None] = time.sleep) -> float:
    """Wait until the wall clock is past the second the recorded image was written in.

    What catches a build that embeds the time is that the rebuild's steps run at another
    wall-clock time. The real-time clock cannot be shifted for an unprivileged sandbox
    (time namespaces cover only the monotonic and boot clocks, and LD_PRELOAD tricks do not
    reach static binaries), so the rebuild must at least not start within the second in
    which the recorded build's last step ran (before its ``index.json`` was written).
    Returns the seconds waited. A coarser embedded time (the date) is only caught by a
    challenge run at another time; the result's conditions list the rebuild's start time.
    """
    if layout is None:
        return 0.0
    try:
        written = os.stat(layout / "index.json").st_mtime
    except OSError:
        return 0.0
    boundary = float(int(written) + 1)
    waited = 0.0
    while (t := now()) < boundary:
        sleep(boundary - t)
        waited += boundary - t
    return waited


def _conditions(settings: Settings) -> Conditions:
    other_jobs = 1 if settings.jobs > 1 else 2
    noise = f"{random.getrandbits(64):016x}"
    return Conditions(jobs=other_jobs, umask=0o077, env={
        "TZ": "Pacific/Kiritimati", "LANG": "tr_TR.UTF-8", "LC_ALL": "tr_TR.UTF-8",
        "ROOTSEED_CHALLENGE_NOISE": noise, "SOURCE_DATE_EPOCH": "1234567890",
        "HOME": "/nonexistent-challenge-home", "USER": "challenger",
    })


def _stock_mirror(settings: Settings, tree: Tree, package: str, mirror: Path) -> None:
    """Expose already-verified sources by file name; the rebuild re-verifies each one."""
    cache = SourceCache(settings.cache_dir)
    for name in tree.order([package]):
        for source in tree.packages[name].sources:
            cached = cache.path(source.hash)
            if cached.is_file() and not (mirror / source.file).exists():
                shutil.copyfile(cached, mirror / source.file)


def challenge(settings: Settings, tree: Tree, package: str, *, digests_dir: Path | None = None,
              diff_tool: str | None = None, keep: bool = False,
              progress: Callable[[str, Path | None], None] | None = None,
              remote: RemoteTarget | None = None) -> ChallengeResult:
    """Rebuild ``package`` independently and compare. ``progress(text, log)``: what it is
    doing now, and the log the rebuild writes (None when there is none). ``remote``: the
    rebuild's RUN steps run on that REAPI service, each executed again on a worker (never
    answered from the service's action cache, which may hold the recorded build's)."""
    def say(text: str, log: Path | None = None) -> None:
        if progress is not None:
            progress(text, log)

    tree.get(package)
    recorded, recorded_from, layout = recorded_digest(settings, tree, package, digests_dir)
    conditions = _conditions(settings)
    result = ChallengeResult(package=package, recorded=recorded, recorded_from=recorded_from,
                             rebuilt=None, verdict="undecided",
                             conditions=conditions.describe())
    if recorded is None:
        result.reason = f"no recorded digest for {package}: looked in {recorded_from}"
        return result
    say(f"waiting for the second {package} was recorded in to pass")
    leave_the_recorded_second(layout)
    result.conditions.append(
        "started=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    work = Path(tempfile.mkdtemp(prefix="rootseed-challenge-", dir=_other_tmp()))
    try:
        mirror = work / "mirror"
        mirror.mkdir()
        _stock_mirror(settings, tree, package, mirror)
        rebuilt_out = work / "out"
        argv = [sys.executable, "-m", "rootseed", "build", package, "--tree", str(tree.root),
                "--cache-dir", str(work / "cache"), "--out", str(rebuilt_out),
                "--jobs", str(conditions.jobs), "--mirror", str(mirror)]
        for m in settings.mirrors:
            argv += ["--mirror", str(m)]
        if settings.offline:
            argv.append("--offline")
        if remote is not None:
            argv += ["--remote", remote.endpoint, "--instance", remote.instance,
                     "--remote-no-cache"]
            result.conditions.append(f"remote={remote.endpoint}")
        tmpdir = work / "tmp"
        tmpdir.mkdir()
        env = {**os.environ, **conditions.env, "TMPDIR": str(tmpdir)}
        env.pop("ROOTSEED_CACHE_DIR", None)
        log = work / "rebuild.log"
        say(f"rebuilding {package} from the verified sources (fresh cache, "
            f"{', '.join(conditions.describe()[:2])}, other TZ/locale/TMPDIR) — log: {log}",
            log)
        with log.open("wb") as f:
            proc = subprocess.run(argv, cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, check=False,
                                  preexec_fn=lambda: os.umask(conditions.umask))
        if proc.returncode != 0:
            keep = True
            result.rebuild_log = str(log)
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            result.reason = "the independent rebuild failed:\n" + "\n".join(tail)
            return result
        rebuilt_layout = rebuilt_out / package
        result.rebuilt = manifest_digest(rebuilt_layout)
        if result.rebuilt == recorded:
            result.verdict = "identical"
            return result
        result.verdict = "differs"
        if layout is not None:
            say(f"comparing the files of the recorded and the rebuilt {package}")
            a, b = work / "recorded", work / "rebuilt"
            unpack_image(layout, a)
            unpack_image(rebuilt_layout, b)
            result.differences = compare_trees(a, b)
            if diff_tool is not None:
                result.diffoscope = _run_diffoscope(diff_tool, a, b)
        return result
    finally:
        if keep:
            result.rebuild_log = result.rebuild_log or str(work / "rebuild.log")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _other_tmp() -> str | None:
    """A temp location other than the usual one, when the machine has it."""
    for candidate in ("/var/tmp", tempfile.gettempdir()):
        if os.access(candidate, os.W_OK):
            return candidate
    return None


def _run_diffoscope(tool: str, a: Path, b: Path) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise RootseedError(f"--diff {tool}: {tool} is not installed",
                            hint="apt-get install diffoscope (or drop --diff)")
    proc = subprocess.run([exe, "--text", "-", str(a), str(b)], capture_output=True,
                          text=True, check=False)
    return proc.stdout or proc.stderr
