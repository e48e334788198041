"""One self-contained HTML page showing the trust chain of every image in the out dir.

The graph is an SVG drawn here (layered DAG: seeds at the top, an arrow from each parent to
each child); the page carries its data as inline JSON and a few lines of inline JavaScript
that fill the details panel when a package is clicked. No network resources at all.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rootseed import safefs
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
from rootseed.wording import count

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
        # out/ is untrusted: no link followed, no FIFO or endless file, bounded (safefs)
        try:
            info.challenge = json.loads(
                safefs.read_bytes(out, out / name / CHALLENGE_FILE, _MAX_CROSSCHECK))
        except FileNotFoundError:
            pass
        except (OSError, safefs.UnsafePath, ValueError, RecursionError) as e:
            info.challenge = {"error": f"unreadable {CHALLENGE_FILE}: "
                                       f"{getattr(e, 'message', e)}"}
        try:
            info.crosscheck = json.loads(
                safefs.read_bytes(out, out / name / CROSSCHECK_FILE, _MAX_CROSSCHECK))
        except (OSError, safefs.UnsafePath, ValueError, RecursionError):
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


#: A graph with more nodes than this is drawn wrapped: each layer in rows of at most
#: :data:`PER_ROW` nodes, edges faint until a node is selected.
WRAP_OVER = 60
PER_ROW = 6
ROW_GAP = 22  # between the rows of one wrapped layer


def _wrapped_svg(infos: list[PackageInfo]) -> str:
    """A large graph, readable: layers (longest path from the seed) wrapped into rows of
    :data:`PER_ROW`, ordered by their parents' positions; straight faint edges."""
    depth = _depths(infos)
    parents = {i.package: [p for p in i.parents if p in depth] for i in infos}
    layers: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in sorted(depth):
        layers[depth[name]].append(name)
    order: dict[str, float] = {}
    width = MARGIN * 2 + PER_ROW * NODE_W + (PER_ROW - 1) * H_GAP
    xy: dict[str, tuple[int, int]] = {}
    y = MARGIN
    for layer in layers:
        def key(n: str) -> tuple[float, str]:
            ps = [order[p] for p in parents.get(n, []) if p in order]
            return (sum(ps) / len(ps) if ps else 0.0, n)
        layer.sort(key=key)
        for k in range(0, len(layer), PER_ROW):
            row = layer[k:k + PER_ROW]
            x = (width - (len(row) * NODE_W + (len(row) - 1) * H_GAP)) // 2
            for n in row:
                xy[n] = (x, y)
                order[n] = float(len(order))
                x += NODE_W + H_GAP
            y += NODE_H + ROW_GAP
        y += V_GAP - ROW_GAP
    height = y - V_GAP + MARGIN + ROW_GAP
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" class="large" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="chain of custody graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for child in sorted(parents):
        for parent in parents[child]:
            if depth[parent] >= depth[child]:
                continue  # a forged cycle
            (px, py), (cx, cy) = xy[parent], xy[child]
            x1, y1, x2, y2 = px + NODE_W // 2, py + NODE_H, cx + NODE_W // 2, cy - 2
            parts.append(f'<path class="edge" data-from="{e(parent)}" data-to="{e(child)}" '
                         f'd="M{x1},{y1} L{x2},{y2}" marker-end="url(#arrow)"/>')
    by_name = {i.package: i for i in infos}
    for name, (x, y0) in sorted(xy.items()):
        parts.append(_node(by_name[name], x, y0))
    parts.append("</svg>")
    return "".join(parts)


def _node(info: PackageInfo, x: int, y: int) -> str:
    e = html.escape
    name = info.package
    sub = short(info.digest) + "…" if info.digest else info.status
    seed = bool(info.detail.get("seeds")) or any(s.get("seed")
                                                  for s in info.detail.get("sources", []))
    cls = f"node {info.status}" + (" seed" if seed else "")
    return (f'<g class="{cls}" data-package="{e(name)}" tabindex="0" role="button" '
            f'transform="translate({x},{y})"><title>{e(name)} ({e(info.status)})</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="8"/>'
            f'<text x="{NODE_W // 2}" y="23" class="name">{e(_trim(name))}</text>'
            f'<text x="{NODE_W // 2}" y="42" class="sub">{e(sub)}'
            f'{" · seed" if seed else ""}</text></g>')


def render_svg(infos: list[PackageInfo]) -> str:
    if len(infos) > WRAP_OVER:
        return _wrapped_svg(infos)
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
        if not name.startswith("\0"):
            parts.append(_node(by_name[name], x, y))
    parts.append("</svg>")
    return "".join(parts)


