"""The stage0 chain as a diagram: one node per artifact a crosscheck compared, coloured
by what independently reproduced it (pure: crosscheck JSON in, HTML/SVG text out).

An arrow goes from the program that wrote an artifact, and from every compared artifact
it read, to the artifact: seed → hex0 → hex1 → hex2-0 → … → M2-Planet → the tools.
Rows are the longest path from the seed, so everything sits below what made it.

The data comes from ``crosscheck.json`` in the out dir, which is hostile like every
file there: only the expected fields with the expected types are used, and all text is
escaped.
"""

from __future__ import annotations

import html
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NODE_W, NODE_H, H_GAP, V_GAP, MARGIN = 134, 48, 10, 28, 16
MAX_NODES = 2000  # a crosscheck of stage0 has ~114; more is not a report, it is an attack

#: confirmation class → (fill, stroke, legend text)
KINDS: dict[str, tuple[str, str, str]] = {
    "seed": ("#fff8e1", "#f9a825", "the seed, equal to its own source assembled in Python"),
    "python": ("#e8f5e9", "#2e7d32", "reproduced by a Python tool"),
    "ddc": ("#e3f2fd", "#1565c0", "reproduced by diverse double-compiling"),
    "not-covered": ("#f5f5f5", "#9e9e9e", "not covered"),
    "different": ("#ffebee", "#c62828", "different or failed"),
}


@dataclass(frozen=True)
class Node:
    index: int
    stage: str
    artifact: str
    status: str
    kind: str
    confirmation: str
    detail: str
    program: str
    inputs: tuple[str, ...]

    @property
    def name(self) -> str:
        return posixpath.basename(self.artifact) or self.artifact


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def nodes_from(data: Any) -> list[Node]:
    """The checks of a crosscheck report (``Report.as_dict()``), defensively."""
    checks = data.get("checks") if isinstance(data, Mapping) else None
    if not isinstance(checks, list):
        return []
    nodes: list[Node] = []
    for c in checks[:MAX_NODES]:
        if not isinstance(c, Mapping):
            continue
        status = _str(c.get("status"))
        by = [b for b in c.get("reproduced_by", []) if isinstance(b, str)] \
            if isinstance(c.get("reproduced_by"), list) else []
        if status == "identical":
            kind = ("seed" if c.get("seed") is True else
                    "ddc" if any(b.startswith("DDC") for b in by) else "python")
        elif status == "not covered":
            kind = "not-covered"
        else:
            kind = "different"
        inputs = c.get("inputs")
        nodes.append(Node(
            len(nodes), _str(c.get("stage")), _str(c.get("artifact")), status, kind,
            _str(c.get("confirmation")) or ", ".join(by) or status, _str(c.get("detail")),
            _str(c.get("program")),
            tuple(i for i in inputs if isinstance(i, str)) if isinstance(inputs, list)
            else ()))
    return nodes


def edges_of(nodes: list[Node]) -> list[tuple[int, int]]:
    """(from, to) node indexes: the program and the compared inputs of each artifact.
    A path names the node of the same stage if there is one, else the latest one
    written before (file order), else the first."""
    by_path: dict[str, list[Node]] = {}
    for n in nodes:
        by_path.setdefault(n.artifact, []).append(n)

    def producer(path: str, node: Node) -> int | None:
        found = [m for m in by_path.get(path, []) if m.index != node.index]
        if not found:
            return None
        same = [m for m in found if m.stage == node.stage and m.index < node.index]
        before = [m for m in found if m.index < node.index]
        return (same or before or found)[-1 if (same or before) else 0].index

    edges: set[tuple[int, int]] = set()
    for n in nodes:
        for path in (n.program, *n.inputs):
            src = producer(path, n) if path else None
            if src is not None:
                edges.add((src, n.index))
    return sorted(edges)


