"""``rootseed trace`` formats (text, json, mermaid, dot) and its failures on the command line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from clirun import Result
from clirun import rootseed as run_cli
from kinds import cli_error
from provenance_fixtures import CHILD_PKG, GRANDCHILD_PKG, SEED_PKG, three_level_chain
from rootseed.errors import ErrorKind
from rootseed.provenance.render import to_dot, to_mermaid
from rootseed.provenance.trace import trace


def rootseed(*args: str, cwd: Path) -> Result:
    return run_cli(*args, cwd=cwd)


_M_NODE = re.compile(r'^    (n\d+)\["([^"]*)"\]$')
_M_EDGE = re.compile(r"^    (n\d+) --> (n\d+)$")


def parse_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A strict reader for the Mermaid subset we emit; fails on any other line."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for line in lines[1:]:
        if m := _M_NODE.match(line):
            assert m.group(1) not in nodes, f"node declared twice: {line}"
            nodes[m.group(1)] = m.group(2)
        elif m := _M_EDGE.match(line):
            assert m.group(1) in nodes and m.group(2) in nodes, f"undeclared node: {line}"
            edges.append((m.group(1), m.group(2)))
        else:
            raise AssertionError(f"not Mermaid we understand: {line!r}")
    return nodes, edges


def test_mermaid_well_formed(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    nodes, edges = parse_mermaid(to_mermaid(trace(tmp_path, GRANDCHILD_PKG)))
    names = {k: v.split("<br/>")[0] for k, v in nodes.items()}
    assert sorted(names.values()) == sorted([SEED_PKG, CHILD_PKG, GRANDCHILD_PKG])
    by_name = {v: k for k, v in names.items()}
    assert sorted(edges) == sorted([(by_name[SEED_PKG], by_name[CHILD_PKG]),
                                    (by_name[CHILD_PKG], by_name[GRANDCHILD_PKG])])
    assert "seed: hex0-seed" in nodes[by_name[SEED_PKG]]


def test_dot_well_formed(tmp_path: Path) -> None:
    three_level_chain(tmp_path)
    dot = to_dot(trace(tmp_path, GRANDCHILD_PKG))
    assert dot.startswith("digraph trace {") and dot.rstrip().endswith("}")
    assert dot.count(" -> ") == 2
    if shutil.which("dot") is None:
        pytest.skip("graphviz `dot` is not installed: the structural checks above passed, "
                    "the Graphviz parser check was not run")
    r = subprocess.run(["dot", "-Tjson"], input=dot, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    graph = json.loads(r.stdout)
    labels = sorted(o["label"].split("\\n")[0] for o in graph["objects"])
    assert labels == sorted([SEED_PKG, CHILD_PKG, GRANDCHILD_PKG])
    assert len(graph["edges"]) == 2


def test_cli_trace_formats(tmp_path: Path) -> None:
    chain = three_level_chain(tmp_path / "out")
    r = rootseed("trace", GRANDCHILD_PKG, "--out", "out", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["root"] == {"package": GRANDCHILD_PKG, "digest": chain.grandchild}
    assert [n["package"] for n in data["nodes"]] == [SEED_PKG, CHILD_PKG, GRANDCHILD_PKG]
    assert data["nodes"][0]["sources"][0]["seed"] is True
    assert str(tmp_path) not in r.stdout  # no host paths

    r = rootseed("trace", GRANDCHILD_PKG, "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert all(p in r.stdout for p in (SEED_PKG, CHILD_PKG, GRANDCHILD_PKG, "seed: hex0-seed"))
    assert "3 images verified back to the seed" in r.stderr  # words: the summary for people

    r = rootseed("trace", GRANDCHILD_PKG, "--out", "out", "--format", "mermaid", cwd=tmp_path)
    assert r.returncode == 0 and len(parse_mermaid(r.stdout)[1]) == 2
    r = rootseed("trace", GRANDCHILD_PKG, "--out", "out", "--format", "dot", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("digraph")


def test_cli_trace_broken_link(tmp_path: Path) -> None:
    three_level_chain(tmp_path / "out")
    shutil.rmtree(tmp_path / "out" / CHILD_PKG)
    r = rootseed("trace", GRANDCHILD_PKG, "--out", "out", "--json", cwd=tmp_path)
    error = cli_error(r, ErrorKind.PROVENANCE, exit_code=1, package=GRANDCHILD_PKG)
    assert CHILD_PKG in error["message"]  # words: names the missing parent, for people


def test_markup_in_hostile_names_is_shown_as_text(tmp_path: Path) -> None:
    from provenance_fixtures import SEED_SHA, build
    from rootseed.engine.record import ResolvedSource

    out = tmp_path / "out"
    seed = ResolvedSource(id="hex0", file="hex0[/b]seed", sha256=SEED_SHA,
                          uri="file:seed/x", seed=True)
    build(out, "x-y", sources=(seed,))
    common = ("--out", str(out), "--tree", str(tmp_path / "no-tree"), "--cache-dir",
              str(tmp_path / "cache"))
    r = rootseed("trace", "x-y", *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # words: what the terminal shows is the test (markup shown as text)
    assert "back to the seed (hex0[/b]seed sha256" in " ".join(r.stderr.split())
    (out / "[red]x").mkdir()  # a hostile directory name in out/: named in the summary
    (out / "[red]x" / "provenance.json").write_text("{}")
    r = rootseed("report", "-o", str(tmp_path / "r.html"), *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "not verified: [red]x)" in " ".join(r.stderr.split())  # words: as above
