"""``rootseed build --all --jobs N`` end to end: independent packages really run side by
side (and not with ``--jobs 1``), a failing package blocks exactly what needs it, and
the report names every package once.

Concurrency is shown without timing: each of two independent packages RUNs ``sleep``
with an argument unique to this test, and the test watches /proc for those sleeps. With
``--jobs 2`` it waits until both are alive at once (only then does it end them); with
``--jobs 1`` it ends each one as soon as it sees it, after checking that the other is
not alive. A wrong scheduler makes the first wait time out or the second check fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildtree import BUSYBOX, base_package, make_tarball, write
from rootseed.oci import unpack_image
from sleepers import WAIT, alive, end, end_all, marker

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

HOLD = 2.0  # seconds a sleeper is kept alive with --jobs 1 (see one_at_a_time)


def package(tree: Path, stage: str, name: str, containerfile: str) -> None:
    d = tree / stage / name
    write(d / "package.toml", f'[package]\nname = "{name}"\nversion = "1"\n')
    write(d / "Containerfile", containerfile)


def make_tree(root: Path, markers: dict[str, str]) -> Path:
    """base ← a, b (sleepers), fail ← after-fail ← after-after; a, b ← both."""
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    base_package(tree)
    for name, arg in markers.items():
        # `|| true`: the test ends the sleep; the shell goes on (and forks, not execs)
        package(tree, "core", name, f"FROM rs/bootstrap-base\nRUN sleep {arg} || true; "
                                    f"echo {name} > /{name}\n")
    package(tree, "core", "fail", "FROM rs/bootstrap-base\nRUN echo about to fail; exit 3\n")
    package(tree, "core", "after-fail", "FROM rs/core-fail\nRUN echo never > /never\n")
    package(tree, "user", "after-after", "FROM rs/core-after-fail\nRUN true\n")
    package(tree, "user", "both", "FROM rs/core-a\nCOPY --from=rs/core-b /b /b\n")
    return tree


def start(tree: Path, tmp: Path, tag: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rootseed", "build", "--all", "--tree", str(tree),
         "--cache-dir", str(tmp / f"cache-{tag}"), "--out", str(tmp / f"out-{tag}"),
         "--offline", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], markers: dict[str, str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
        end_all(markers)


def together(proc: subprocess.Popen[str], markers: dict[str, str]) -> None:
    """Wait until every marker sleep is alive at the same time, then end them."""
    deadline = time.monotonic() + WAIT
    seen: dict[str, int] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        seen = alive(markers)
        if len(seen) == len(markers):
            for pid in seen.values():
                end(pid)
            return
        time.sleep(0.05)
    raise AssertionError(f"the packages never ran at the same time (alive: {sorted(seen)}; "
                         f"build exit {proc.poll()})")


def one_at_a_time(proc: subprocess.Popen[str], markers: dict[str, str]) -> None:
    """Keep each marker sleep alive for HOLD seconds once seen, checking all along that
    no other one is alive with it, then end it. (HOLD only makes a wrong scheduler
    likelier to be caught; a right one passes however slow the machine is.)"""
    done: set[str] = set()
    held: dict[str, float] = {}
    deadline = time.monotonic() + WAIT
    while len(done) < len(markers) and time.monotonic() < deadline and proc.poll() is None:
        now = alive(markers)
        assert len(now) <= 1, f"--jobs 1 ran {sorted(now)} at the same time"
        for name, pid in now.items():
            since = held.setdefault(name, time.monotonic())
            if time.monotonic() - since >= HOLD:
                end(pid)
                done.add(name)
        time.sleep(0.02)
    assert done == set(markers), f"saw only {sorted(done)} (build exit {proc.poll()})"


EXPECTED = {
    "bootstrap-base": "built", "core-a": "built", "core-b": "built", "user-both": "built",
    "core-fail": "failed", "core-after-fail": "blocked", "user-after-after": "blocked"}


def test_all_jobs2_runs_independent_packages_together_and_blocks_dependents(
        tmp_path: Path) -> None:
    markers = {"a": marker(), "b": marker()}
    tree = make_tree(tmp_path, markers)
    proc = start(tree, tmp_path, "2", "--jobs", "2", "--json")
    together(proc, markers)
    stdout, stderr = finish(proc, markers)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    data = json.loads(stdout)
    names = [r["package"] for r in data["results"]]
    assert sorted(names) == sorted(EXPECTED), names  # every package, once
    got = {r["package"]: r for r in data["results"]}
    assert {n: r["outcome"] for n, r in got.items()} == EXPECTED
    assert got["core-after-fail"]["blocked_by"] == "core-fail"
    assert got["user-after-after"]["blocked_by"] == "core-fail"
    assert got["core-after-fail"]["error"] == "needs core-fail, which was not built (failed)"
    assert got["user-after-after"]["error"] == (
        "needs core-fail (through what it needs), which was not built (failed)")
    assert "exit code 3" in got["core-fail"]["error"]
    assert all(got[n]["blocked_by"] is None for n in EXPECTED if EXPECTED[n] != "blocked")
    assert data["summary"]["built"] == 4 and data["summary"]["blocked"] == 2
    out = tmp_path / "out-2"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        n for n, o in EXPECTED.items() if o == "built")  # no partial or blocked output
    # the blocked package never ran: no log of its step
    assert not (tmp_path / "cache-2" / "logs" / "core-after-fail").exists()
    # --json: the step events of every package are JSON lines on stderr, and they show
    # both sleepers started before either ended
    events = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    runs = [(e["event"], e["package"]) for e in events
            if e["package"] in ("core-a", "core-b") and e["instruction"].startswith("RUN")]
    starts = [i for i, (kind, _) in enumerate(runs) if kind == "start"]
    ends = [i for i, (kind, _) in enumerate(runs) if kind == "end"]
    assert len(starts) == 2 and len(ends) == 2, runs
    assert max(starts) < min(ends), runs


def test_all_jobs1_runs_one_package_at_a_time_and_tables_each_once(tmp_path: Path) -> None:
    markers = {"a": marker(), "b": marker()}
    tree = make_tree(tmp_path, markers)
    proc = start(tree, tmp_path, "1", "--jobs", "1")
    one_at_a_time(proc, markers)
    stdout, stderr = finish(proc, markers)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    for name, outcome in EXPECTED.items():
        rows = [line for line in stdout.splitlines()
                if re.match(rf"\W*{re.escape(name)}\s*│\s*{outcome}\s*│", line)]
        assert len(rows) == 1, (name, stdout)
    assert re.search(r"core-after-fail\s*│\s*blocked\s*│\s*needs core-fail", stdout), stdout


def test_side_by_side_builds_give_the_digests_of_one_at_a_time(tmp_path: Path) -> None:
    """Packages sharing a parent image, a source, the cache and the overlay namespace
    while built at once make the same bytes as when built one by one."""
    tree = tmp_path / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    base_package(tree)
    shared = make_tarball(tree / "mirror" / "shared-1.tar.gz", {"shared/data": b"same\n"})
    for name in ("x", "y", "z"):  # one source of all three: fetched at once, once
        d = tree / "core" / name
        write(d / "package.toml", f'[package]\nname = "{name}"\nversion = "1"\n'
              f'[sources.shared]\nversion = "1"\nhash = "{shared}"\n'
              'file = "shared-{version}.tar.gz"\nmirrors = ["file:mirror/{file}"]\n')
        write(d / "Containerfile", f"FROM rs/bootstrap-base AS b\nARG SHARED_SOURCE\n"
                                   f"ADD fetch/${{SHARED_SOURCE}} /o/\nRUN "
                                   f"echo {name} > /o/{name} && ln /o/{name} /o/link\n"
                                   f"FROM scratch\nCOPY --from=b /o /\n")
    digests = []
    for jobs in ("1", "3"):
        r = subprocess.run(
            [sys.executable, "-m", "rootseed", "build", "--all", "--json", "--jobs", jobs,
             "--tree", str(tree), "--cache-dir", str(tmp_path / f"c{jobs}"), "--out",
             str(tmp_path / f"o{jobs}"), "--offline"],
            capture_output=True, text=True, check=False, timeout=WAIT)
        assert r.returncode == 0, r.stderr
        digests.append({x["package"]: x["manifest_digest"]
                        for x in json.loads(r.stdout)["results"]})
    assert digests[0] == digests[1] and len(digests[0]) == 4
    unpacked = tmp_path / "x"
    unpack_image(tmp_path / "o3" / "core-x", unpacked)
    assert (unpacked / "shared" / "data").read_text() == "same\n"