#: Trees up to this size show every package in the graph; larger ones (StageX: 513) show
#: what was built (and what it lacks), and every package in the searchable list.
GRAPH_ALL_UP_TO = 80
#: The order of statuses in the list: what was built first.
STATUS_ORDER = ("verified", "unsigned", "broken", "missing", "unbuilt")


def stage_of(package: str) -> str:
    """Image names are ``<stage>-<name>`` (``bootstrap-stage0`` → ``bootstrap``)."""
    return package.split("-", 1)[0]


def graph_infos(infos: list[PackageInfo]) -> list[PackageInfo]:
    """The packages the graph draws: all of a small tree; else the built ones and the
    images they lack (the rest are in the list)."""
    if len(infos) <= GRAPH_ALL_UP_TO:
        return infos
    return [i for i in infos if i.status != "unbuilt"]


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{padding:12px 20px;background:#263238;color:#fff}
header h1{font-size:18px;margin:0}
header p{margin:4px 0 0;color:#cfd8dc}
#toolbar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;padding:10px 16px 0}
#toolbar input[type=search]{width:260px;padding:4px 6px}
#toolbar select,#toolbar button{padding:3px 6px}
#count{color:#555}
main{display:flex;gap:16px;padding:10px 16px 16px;align-items:flex-start}
#left{flex:1;min-width:0}
#graph-box{position:relative;overflow:hidden;background:#fff;border:1px solid #ddd;
 border-radius:6px;cursor:grab;touch-action:none}
#graph-box.dragging{cursor:grabbing}
#graph-box svg{display:block;width:100%;height:100%}
.graph-note{color:#555;font-size:12px;margin:4px 2px 10px}
#list-box{max-height:420px;overflow:auto;background:#fff;border:1px solid #ddd;
 border-radius:6px}
#packages th{position:sticky;top:0;background:#eceff1}
#packages tr{cursor:pointer}
#packages tr:hover{background:#f1f8e9}
#packages tr.selected{background:#e3f2fd}
#details{width:460px;flex:none;background:#fff;border:1px solid #ddd;border-radius:6px;
 padding:12px 16px;overflow-wrap:anywhere;position:sticky;top:8px;max-height:92vh;overflow:auto}
