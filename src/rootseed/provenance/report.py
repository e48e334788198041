"""One self-contained HTML page showing the trust chain of every image in the out dir.

The graph is an SVG drawn here (layered DAG: seeds at the top, an arrow from each parent to
each child); the page carries its data as inline JSON and a few lines of inline JavaScript
that fill the details panel when a package is clicked. No network resources at all.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed.errors import RootseedError
from rootseed.fsutil import atomic_write
from rootseed.provenance.chain import CSS as CHAIN_CSS
from rootseed.provenance.chain import chain_section
from rootseed.provenance.companions import CHALLENGE_FILE, CROSSCHECK_FILE
from rootseed.provenance.layout import is_layout
from rootseed.provenance.render import node_dict
from rootseed.provenance.seeds import SeedPolicy
from rootseed.provenance.statement import PROVENANCE_FILE, read_statement
from rootseed.provenance.trace import (
    Pins,
    QuorumNotMet,
    QuorumStatus,
    SignatureCheck,
    Tracer,
    short,
)

_MAX_CROSSCHECK = 16 << 20

NODE_W, NODE_H, H_GAP, V_GAP, MARGIN = 200, 56, 28, 64, 24


@dataclass
class PackageInfo:
    package: str
    #: "verified" | "unsigned" (consistent, but it or an image of its chain lacks the
    #: signature quorum: not verified) | "broken" | "unbuilt" (in the tree only) | "missing"
    status: str
    digest: str | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)
    challenge: Any = None
    crosscheck: Any = None  # the crosscheck report (hostile JSON, see provenance.chain)

    def as_json(self) -> dict[str, Any]:
        return {"package": self.package, "status": self.status, "digest": self.digest,
                "error": self.error, "challenge": self.challenge, "parents": self.parents,
                **{k: v for k, v in self.detail.items() if k not in ("package", "digest",
                                                                      "parents")}}


def out_packages(out: Path) -> list[str]:
    """Names of the image layouts (or provenance files) directly under ``out``."""
    if not out.is_dir():
        return []
    return sorted(p.name for p in out.iterdir()
                  if p.is_dir() and (is_layout(p) or (p / PROVENANCE_FILE).is_file()))


def collect(out: Path, tree_deps: Mapping[str, Iterable[str]] | None = None, *,
            cache_dir: Path | None = None,
            quorum_status: QuorumStatus | None = None, pins: Pins | None = None,
            signatures: SignatureCheck | None = None,
            seeds: SeedPolicy | None = None) -> list[PackageInfo]:
    """Trace every image in ``out``; a broken chain is recorded (with its message), not raised.

    ``tree_deps`` (package → the packages it is built from, from the package tree) adds the
    tree's packages that have no image yet, as "unbuilt", with their declared edges.

    With ``signatures``, the walk is ``trace --keyring``'s: every image and every provenance
    statement of a chain must be signed by the quorum before its parent links are
    followed; an image whose chain lacks it is "unsigned" (not verified), with the message
    ``trace`` gives and its own quorum lines.
    """
    names = out_packages(out)
    tracer = Tracer(out, cache_dir=cache_dir,
                    quorum_status=None if signatures is not None else quorum_status,
                    pins=pins, signatures=signatures, require_quorum=signatures is not None,
                    seeds=seeds)
    infos: dict[str, PackageInfo] = {}
    for name in names:
        info = PackageInfo(package=name, status="verified")
        try:
            node = tracer.trace(name)
            info.digest = node.digest
            info.detail = node_dict(node)
            info.parents = sorted({p.package for p in node.parents})
        except RootseedError as e:
            # QuorumNotMet is checked by type: the chain fits together, but is not vouched for
            info.status = "unsigned" if isinstance(e, QuorumNotMet) else "broken"
            info.error = e.message
            try:
                prov = read_statement(out / name / PROVENANCE_FILE, package=name)
                info.digest = prov.subject_digest
                info.parents = sorted({p.package for p in prov.parents})
                info.detail = {"sources": [{"id": s.id, "file": s.file, "uri": s.uri,
                                            "sha256": s.sha256, "seed": s.seed}
                                           for s in prov.sources],
                               "verified": [], "quorum": None}
            except RootseedError:
                pass
            lines = tracer.signature_lines(name)
            if lines is not None:
                info.detail["quorum"], info.detail["provenance_quorum"] = lines
        challenge = out / name / CHALLENGE_FILE
        if challenge.is_file():
            try:
                info.challenge = json.loads(challenge.read_bytes())
            except (ValueError, RecursionError) as e:  # also: huge numbers, deep nesting
                info.challenge = {"error": f"unreadable {CHALLENGE_FILE}: {e}"}
        crosscheck = out / name / CROSSCHECK_FILE
        if crosscheck.is_file() and not crosscheck.is_symlink():
            try:
                if crosscheck.stat().st_size <= _MAX_CROSSCHECK:
                    info.crosscheck = json.loads(crosscheck.read_bytes())
            except (OSError, ValueError, RecursionError):  # also: huge numbers, deep nesting
                info.crosscheck = None  # unreadable: no diagram (the page says so)
        infos[name] = info
    for name, deps in sorted((tree_deps or {}).items()):
        if name not in infos:
            infos[name] = PackageInfo(package=name, status="unbuilt", parents=sorted(set(deps)),
                                      error=f"{name} has not been built (no out/{name})")
    for info in list(infos.values()):
        for parent in info.parents:
            if parent not in infos:
                infos[parent] = PackageInfo(package=parent, status="missing",
                                            error=f"no image for {parent} in the out dir")
    return [infos[n] for n in sorted(infos)]


def _depths(infos: list[PackageInfo]) -> dict[str, int]:
    """Longest-path layering: a package sits one row below its lowest parent.

    Depth first with an explicit stack (a chain of any depth, no recursion limit); a
    parent already on the stack (a forged cycle) is ignored, as before."""
    parents = {i.package: list(i.parents) for i in infos}
    depth: dict[str, int] = {}
    for start in sorted(parents):
        if start in depth:
            continue
        on_stack = {start}
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(parents.get(start, [])))]
        while stack:
            name, todo = stack[-1]
            nxt = next((p for p in todo if p not in depth and p not in on_stack), None)
            if nxt is not None:
                on_stack.add(nxt)
                stack.append((nxt, iter(parents.get(nxt, []))))
                continue
            stack.pop()
            on_stack.discard(name)
            depth[name] = 1 + max((depth[p] for p in parents.get(name, [])
                                   if p in depth and p not in on_stack), default=-1)
    return depth


@dataclass
class _Graph:
    """Rows of slots: package names, and NUL-prefixed waypoints where long edges cross rows."""

    rows: list[list[str]]
    edges: list[tuple[str, str, list[str]]]  # parent, child, waypoint slots between them


def _layout(infos: list[PackageInfo]) -> _Graph:
    depth = _depths(infos)
    rows: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in sorted(depth):
        rows[depth[name]].append(name)
    edges: list[tuple[str, str, list[str]]] = []
    above: dict[str, list[str]] = {}  # slot -> the slots it hangs from (for ordering)
    for info in sorted(infos, key=lambda i: i.package):
        for parent in info.parents:
            if parent not in depth or depth[parent] >= depth[info.package]:
                continue  # a forged cycle: nothing sensible to draw
            waypoints = []
            prev = parent
            for r in range(depth[parent] + 1, depth[info.package]):
                slot = f"\0{parent}>{info.package}:{r}"
                rows[r].append(slot)
                above[slot] = [prev]
                waypoints.append(slot)
                prev = slot
            above.setdefault(info.package, []).append(prev)
            edges.append((parent, info.package, waypoints))
    # order each row by the mean position of what hangs above it (fewer crossings)
    pos: dict[str, float] = {}
    for row in rows:
        def key(n: str) -> tuple[float, int, str]:
            ps = [pos[p] for p in above.get(n, []) if p in pos]
            return (sum(ps) / len(ps) if ps else 0.0, n.startswith("\0"), n)
        row.sort(key=key)
        for i, n in enumerate(row):
            pos[n] = float(i)
    return _Graph(rows=rows, edges=edges)


def _trim(text: str, n: int = 26) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


WAY_W = 16  # width of a waypoint slot of a long edge


def render_svg(infos: list[PackageInfo]) -> str:
    graph = _layout(infos)
    by_name = {i.package: i for i in infos}

    def slot_w(slot: str) -> int:
        return WAY_W if slot.startswith("\0") else NODE_W

    def row_w(row: list[str]) -> int:
        return sum(slot_w(s) for s in row) + max(len(row) - 1, 0) * H_GAP

    width = MARGIN * 2 + max((row_w(r) for r in graph.rows), default=NODE_W)
    height = MARGIN * 2 + len(graph.rows) * NODE_H + max(len(graph.rows) - 1, 0) * V_GAP
    xy: dict[str, tuple[int, int]] = {}  # top-left corner of each slot
    for r, row in enumerate(graph.rows):
        x = (width - row_w(row)) // 2
        for slot in row:
            xy[slot] = (x, MARGIN + r * (NODE_H + V_GAP))
            x += slot_w(slot) + H_GAP
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="chain of custody graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for parent, child, waypoints in graph.edges:
        px, py = xy[parent]
        x, y = px + NODE_W // 2, py + NODE_H
        d = f"M{x},{y}"
        for slot in waypoints:  # pass straight down through each intermediate row
            wx, wy = xy[slot]
            wx += WAY_W // 2
            d += f" C{x},{(y + wy) // 2} {wx},{(y + wy) // 2} {wx},{wy} L{wx},{wy + NODE_H}"
            x, y = wx, wy + NODE_H
        cx, cy = xy[child]
        x2 = cx + NODE_W // 2
        mid = (y + cy) // 2
        d += f" C{x},{mid} {x2},{mid} {x2},{cy - 2}"
        parts.append(f'<path class="edge" data-from="{e(parent)}" data-to="{e(child)}" '
                     f'd="{d}" marker-end="url(#arrow)"/>')
    for name, (x, y) in sorted(xy.items()):
        if name.startswith("\0"):
            continue
        info = by_name[name]
        sub = short(info.digest) + "…" if info.digest else info.status
        seed = bool(info.detail.get("seeds")) or any(s.get("seed")
                                                      for s in info.detail.get("sources", []))
        cls = f"node {info.status}" + (" seed" if seed else "")
        parts.append(
            f'<g class="{cls}" data-package="{e(name)}" tabindex="0" role="button" '
            f'transform="translate({x},{y})"><title>{e(name)} ({e(info.status)})</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="8"/>'
            f'<text x="{NODE_W // 2}" y="23" class="name">{e(_trim(name))}</text>'
            f'<text x="{NODE_W // 2}" y="42" class="sub">{e(sub)}'
            f'{" · seed" if seed else ""}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:12px 20px;background:#263238;color:#fff}
header h1{font-size:18px;margin:0}
header p{margin:4px 0 0;color:#cfd8dc}
main{display:flex;gap:16px;padding:16px;align-items:flex-start}
#graph-box{flex:1;overflow:auto;background:#fff;border:1px solid #ddd;border-radius:6px}
#details{width:440px;flex:none;background:#fff;border:1px solid #ddd;border-radius:6px;
 padding:12px 16px;overflow-wrap:anywhere}
#details h2{margin:0 0 8px;font-size:16px}
#details h3{margin:12px 0 4px;font-size:13px;text-transform:uppercase;color:#555}
#details code,#details pre{font:12px monospace}
#details pre{background:#f5f5f5;padding:6px;overflow:auto;white-space:pre-wrap}
#details ul{margin:0;padding-left:18px}
.status-verified{color:#2e7d32}.status-broken{color:#c62828}.status-unsigned{color:#e65100}
.status-missing,.status-unbuilt{color:#757575}
.edge{fill:none;stroke:#555;stroke-width:1.5}
.node{cursor:pointer}
.node rect{stroke-width:2}
.node.verified rect{fill:#e8f5e9;stroke:#2e7d32}
.node.broken rect{fill:#ffebee;stroke:#c62828}
.node.unsigned rect{fill:#fff3e0;stroke:#e65100;stroke-dasharray:8 3}
.node.missing rect,.node.unbuilt rect{fill:#f5f5f5;stroke:#9e9e9e;stroke-dasharray:5 3}
.node.seed rect{stroke-width:3}
.node.selected rect{stroke:#1565c0;stroke-width:4}
.node:focus{outline:none}.node:focus rect{stroke:#1565c0}
.node text{text-anchor:middle;font:12px monospace;pointer-events:none}
.node text.name{font-weight:bold;font-size:13px}
table{border-collapse:collapse;width:100%}
td,th{text-align:left;border-bottom:1px solid #eee;padding:2px 4px;vertical-align:top;
 font-size:12px}
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rootseed-data").textContent);
  var byName = {};
  data.packages.forEach(function (p) { byName[p.package] = p; });
  var panel = document.getElementById("details");
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (cls) { e.className = cls; }
    return e;
  }
  function section(title) { panel.appendChild(el("h3", title)); }
  function list(items) {
    var ul = el("ul");
    items.forEach(function (t) { ul.appendChild(el("li", t)); });
    panel.appendChild(ul);
  }
  function show(name) {
    var p = byName[name];
    if (!p) { return false; }
    document.querySelectorAll("g.node").forEach(function (g) {
      g.classList.toggle("selected", g.getAttribute("data-package") === name);
    });
    panel.replaceChildren();
    panel.setAttribute("data-package", name);
    panel.appendChild(el("h2", p.package));
    panel.appendChild(el("div", p.status, "status status-" + p.status));
    if (p.error) { panel.appendChild(el("pre", p.error, "error")); }
    section("Manifest digest");
    panel.appendChild(el("code", p.digest || "(none)", "digest"));
    section("Verified");
    list((p.verified && p.verified.length) ? p.verified : ["nothing verified"]);
    section("Signatures / quorum");
    panel.appendChild(el("div", p.quorum || "not checked", "quorum"));
    if (p.provenance_quorum) {
      panel.appendChild(el("div", p.provenance_quorum, "provenance-quorum"));
    }
    section("Built from");
    list(p.parents.length ? p.parents : ["scratch"]);
    section("Sources");
    var sources = p.sources || [];
    if (!sources.length) { panel.appendChild(el("div", "none")); } else {
      var table = el("table", null, "sources");
      var head = el("tr");
      ["file", "sha256", "uri"].forEach(function (h) { head.appendChild(el("th", h)); });
      table.appendChild(head);
      sources.forEach(function (s) {
        var tr = el("tr");
        tr.appendChild(el("td", s.file + (s.seed ? " (seed)" : "")));
        tr.appendChild(el("td", s.sha256));
        tr.appendChild(el("td", s.uri));
        table.appendChild(tr);
      });
      panel.appendChild(table);
    }
    section("Challenge");
    if (p.challenge === null || p.challenge === undefined) {
      panel.appendChild(el("div", "no challenge results", "challenge"));
    } else {
      panel.appendChild(el("pre", JSON.stringify(p.challenge, null, 2), "challenge"));
    }
    return true;
  }
  document.querySelectorAll("g.node").forEach(function (g) {
    var name = g.getAttribute("data-package");
    g.addEventListener("click", function () { show(name); });
    g.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(name); }
    });
  });
  // a chain diagram wider than the page starts scrolled to its trunk (the middle)
  document.querySelectorAll(".chain-scroll").forEach(function (box) {
    box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2;
  });
  var params = new URLSearchParams(window.location.search);
  var pre = params.get("select") || decodeURIComponent(window.location.hash.slice(1));
  if (pre) { show(pre); }
  window.rootseedShow = show;
})();
"""