def _layout(nodes: list[Node], edges: list[tuple[int, int]]) -> list[list[int]]:
    parents: dict[int, list[int]] = {n.index: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
    depth: dict[int, int] = {}
    for n in nodes:  # iterative longest path; cycles (forged data) are cut
        stack = [(n.index, frozenset[int]())]
        while stack:
            i, seen = stack[-1]
            todo = [p for p in parents[i] if p not in depth and p not in seen]
            if todo:
                stack.append((todo[0], seen | {i}))
                continue
            stack.pop()
            depth[i] = 1 + max((depth[p] for p in parents[i] if p in depth), default=-1)
    rows: list[list[int]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for n in nodes:
        rows[depth[n.index]].append(n.index)
    pos: dict[int, float] = {}
    for row in rows:  # order by the mean position of the parents (fewer crossings)
        row.sort(key=lambda i: (sum(pos[p] for p in parents[i] if p in pos)
                                / max(1, sum(1 for p in parents[i] if p in pos)), i))
        width = len(row)
        for k, i in enumerate(row):
            pos[i] = k - (width - 1) / 2
    return rows


def _trim(text: str, n: int = 21) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _short(node: Node) -> str:
    if node.kind == "ddc":
        return "DDC: " + ", ".join(c.split()[1] for c in node.confirmation.split(", ")
                                   if c.startswith("DDC: ") and len(c.split()) > 1)
    if node.kind == "not-covered":
        return "not covered"
    if node.kind == "different":
        return node.status
    return node.confirmation


def counts(nodes: list[Node]) -> dict[str, int]:
    out = {"identical": 0, "different": 0, "not covered": 0}
    for n in nodes:
        key = n.status if n.status in ("identical", "not covered") else "different"
        out[key] += 1
    return out


#: At most this many artifacts side by side (9 fit a 1440-pixel page); a wider layer (the
#: DDC-checked compiles) wraps onto more rows instead of running off both sides.
PER_ROW = 9


def chain_svg(nodes: list[Node]) -> str:
    edges = edges_of(nodes)
    rows = [row[k:k + PER_ROW] for row in _layout(nodes, edges)
            for k in range(0, len(row), PER_ROW)]
    widest = max((len(r) for r in rows), default=1)
    width = MARGIN * 2 + widest * NODE_W + max(widest - 1, 0) * H_GAP
    height = MARGIN * 2 + len(rows) * NODE_H + max(len(rows) - 1, 0) * V_GAP
    xy: dict[int, tuple[int, int]] = {}
    for r, row in enumerate(rows):
        row_w = len(row) * NODE_W + max(len(row) - 1, 0) * H_GAP
        x = (width - row_w) // 2
        for i in row:
            xy[i] = (x, MARGIN + r * (NODE_H + V_GAP))
            x += NODE_W + H_GAP
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chain" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
             'aria-label="the stage0 chain, one node per artifact">'
             '<defs><marker id="chain-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
             '<path d="M0,0 L10,5 L0,10 z" fill="#90a4ae"/></marker></defs>']
    for a, b in edges:
        (ax, ay), (bx, by) = xy[a], xy[b]
        x1, y1, x2, y2 = ax + NODE_W // 2, ay + NODE_H, bx + NODE_W // 2, by - 1
        mid = (y1 + y2) // 2
        parts.append(f'<path class="chain-edge" d="M{x1},{y1} C{x1},{mid} {x2},{mid} '
                     f'{x2},{y2}" marker-end="url(#chain-arrow)"/>')
    for n in nodes:
        x, y = xy[n.index]
        fill, stroke, _ = KINDS[n.kind]
        tip = f"{n.artifact} [{n.stage}]\n{n.status}: {n.confirmation}\n{n.detail}"
        parts.append(
            f'<g class="artifact {n.kind}" data-artifact="{e(n.artifact)}" '
            f'data-stage="{e(n.stage)}" transform="translate({x},{y})">'
            f'<title>{e(tip)}</title>'
            f'<rect width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}"/>'
            f'<text x="{NODE_W // 2}" y="15" class="a-name">{e(_trim(n.name, 18))}</text>'
            f'<text x="{NODE_W // 2}" y="29" class="a-sub">{e(_trim(_short(n), 22))}</text>'
            f'<text x="{NODE_W // 2}" y="42" class="a-stage">{e(_trim(n.stage, 24))}</text>'
            '</g>')
    parts.append("</svg>")
    return "".join(parts)


CSS = """
.chain-box{margin:16px;background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px}
.chain-box h2{font-size:16px;margin:4px 0}
.chain-box.unverified{border:2px dashed #e65100}
.chain-unverified{color:#e65100;font-weight:bold;margin:4px 0}
.chain-counts{font-size:15px;margin:4px 0 8px}
.chain-counts b{font-size:18px}
.chain-headline{margin:0 0 8px;color:#37474f}
.chain-all{margin:0 0 8px;color:#2e7d32;font-weight:bold}
.chain-legend span{display:inline-block;margin-right:14px;font-size:12px}
.chain-legend i{display:inline-block;width:14px;height:10px;border:2px solid;margin-right:4px;
 vertical-align:middle;border-radius:3px}
.chain-scroll{overflow-x:auto;text-align:center}
.chain-edge{fill:none;stroke:#90a4ae;stroke-width:1;opacity:.5}
.artifact rect{stroke-width:2}
.artifact.not-covered rect{stroke-dasharray:4 3}
.artifact.different rect{stroke-width:3}
.artifact text{text-anchor:middle;font:10px monospace;pointer-events:none}
.artifact text.a-name{font-weight:bold;font-size:12px}
.artifact text.a-stage{font-size:9px;fill:#78909c}
"""


def chain_section(package: str, data: Any, *, verified: bool = True) -> str:
    """The HTML section of one package's crosscheck: counts, legend, diagram.

    ``verified`` False (the image's chain of custody is broken or lacks its signature
    quorum): the section says so first, and is marked ``unverified``, so no artifact of
    it reads as a confirmed chain."""
    nodes = nodes_from(data)
    if not nodes:
        return ""
    e = html.escape
    c = counts(nodes)
    headline = data.get("headline") if isinstance(data, Mapping) else None
    legend = "".join(f'<span><i style="background:{f};border-color:{s}"></i>{e(t)}</span>'
                     for f, s, t in KINDS.values())
    warning = ("" if verified else
               '<p class="chain-unverified">NOT VERIFIED: this image\'s chain of custody is '
               "broken or lacks its signature quorum (see its details below); what follows "
               "compares files of an image that is not confirmed.</p>")
    return (
        f'<section class="chain-box{"" if verified else " unverified"}" '
        f'data-package="{e(package)}">'
        f"<h2>{e(package)}: the chain, artifact by artifact"
        f"{'' if verified else ' (not verified)'}</h2>" + warning +
        f'<p class="chain-counts"><b>{c["identical"]}</b> identical · '
        f'<b>{c["different"]}</b> different · <b>{c["not covered"]}</b> not covered '
        f"(of {len(nodes)} artifacts the crosscheck compared)</p>"
        + (f'<p class="chain-headline">{e(headline)}</p>' if isinstance(headline, str)
           else "")
        + ('<p class="chain-all">every artifact confirmed by at least one independent '
           "path: a Python tool, diverse double-compiling, or the seed's own source</p>"
           if c["identical"] == len(nodes) else "")
        + f'<div class="chain-legend">{legend}</div>'
        f'<div class="chain-scroll">{chain_svg(nodes)}</div></section>')