#details h2{margin:0 0 8px;font-size:16px}
#details h3{margin:12px 0 4px;font-size:13px;text-transform:uppercase;color:#555}
#details code,#details pre{font:12px monospace}
#details pre{background:#f5f5f5;padding:6px;overflow:auto;white-space:pre-wrap}
#details ul{margin:0;padding-left:18px}
#details dl{margin:0;display:grid;grid-template-columns:max-content 1fr;gap:2px 10px}
#details dt{color:#555}#details dd{margin:0;font:12px monospace}
.verdict-identical{color:#2e7d32;font-weight:bold}.verdict-differs{color:#c62828;
 font-weight:bold}.verdict-undecided{color:#e65100;font-weight:bold}
.status-verified{color:#2e7d32}.status-broken{color:#c62828}.status-unsigned{color:#e65100}
.status-missing,.status-unbuilt{color:#757575}
.edge{fill:none;stroke:#555;stroke-width:1.5}
.edge.dim{opacity:.15}
svg.large .edge{opacity:.18}
.edge.lit,svg.large .edge.lit{opacity:1;stroke:#1565c0;stroke-width:2.5}
.node{cursor:pointer}
.node.dim{opacity:.2}
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
td,th{text-align:left;border-bottom:1px solid #eee;padding:2px 6px;vertical-align:top;
 font-size:12px}
td.mono{font-family:monospace}
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rootseed-data").textContent);
  var byName = {};
  data.packages.forEach(function (p) { byName[p.package] = p; });
  var panel = document.getElementById("details");
  var svg = document.getElementById("graph");
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
  function pairs(rows, cls) {
    var dl = el("dl", null, cls);
    rows.forEach(function (r) {
      if (r[1] === undefined || r[1] === null || r[1] === "") { return; }
      dl.appendChild(el("dt", r[0]));
      dl.appendChild(el("dd", r[1]));
    });
    panel.appendChild(dl);
  }
  function text(v) {  // any JSON value as readable text (never raw JSON for people)
    if (v === null || v === undefined) { return "-"; }
    if (Array.isArray(v)) { return v.map(text).join(", "); }
    if (typeof v === "object") {
      return Object.keys(v).sort().map(function (k) { return k + ": " + text(v[k]); })
        .join("; ");
    }
    return String(v);
  }
  function challenge(c) {
    if (c === null || c === undefined) {
      panel.appendChild(el("div", "no challenge results", "challenge"));
      return;
    }
    var box = el("div", null, "challenge");
    panel.appendChild(box);
    if (typeof c !== "object" || Array.isArray(c)) { box.textContent = text(c); return; }
    if (c.verdict !== undefined) {
      box.appendChild(el("div", "verdict: " + c.verdict, "verdict-" + c.verdict));
    }
    var known = ["verdict", "recorded", "recorded_from", "rebuilt", "reason",
                 "conditions", "differences", "diffoscope", "package"];
    var rows = [["recorded", c.recorded], ["from", c.recorded_from],
                ["rebuilt", c.rebuilt], ["reason", c.reason],
                ["conditions", Array.isArray(c.conditions) ? c.conditions.join(", ")
                                                           : c.conditions]];
    Object.keys(c).sort().forEach(function (k) {
      if (known.indexOf(k) < 0) { rows.push([k.replace(/_/g, " "), text(c[k])]); }
    });
    pairs(rows, "challenge-fields");
    var diffs = Array.isArray(c.differences) ? c.differences : [];
    if (diffs.length) {
      var t = el("table", null, "differences");
      var head = el("tr");
      ["path", "what", "recorded", "rebuilt"].forEach(function (h) {
        head.appendChild(el("th", h));
      });
      t.appendChild(head);
      diffs.forEach(function (d) {
        var tr = el("tr");
        tr.appendChild(el("td", text(d.path)));
        tr.appendChild(el("td", text(d.what)));
        tr.appendChild(el("td", text(d.recorded)));
        tr.appendChild(el("td", text(d.rebuilt)));
        t.appendChild(tr);
      });
      panel.appendChild(el("div", diffs.length + " differing file" +
                                  (diffs.length === 1 ? "" : "s")));
      panel.appendChild(t);
    }
    if (c.diffoscope) { panel.appendChild(el("pre", text(c.diffoscope))); }
  }
  function show(name) {
    var p = byName[name];
    if (!p) { return false; }
    document.querySelectorAll("g.node").forEach(function (g) {
      g.classList.toggle("selected", g.getAttribute("data-package") === name);
    });
    document.querySelectorAll("#packages tr[data-package]").forEach(function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-package") === name);
    });
    document.querySelectorAll("path.edge").forEach(function (e) {
      e.classList.toggle("lit", e.getAttribute("data-from") === name ||
                                e.getAttribute("data-to") === name);
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
    if (p.seeds && p.seeds.length) {
      section("Seed");
      list(p.seeds.map(function (s) {
        return s.file + " (" + s.kind + ", sha256 " + s.sha256 + "): " + s.why;
      }));
    }
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
    challenge(p.challenge);
    return true;
  }

  // -- pan and zoom: the SVG's viewBox ---------------------------------------------------
  var vb = null, home = null;
  function setView(v) {
    vb = v;
    svg.setAttribute("viewBox", [v.x, v.y, v.w, v.h].join(" "));
  }
  function toSvg(ev) {
    var pt = svg.createSVGPoint();
    pt.x = ev.clientX; pt.y = ev.clientY;
    return pt.matrixTransform(svg.getScreenCTM().inverse());
  }
  function zoom(f, cx, cy) {
    if (cx === undefined) { cx = vb.x + vb.w / 2; cy = vb.y + vb.h / 2; }
    setView({x: cx - (cx - vb.x) * f, y: cy - (cy - vb.y) * f, w: vb.w * f, h: vb.h * f});
  }
  function focusNode(name) {
    var g = svg && svg.querySelector('g.node[data-package="' + CSS.escape(name) + '"]');
    if (!g) { return; }
    var m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(g.getAttribute("transform"));
    if (!m) { return; }
    var box = g.querySelector("rect");  // centred, at the zoom the view has
    var cx = +m[1] + (+box.getAttribute("width")) / 2;
    var cy = +m[2] + (+box.getAttribute("height")) / 2;
    if (cx > vb.x && cx < vb.x + vb.w && cy > vb.y && cy < vb.y + vb.h) { return; }
    setView({x: cx - vb.w / 2, y: cy - vb.h / 2, w: vb.w, h: vb.h});
  }
  if (svg) {
    var base = svg.viewBox.baseVal;
    var boxEl = document.getElementById("graph-box");
    // "fit": the whole graph, never drawn larger than its own size (a small graph would
    // otherwise fill the box with one giant node)
    var fw = Math.max(base.width, boxEl.clientWidth);
    var fh = Math.max(base.height, boxEl.clientHeight);
    home = {x: base.x - (fw - base.width) / 2, y: base.y - (fh - base.height) / 2,
            w: fw, h: fh};
    // a tall graph opens at its top (the seed), as wide as the box: readable at once
    var tall = home.w * boxEl.clientHeight / Math.max(boxEl.clientWidth, 1);
    setView(tall < home.h ? {x: home.x, y: home.y, w: home.w, h: tall} : home);
    boxEl.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var p = toSvg(ev);
      zoom(ev.deltaY > 0 ? 1.2 : 1 / 1.2, p.x, p.y);
    }, {passive: false});
    var drag = null;
    boxEl.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) { return; }
      drag = {x: ev.clientX, y: ev.clientY, vb: vb, moved: false};
    });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) { return; }
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) { return; }
      drag.moved = true;
      boxEl.classList.add("dragging");
      var ctm = svg.getScreenCTM();
      setView({x: drag.vb.x - dx / ctm.a, y: drag.vb.y - dy / ctm.d,
               w: drag.vb.w, h: drag.vb.h});
    });
    window.addEventListener("pointerup", function () {
      boxEl.classList.remove("dragging");
      if (drag && drag.moved) {  // a drag is not a click on the node under it
        var stop = function (e) { e.stopPropagation(); };
        window.addEventListener("click", stop, {capture: true, once: true});
        setTimeout(function () { window.removeEventListener("click", stop, true); }, 0);
      }
      drag = null;
    });
    document.getElementById("zoom-in").addEventListener("click", function () { zoom(1 / 1.4); });
    document.getElementById("zoom-out").addEventListener("click", function () { zoom(1.4); });
    document.getElementById("fit").addEventListener("click", function () { setView(home); });
  }

  // -- search and filters ------------------------------------------------------------------
  var search = document.getElementById("search");
  var stageSel = document.getElementById("stage");
  var statusSel = document.getElementById("status");
  var count = document.getElementById("count");
  function matches(p) {
    var q = search.value.trim().toLowerCase();
    return (!q || p.package.toLowerCase().indexOf(q) >= 0) &&
      (!stageSel.value || p.stage === stageSel.value) &&
      (!statusSel.value || p.status === statusSel.value);
  }
  function filter() {
    var active = search.value.trim() || stageSel.value || statusSel.value, shown = 0;
    document.querySelectorAll("#packages tr[data-package]").forEach(function (tr) {
      var ok = matches(byName[tr.getAttribute("data-package")]);
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.querySelectorAll("g.node").forEach(function (g) {
      g.classList.toggle("dim", !!active && !matches(byName[g.getAttribute("data-package")]));
    });
    document.querySelectorAll("path.edge").forEach(function (e) {
      var a = byName[e.getAttribute("data-from")], b = byName[e.getAttribute("data-to")];
      e.classList.toggle("dim", !!active && !(a && matches(a)) && !(b && matches(b)));
    });
    count.textContent = shown + " of " + data.packages.length + " packages";
  }
  [search, stageSel, statusSel].forEach(function (c) {
    c.addEventListener("input", filter);
    c.addEventListener("change", filter);
  });
  search.addEventListener("keydown", function (ev) {
    if (ev.key !== "Enter") { return; }
    var first = document.querySelector("#packages tr[data-package]:not([hidden])");
    if (first) { pick(first.getAttribute("data-package")); }
  });
  function pick(name) {
    if (show(name) && svg) { focusNode(name); }
  }
  document.querySelectorAll("g.node").forEach(function (g) {
    var name = g.getAttribute("data-package");
    g.addEventListener("click", function () { show(name); });
    g.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(name); }
    });
  });
  document.querySelectorAll("#packages tr[data-package]").forEach(function (tr) {
    var name = tr.getAttribute("data-package");
    tr.addEventListener("click", function () { pick(name); });
    tr.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") { pick(name); }
    });
  });
  filter();
  // a chain diagram wider than the page starts scrolled to its trunk (the middle)
  document.querySelectorAll(".chain-scroll").forEach(function (box) {
    box.scrollLeft = (box.scrollWidth - box.clientWidth) / 2;
  });
  var params = new URLSearchParams(window.location.search);
  var pre = params.get("select") || decodeURIComponent(window.location.hash.slice(1));
  if (pre) { pick(pre); }
  window.rootseedShow = show;
})();
"""


def _inline_json(obj: Any) -> str:
    """JSON safe inside a <script> element (no "</", no "<!--")."""
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _rows(infos: list[PackageInfo]) -> str:
    """The list of every package: what was built first, then by name."""
    e = html.escape
    order = sorted(infos, key=lambda i: (STATUS_ORDER.index(i.status)
                                         if i.status in STATUS_ORDER else len(STATUS_ORDER),
                                         i.package))
    return "".join(
        f'<tr data-package="{e(i.package)}" tabindex="0"><td>{e(i.package)}</td>'
        f"<td>{e(stage_of(i.package))}</td>"
        f'<td class="status-{e(i.status)}">{e(i.status)}</td>'
        f'<td class="mono">{e(short(i.digest) + "…" if i.digest else "-")}</td>'
        f"<td>{e(', '.join(i.parents) or '-')}</td></tr>" for i in order)


def _options(values: Iterable[str], everything: str) -> str:
    e = html.escape
    return f'<option value="">{e(everything)}</option>' + "".join(
        f'<option value="{e(v)}">{e(v)}</option>' for v in values)


def render_html(infos: list[PackageInfo], *, title: str = "rootseed chain of custody") -> str:
    verified = sum(1 for i in infos if i.status == "verified")
    unsigned = sum(1 for i in infos if i.status == "unsigned")
    broken = sum(1 for i in infos if i.status == "broken")
    missing = sum(1 for i in infos if i.status == "missing")
    unbuilt = sum(1 for i in infos if i.status == "unbuilt")
    summary = (f"{count(len(infos), 'package')}: {verified} traced to the seed, "
               + (f"{unsigned} not verified (a chain without its signature quorum), "
                  if unsigned else "")
               + f"{broken} broken, {missing} missing, {unbuilt} not built. Click a package "
               "(graph or list) for its details; search and filter above the graph.")
    drawn = graph_infos(infos)
    note_count = count(len(drawn), "package")
    data = {"packages": [{**i.as_json(), "stage": stage_of(i.package)} for i in infos]}
    e = html.escape
    if drawn:
        svg = render_svg(drawn)
        size = re.search(r'height="(\d+)"', svg)
        height = min(int(size.group(1)) + 2 if size else 600, 600)
        graph = f'<div id="graph-box" style="height:{height}px">{svg}</div>'
    else:
        graph = '<div id="graph-box" class="empty"><p>Nothing built yet.</p></div>'
    note = ("the graph shows every package" if len(drawn) == len(infos) else
            f"the graph shows the {note_count} built (or missing) of {len(infos)}; the "
            "list below has every package")
    statuses = [s for s in STATUS_ORDER if any(i.status == s for i in infos)]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">"
        f"<title>{e(title)}</title><style>{_CSS}{CHAIN_CSS}</style></head><body>"
        f"<header><h1>{e(title)}</h1><p id=\"summary\">{e(summary)}</p></header>"
        + "".join(chain_section(i.package, i.crosscheck, verified=i.status == "verified")
                  for i in infos if i.crosscheck is not None)
        + '<nav id="toolbar"><input id="search" type="search" '
        'placeholder="search packages…" aria-label="search packages">'
        f'<select id="stage" aria-label="stage">'
        f'{_options(sorted({stage_of(i.package) for i in infos}), "every stage")}</select>'
        f'<select id="status" aria-label="status">{_options(statuses, "any status")}'
        '</select><span id="count"></span>'
        '<button id="zoom-in" title="zoom in">+</button>'
        '<button id="zoom-out" title="zoom out">−</button>'
        '<button id="fit" title="the whole graph">fit</button>'
        "<span class=\"graph-hint\">wheel: zoom · drag: pan</span></nav>"
        f"<main><section id=\"left\">{graph}<p class=\"graph-note\">{e(note)}</p>"
        '<div id="list-box"><table id="packages"><thead><tr><th>package</th><th>stage</th>'
        "<th>status</th><th>digest</th><th>built from</th></tr></thead>"
        f"<tbody>{_rows(infos)}</tbody></table></div></section>"
        "<aside id=\"details\"><h2>Details</h2><p>Click a package in the graph or the "
        "list.</p></aside></main>"
        f"<script type=\"application/json\" id=\"rootseed-data\">{_inline_json(data)}</script>"
        f"<script>{_JS}</script></body></html>\n"
    )


def write_report(path: Path, infos: list[PackageInfo]) -> Path:
    """Write the page atomically (temp file in the same directory, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, render_html(infos).encode())
