"""``rootseed report``: one self-contained HTML page, checked in headless Chromium."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from clirun import rootseed as run_cli
from provenance_fixtures import (
    CHILD_PKG,
    GRANDCHILD_PKG,
    SEED_PKG,
    build,
    large_out,
    plain_source,
    three_level_chain,
)
from rootseed.provenance.report import collect, render_html, write_report
from rootseed.tree import Tree
from treegen import stagex_like_tree

BROKEN_PKG = "core-broken"
ORPHAN_PARENT = "core-unbuilt"


def make_out(out: Path) -> dict[str, str]:
    """The 3-level chain, a challenge result on the child, and one package with no parent."""
    chain = three_level_chain(out)
    build(out, ORPHAN_PARENT, sources=(plain_source("x"),))
    build(out, BROKEN_PKG, parents=(ORPHAN_PARENT,), sources=(plain_source("y"),))
    shutil.rmtree(out / ORPHAN_PARENT)
    (out / CHILD_PKG / "challenge.json").write_text(json.dumps(
        {"result": "match", "rebuilt_digest": chain.child}))
    return {SEED_PKG: chain.seed, CHILD_PKG: chain.child, GRANDCHILD_PKG: chain.grandchild}


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_collect_statuses(tmp_path: Path) -> None:
    digests = make_out(tmp_path)
    infos = {i.package: i for i in collect(tmp_path)}
    assert sorted(infos) == sorted([*digests, BROKEN_PKG, ORPHAN_PARENT])
    for name, digest in digests.items():
        assert (infos[name].status, infos[name].digest) == ("verified", digest)
    assert infos[BROKEN_PKG].status == "broken"
    assert infos[BROKEN_PKG].error is not None
    assert f"missing parent {ORPHAN_PARENT}" in infos[BROKEN_PKG].error
    assert infos[ORPHAN_PARENT].status == "missing"
    assert infos[CHILD_PKG].challenge == {"result": "match", "rebuilt_digest": digests[CHILD_PKG]}
    assert infos[GRANDCHILD_PKG].parents == [CHILD_PKG]


def test_collect_with_tree(tmp_path: Path) -> None:
    digests = make_out(tmp_path / "out")
    tree = Tree.load(stagex_like_tree(tmp_path / "tree"))
    deps = {name: pkg.deps for name, pkg in tree.packages.items()}
    infos = {i.package: i for i in collect(tmp_path / "out", deps)}
    assert sorted(infos) == sorted({*digests, BROKEN_PKG, ORPHAN_PARENT, *tree.packages})
    # built images keep what their provenance says; the rest come from the tree, unbuilt
    assert infos[CHILD_PKG].status == "verified"
    assert infos["core-gcc"].status == "unbuilt"
    assert infos["core-gcc"].parents == ["bootstrap-stage1"]
    assert infos["core-gcc-cross"].parents == ["bootstrap-stage1", "core-gcc-libs",
                                               "core-libstdcxx"]


def test_html_is_self_contained(tmp_path: Path) -> None:
    make_out(tmp_path / "out")
    infos = collect(tmp_path / "out")
    page = render_html(infos)
    assert page == render_html(collect(tmp_path / "out"))  # deterministic
    assert str(tmp_path) not in page
    parser = _Collector()
    parser.feed(page)
    for tag, attrs in parser.tags:
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
        for attr in ("src", "href", "xlink:href", "srcset", "action"):
            value = attrs.get(attr)
            assert value is None or value.startswith("#"), (tag, attr, value)
    assert "@import" not in page and "url(http" not in page
    nodes = [a["data-package"] for t, a in parser.tags if t == "g" and "data-package" in a]
    assert sorted(n for n in nodes if n) == sorted(i.package for i in infos)
    assert [t for t, _ in parser.tags].count("svg") == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run",
          "--disable-default-apps", "--window-size=1400,1000"]


class CDP:
    """The few Chrome DevTools protocol calls this test needs, over one websocket."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return dict(msg.get("result", {}))
            self.events.append(msg)

    def wait_event(self, method: str) -> dict[str, Any]:
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv()))

    def eval(self, expression: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in r, r
        return r["result"].get("value")


@contextlib.contextmanager
def chromium(tmp: Path) -> Iterator[CDP]:
    assert CHROMIUM is not None
    profile = tmp / "profile"
    proc = subprocess.Popen(
        [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
         "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.is_file() and port_file.read_text().strip():
                break
            if proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.loads(r.read())
        page = next(t for t in targets if t["type"] == "page")
        cdp = CDP(page["webSocketDebuggerUrl"])
        try:
            yield cdp
        finally:
            cdp.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@needs_chromium
def test_report_click_shows_details(tmp_path: Path) -> None:
    digests = make_out(tmp_path / "out")
    tree = Tree.load(stagex_like_tree(tmp_path / "tree"))
    expected = collect(tmp_path / "out", {n: p.deps for n, p in tree.packages.items()})
    r = run_cli("report", "--out", "out", "--tree", "tree", "--output", "report.html",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = tmp_path / "report.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "report.html", "tree"]

    with chromium(tmp_path) as cdp:
        cdp.call("Network.enable")
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=report.as_uri())
        cdp.wait_event("Page.loadEventFired")
        graph = cdp.eval("""JSON.stringify({
            svgs: document.querySelectorAll('svg').length,
            nodes: Array.from(document.querySelectorAll('svg g.node'))
                        .map(g => g.getAttribute('data-package')),
            edges: document.querySelectorAll('svg path.edge').length,
            panel: document.getElementById('details').getAttribute('data-package')})""")
        state = json.loads(graph)
        assert state["svgs"] == 1
        assert sorted(state["nodes"]) == sorted(i.package for i in expected)
        assert {*digests, BROKEN_PKG, ORPHAN_PARENT, "core-gcc"} <= set(state["nodes"])
        assert state["edges"] == sum(len(i.parents) for i in expected) >= 3
        assert state["panel"] is None  # nothing selected before the click

        # a real mouse click at the centre of the child's node box
        rect = json.loads(cdp.eval(f"""(() => {{
            const g = document.querySelector('g.node[data-package="{CHILD_PKG}"]');
            g.scrollIntoView({{block: 'center', inline: 'center'}});
            const r = g.querySelector('rect').getBoundingClientRect();
            return JSON.stringify({{x: r.x + r.width / 2, y: r.y + r.height / 2}});
        }})()"""))
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            cdp.call("Input.dispatchMouseEvent", type=kind, x=rect["x"], y=rect["y"],
                     button="left", clickCount=1)
        panel = json.loads(cdp.eval("""JSON.stringify({
            pkg: document.getElementById('details').getAttribute('data-package'),
            text: document.getElementById('details').innerText,
            selected: Array.from(document.querySelectorAll('g.node.selected'))
                           .map(g => g.getAttribute('data-package'))})"""))
        requests = [e["params"]["request"]["url"] for e in cdp.events
                    if e.get("method") == "Network.requestWillBeSent"]

    assert panel["pkg"] == CHILD_PKG
    assert panel["selected"] == [CHILD_PKG]
    text = panel["text"]
    assert digests[CHILD_PKG] in text
    assert "stage0-posix.tar.gz" in text and "https://example.org/stage0-posix.tar.gz" in text
    assert SEED_PKG in text  # built from
    assert "result\nmatch" in text and '"result"' not in text  # as text, not JSON
    assert "digest recomputed" in text
    assert requests and all(u.startswith("file:") for u in requests), requests


@needs_chromium
def test_report_select_parameter(tmp_path: Path) -> None:
    make_out(tmp_path / "out")
    page = write_report(tmp_path / "r.html", collect(tmp_path / "out"))
    assert CHROMIUM is not None
    r = subprocess.run([CHROMIUM, *_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                        "--dump-dom", page.as_uri() + f"?select={BROKEN_PKG}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    parser = _Collector()
    parser.feed(r.stdout)
    aside = [a for t, a in parser.tags if t == "aside"]
    assert aside and aside[0].get("data-package") == BROKEN_PKG
    assert f"missing parent {ORPHAN_PARENT}" in r.stdout


def _large(tmp_path: Path) -> tuple[list[str], list[Any]]:
    """500 packages in five stages, 120 of them built; a challenge result on one."""
    names = large_out(tmp_path / "out", 500, built=120)
    (tmp_path / "out" / names[5] / "challenge.json").write_text(json.dumps({
        "package": names[5], "verdict": "differs", "recorded": "sha256:" + "a" * 64,
        "rebuilt": "sha256:" + "b" * 64, "conditions": ["jobs=1", "umask=077"],
        "reason": None, "diffoscope": None,
        "differences": [{"path": "bin/tool", "what": "content",
                         "recorded": {"sha256": "c" * 64}, "rebuilt": {"sha256": "d" * 64}}]}))
    deps = {n: () for n in names}
    infos = collect(tmp_path / "out", deps)
    return names, infos


def test_large_report_is_self_contained_and_has_its_features(tmp_path: Path) -> None:
    names, infos = _large(tmp_path)
    page = render_html(infos)
    parser = _Collector()
    parser.feed(page)
    for tag, attrs in parser.tags:  # no resource from anywhere else
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
        for attr in ("src", "href", "xlink:href", "srcset", "action"):
            assert attrs.get(attr) is None or str(attrs[attr]).startswith("#")
    ids = {a.get("id") for _, a in parser.tags}
    assert {"search", "stage", "status", "zoom-in", "zoom-out", "fit", "graph",
            "packages", "details"} <= ids
    graph_nodes = [a["data-package"] for t, a in parser.tags if t == "g" and "data-package" in a]
    assert sorted(graph_nodes) == sorted(names[:120])  # what was built, not 500 boxes
    rows = [a["data-package"] for t, a in parser.tags if t == "tr" and "data-package" in a]
    assert len(rows) == 500 and rows[:120] == sorted(names[:120])  # built first
    stages = [a.get("value") for t, a in parser.tags if t == "option"]
    assert {"bootstrap", "core", "pallet", "user", "extra", "verified", "unbuilt"} <= set(stages)
    svg = next(a for t, a in parser.tags if t == "svg")
    assert "large" in str(svg.get("class")) and int(str(svg["width"])) < 2000


@needs_chromium
def test_large_report_in_chromium_search_filter_select_and_text(tmp_path: Path) -> None:
    names, infos = _large(tmp_path)
    report = write_report(tmp_path / "report.html", infos)
    with chromium(tmp_path) as cdp:
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=report.as_uri() + f"?select={names[5]}")
        cdp.wait_event("Page.loadEventFired")
        state = json.loads(cdp.eval("""(() => {
            const s = document.getElementById('search');
            const before = document.getElementById('count').textContent;
            s.value = 'pkg01'; s.dispatchEvent(new Event('input'));
            const searched = document.getElementById('count').textContent;
            const dim = document.querySelectorAll('g.node.dim').length;
            s.value = ''; s.dispatchEvent(new Event('input'));
            const st = document.getElementById('status');
            st.value = 'unbuilt'; st.dispatchEvent(new Event('change'));
            const unbuilt = document.getElementById('count').textContent;
            const vb = document.getElementById('graph').getAttribute('viewBox').split(' ');
            return JSON.stringify({before, searched, dim, unbuilt,
                view: vb.map(Number),
                lit: document.querySelectorAll('path.edge.lit').length,
                text: document.getElementById('details').innerText});
        })()"""))
    assert state["before"] == "500 of 500 packages"
    assert state["searched"] == "10 of 500 packages"  # pkg010 … pkg019
    assert state["dim"] == 120 - 10
    assert state["unbuilt"] == "380 of 500 packages"
    assert state["view"][2] < 2000 and state["lit"] >= 1  # focused on it, its edges lit
    text = state["text"]
    assert "verdict: differs" in text and "1 differing file" in text and "bin/tool" in text
    assert "{" not in text  # no raw JSON
