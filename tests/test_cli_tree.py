from __future__ import annotations

import json
from pathlib import Path

from clirun import Result
from clirun import rootseed as run_cli
from kinds import cli_error
from rootseed.errors import ErrorKind
from treegen import sha, stagex_like_tree, write_package


def rootseed(*args: str, cwd: Path | None = None) -> Result:
    return run_cli(*args, cwd=cwd)


def test_list_json(tmp_path: Path) -> None:
    tree = stagex_like_tree(tmp_path / "t")
    r = rootseed("list", "--tree", str(tree), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [p["name"] for p in data["packages"]] == [
        "bootstrap-stage0", "bootstrap-stage1", "core-gcc", "core-gcc-libs", "core-libstdcxx",
        "core-gcc-cross"]
    assert data["packages"][1]["deps"] == ["bootstrap-stage0"]
    libs = data["packages"][3]
    assert (libs["origin"], libs["target"], libs["status"]) == (
        "core-gcc", "package-gcc-libs", "ok")
    assert data["problems"] == []


def test_graph_formats(tmp_path: Path) -> None:
    tree = str(stagex_like_tree(tmp_path / "t"))
    text = rootseed("graph", "core-gcc", "--tree", tree).stdout
    assert text.splitlines()[0].strip() == "1. bootstrap-stage0"
    dot = rootseed("graph", "--tree", tree, "--format", "dot").stdout
    assert dot.startswith("digraph") and '"core-gcc" -> "bootstrap-stage1";' in dot
    mermaid = rootseed("graph", "--tree", tree, "--format", "mermaid").stdout
    assert mermaid.startswith("graph BT") and "-->" in mermaid


def test_fetch_with_mirror_and_corrupt_copy(tmp_path: Path) -> None:
    data = b"source bytes"
    write_package(tmp_path / "t", "a", "x", f'''
[package]
name = "x"
version = "1"
description = "d"
license = "MIT"
[sources.src]
hash = "{sha(data)}"
mirrors = ["https://unreachable.invalid/x-{{version}}.tar"]
''', "FROM scratch\n")
    mirror = tmp_path / "m"
    mirror.mkdir()
    (mirror / "x-1.tar").write_bytes(data)
    common = ["--tree", str(tmp_path / "t"), "--mirror", str(mirror), "--offline"]
    ok = rootseed("fetch", "a-x", *common, "--cache-dir", str(tmp_path / "c1"), "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["fetched"][0]["sha256"] == sha(data)
    (mirror / "x-1.tar").write_bytes(b"tampered")
    bad = rootseed("fetch", "a-x", *common, "--cache-dir", str(tmp_path / "c2"), "--json")
    cli_error(bad, ErrorKind.FETCH, exit_code=1)
    text = bad.stderr.replace("\n", "")
    # words: a local file's own hash is never shown (package.toml chooses which file is read)
    assert f"the file does not match the pinned sha256 {sha(data)}" in text
    assert sha(b"tampered") not in text
    assert not (tmp_path / "c2" / "sources" / "sha256" / sha(data)).exists()


def test_broken_package_leaves_the_rest_working(tmp_path: Path) -> None:
    write_package(tmp_path, "a", "x", "[package]\nname='x'\n[sources.s]\nhash='zz'\n"
                  "mirrors=['https://e.org/s']\n", "FROM scratch\n")
    write_package(tmp_path, "a", "y", "[package]\nname='y'\n", "FROM stagex/a-x\n")
    write_package(tmp_path, "a", "z", "[package]\nname='z'\n", "FROM scratch\n")
    r = rootseed("list", "--tree", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {p["name"]: p["status"] for p in data["packages"]} == {
        "a-y": "blocked by a-x", "a-z": "ok"}
    [problem] = data["problems"]
    assert (problem["kind"], problem["file"], problem["field"], problem["package"]) == (
        "bad-hash", f"{tmp_path.name}/a/x/package.toml", "[sources.s] hash", "a-x")
    r = rootseed("build", "a-y", "--tree", str(tmp_path), "--cache-dir", str(tmp_path / "c"),
                 "--out", str(tmp_path / "o"), "--json")
    cli_error(r, ErrorKind.TREE, exit_code=1, package="a-y", via="a-x", problem="bad-hash",
              file=str(tmp_path / "a" / "x" / "package.toml"))
    r = rootseed("graph", "a-z", "--tree", str(tmp_path))
    assert r.returncode == 0 and r.stdout.strip() == "1. a-z"


def test_unknown_package(tmp_path: Path) -> None:
    tree = str(stagex_like_tree(tmp_path / "t"))
    r = rootseed("fetch", "core-gc", "--tree", tree, "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=1, package="core-gc")
    assert error["hint"].startswith("did you mean core-gcc")
