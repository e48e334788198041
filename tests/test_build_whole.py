"""``rootseed build --all`` / ``--stage``: every package in dependency order, going on past
failures, with a table (and --json) of what became of each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from buildtree import BUSYBOX, base_package, write
from clirun import Result
from clirun import rootseed as run_cli
from kinds import cli_error
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.whole import Outcome, build_whole, select
from rootseed.errors import ErrorKind
from rootseed.tree import Tree

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def package(tree: Path, stage: str, name: str, containerfile: str, extra: str = "") -> None:
    d = tree / stage / name
    write(d / "package.toml", f'[package]\nname = "{name}"\nversion = "1"\n{extra}')
    write(d / "Containerfile", containerfile)


def make_tree(root: Path) -> Path:
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    base_package(tree)
    package(tree, "core", "ok", "FROM rs/bootstrap-base\nRUN echo ok > /ok\n")
    package(tree, "core", "fail", "FROM rs/bootstrap-base\nRUN echo about to fail; exit 3\n")
    package(tree, "core", "after-fail", "FROM rs/core-fail\nRUN true\n")
    package(tree, "core", "nosrc", "FROM rs/bootstrap-base\nCOPY --from=fetch . /src/\n",
            f'[sources.gone]\nhash = "{"0" * 64}"\nmirrors = ["file:mirror/gone.tar"]\n')
    package(tree, "user", "broken", "FROM rs/core-ok\n",
            '[sources.s]\nhash = "nope"\nmirrors = ["https://e.org/s"]\n')
    package(tree, "user", "needs-broken", "FROM rs/user-broken\n")
    package(tree, "user", "fine", "FROM rs/core-ok\nRUN cat /ok > /fine\n")
    return tree


def test_build_whole_goes_on_past_failures(tmp_path: Path) -> None:
    tree = Tree.load(make_tree(tmp_path))
    builder = Builder(tree, cache_dir=tmp_path / "cache", out=tmp_path / "out", offline=True)
    names = select(tree, None)
    # dependencies first; broken packages are named too
    assert names.index("bootstrap-base") < names.index("core-ok") < names.index("user-fine")
    assert set(names) == {"bootstrap-base", "core-ok", "core-fail", "core-after-fail",
                          "core-nosrc", "user-broken", "user-needs-broken", "user-fine"}
    seen: list[str] = []
    report = build_whole(tree, builder, names, BuildOptions(progress=False),
                         lambda i, n, o: seen.append(f"{i}/{n} {o.name}"))
    assert len(seen) == len(names) and seen[0].startswith(f"1/{len(names)} ")
    got = {o.name: o for o in report.outcomes}
    assert {n: o.outcome for n, o in got.items()} == {
        "bootstrap-base": Outcome.BUILT, "core-ok": Outcome.BUILT, "user-fine": Outcome.BUILT,
        "core-fail": Outcome.FAILED, "core-after-fail": Outcome.BLOCKED,
        "core-nosrc": Outcome.SOURCES_MISSING, "user-broken": Outcome.BROKEN,
        "user-needs-broken": Outcome.BLOCKED}
    fail = got["core-fail"]
    assert fail.error is not None and "failed with exit code 3" in fail.error
    assert "\n" not in fail.error
    assert fail.log is not None and "about to fail" in fail.log.read_text()
    assert got["core-after-fail"].blocked_by == "core-fail"
    assert got["user-needs-broken"].blocked_by == "user-broken"
    assert got["user-broken"].error is not None and "hash" in got["user-broken"].error
    assert got["core-nosrc"].error is not None and "gone.tar" in got["core-nosrc"].error
    assert (tmp_path / "out" / "user-fine" / "index.json").is_file()
    assert not report.ok
    assert report.summary() == {"built": 3, "cached": 0, "failed": 1, "sources missing": 1,
                                "broken": 1, "blocked": 2}
    # again: what was built is cached now
    again = build_whole(tree, builder, names, BuildOptions(progress=False))
    assert {o.name for o in again.outcomes if o.outcome is Outcome.CACHED} == {
        "bootstrap-base", "core-ok", "user-fine"}


def rootseed(*args: str) -> Result:
    return run_cli(*args)


def test_cli_all_stage_json_and_table(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out",
              str(tmp_path / "o"), "--offline"]
    r = rootseed("build", "--stage", "bootstrap", *common, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [(x["package"], x["outcome"]) for x in data["results"]] == [
        ("bootstrap-base", "built")]
    r = rootseed("build", "--stage", "user", *common, "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    outcomes = {x["package"]: x["outcome"] for x in data["results"]}
    # the stage's packages and what they need from other stages
    assert outcomes == {"bootstrap-base": "cached", "core-ok": "built", "user-fine": "built",
                        "user-broken": "broken", "user-needs-broken": "blocked"}
    r = rootseed("build", "--all", *common)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "[8/8]" in r.stderr  # words: the progress count, for people
    for needle in ("core-fail", "failed with exit code 3", "log:", "sources missing",
                   "blocked", "user-broken"):
        assert needle in r.stdout, needle
    r = rootseed("build", "--all", "core-ok", *common, "--json")
    cli_error(r, ErrorKind.USAGE)
    r = rootseed("build", "--stage", "nope", *common, "--json")
    cli_error(r, ErrorKind.USAGE, exit_code=1)