def _inline_json(obj: Any) -> str:
    """JSON safe inside a <script> element (no "</", no "<!--")."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(infos: list[PackageInfo], *, title: str = "rootseed chain of custody") -> str:
    verified = sum(1 for i in infos if i.status == "verified")
    unsigned = sum(1 for i in infos if i.status == "unsigned")
    broken = sum(1 for i in infos if i.status == "broken")
    missing = sum(1 for i in infos if i.status == "missing")
    unbuilt = sum(1 for i in infos if i.status == "unbuilt")
    summary = (f"{len(infos)} packages: {verified} traced to the seed, "
               + (f"{unsigned} not verified (a chain without its signature quorum), "
                  if unsigned else "")
               + f"{broken} broken, {missing} missing, {unbuilt} not built. Click a package "
               "for its details.")
    data = {"packages": [i.as_json() for i in infos]}
    e = html.escape
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{e(title)}</title><style>{_CSS}{CHAIN_CSS}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p id=\"summary\">{e(summary)}</p></header>"
        + "".join(chain_section(i.package, i.crosscheck, verified=i.status == "verified")
                  for i in infos if i.crosscheck is not None)
        + f"<main><div id=\"graph-box\">{render_svg(infos)}</div>"
        "<aside id=\"details\"><h2>Details</h2><p>Click a package in the graph.</p></aside>"
        "</main>"
        f"<script type=\"application/json\" id=\"rootseed-data\">{_inline_json(data)}</script>"
        f"<script>{_JS}</script></body></html>\n"
    )


def write_report(path: Path, infos: list[PackageInfo]) -> Path:
    """Write the page atomically (temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, render_html(infos).encode())
