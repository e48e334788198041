"""A provenance chain hundreds of images deep: ``trace`` (every format) and ``report``
walk it without Python's recursion limit (the walks are iterative, no depth limit).

Each walk runs with a recursion limit :data:`HEADROOM` frames above where it starts, well
under :data:`DEPTH`: a walk that took one frame per image would need ``DEPTH`` frames and
fail, so this chain proves what one deeper than CPython's default limit (1000) would, at a
fifth of the size (the chain was 2000 images: minutes of the suite's time)."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from clirun import Result
from clirun import rootseed as run_cli
from provenance_fixtures import build, plain_source, seed_source
from rootseed.provenance.render import to_dot, to_json, to_mermaid
from rootseed.provenance.trace import trace

DEPTH = 400
HEADROOM = 200  # frames a walk may use beyond its caller's: far fewer than DEPTH


@contextmanager
def shallow_stack() -> Iterator[None]:
    """Python's recursion limit set :data:`HEADROOM` frames above the current depth."""
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + HEADROOM)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def deep_chain(out: Path, depth: int = DEPTH) -> list[str]:
    """``d-0`` (the seed, FROM scratch) ← ``d-1`` ← … ← ``d-<depth-1>``; the names."""
    names = [f"d-{i}" for i in range(depth)]
    build(out, names[0], sources=(seed_source(),))
    for parent, name in itertools.pairwise(names):
        build(out, name, parents=(parent,), sources=(plain_source(name),))
    return names


@pytest.fixture(scope="module")
def deep_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    out = tmp_path_factory.mktemp("deep") / "out"
    return out, deep_chain(out)


def rootseed(*args: str, cwd: Path) -> Result:
    return run_cli(*args, cwd=cwd)


def test_trace_walks_a_deep_chain_in_process(deep_out: tuple[Path, list[str]]) -> None:
    out, names = deep_out
    with shallow_stack():
        root = trace(out, names[-1])
        walked = [n.package for n in root.walk()]
        nodes = to_json(root)["nodes"]
        edges = to_mermaid(root).count(" --> "), to_dot(root).count(" -> ")
    assert walked == names  # seed first, each once
    assert len(nodes) == DEPTH and nodes[0]["parents"] == []
    assert all(n["verified"][-1] == "parents verified (1)" for n in nodes[1:])
    assert edges == (DEPTH - 1, DEPTH - 1)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_cli_trace_of_a_deep_chain(deep_out: tuple[Path, list[str]], tmp_path: Path,
                                   fmt: str) -> None:
    out, names = deep_out
    with shallow_stack():
        proc = rootseed("trace", names[-1], "--format", fmt, "--out", str(out), "--tree",
                        str(tmp_path / "no-tree"), "--cache-dir", str(tmp_path / "cache"),
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    if fmt == "json":
        assert [n["package"] for n in json.loads(proc.stdout)["nodes"]] == names
    else:  # too deep for a nested tree: a list, seed first, each with its parent
        # words: the summary for people (the --json form is checked above)
        assert f"{DEPTH} images verified back to the seed" in " ".join(proc.stderr.split())
        assert f"{DEPTH} images deep: shown as a list, seed first" in proc.stdout
        assert proc.stdout.index(f"{names[0]} sha256:") < proc.stdout.index(
            f"{names[1]} sha256:") < proc.stdout.index(f"{names[-1]} sha256:")
        assert proc.stdout.count("built from d-") == DEPTH - 1
        assert max(len(line) for line in proc.stdout.splitlines()) < 400


def test_cli_report_of_a_deep_chain(deep_out: tuple[Path, list[str]], tmp_path: Path
                                    ) -> None:
    out, _ = deep_out
    page = tmp_path / "report.html"
    with shallow_stack():
        proc = rootseed("report", "-o", str(page), "--json", "--out", str(out), "--tree",
                        str(tmp_path / "no-tree"), "--cache-dir", str(tmp_path / "cache"),
                        cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    data = json.loads(proc.stdout)
    assert data["packages"] == DEPTH and data["broken"] == []
    assert page.read_text().count('class="node verified') == DEPTH
