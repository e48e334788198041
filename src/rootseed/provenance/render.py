"""Show a traced chain: a rich tree for people, JSON for machines, Mermaid and Graphviz DOT."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.tree import Tree as RichTree

from rootseed.provenance.trace import TraceNode, short


def node_dict(node: TraceNode) -> dict[str, Any]:
    return {
        "package": node.package,
        "digest": node.digest,
        "location": node.location,
        "verified": list(node.verified),
        "quorum": node.quorum,
        "provenance_quorum": node.provenance_quorum,
        "sources": [{"id": s.id, "file": s.file, "uri": s.uri, "sha256": s.sha256,
                     "seed": s.seed} for s in node.sources],
        "parents": [{"package": p.package, "digest": p.digest} for p in node.parents],
        "seeds": [{"file": s.file, "sha256": s.sha256, "kind": "source",
                   "why": "marked seed = true in package.toml"} for s in node.provenance.seeds]
        + [r.to_json() for r in node.recognised],
    }


def to_json(root: TraceNode) -> dict[str, Any]:
    """``{"root": {...}, "nodes": [...]}``: every image once, seeds first."""
    return {"root": {"package": root.package, "digest": root.digest},
            "nodes": [node_dict(n) for n in root.walk()]}


#: Deeper chains are shown as a list, seed first: a nested tree indents every level (a
#: chain of thousands of images would be lines of tens of thousands of columns).
MAX_TREE_DEPTH = 48


def chain_depth(root: TraceNode) -> int:
    """The number of images on the longest path from ``root`` to a seed."""
    depth: dict[str, int] = {}
    for node in root.walk():  # parents before children
        depth[node.key] = 1 + max((depth[p.key] for p in node.parents), default=0)
    return depth[root.key]


def _label(node: TraceNode) -> str:
    checks = ", ".join(escape(v) for v in node.verified)
    text = (f"[bold]{escape(node.package)}[/] [dim]{escape(node.digest)}[/]\n"
            f"[green]✓[/] {checks}")
    if node.quorum:
        text += f"\n[cyan]{escape(node.quorum)}[/]"
    if node.provenance_quorum:
        text += f"\n[cyan]{escape(node.provenance_quorum)}[/]"
    return text


def to_rich(root: TraceNode) -> RenderableType:
    """Child at the top, each parent below it, ending at the seed; a chain deeper than
    :data:`MAX_TREE_DEPTH` images as a list, seed first (each image with what it was
    built from). Built with explicit stacks: any depth, no recursion limit."""
    depth = chain_depth(root)
    if depth > MAX_TREE_DEPTH:
        lines: list[RenderableType] = [
            f"[dim]{depth} images deep: shown as a list, seed first[/]"]
        for node in root.walk():
            built = ", ".join(f"{escape(p.package)} {short(p.digest)}…" for p in node.parents)
            lines.append(_label(node) + (f"\n[dim]built from {built}[/]" if built else ""))
        return Group(*lines)
    tree = RichTree(_label(root))
    seen: set[str] = {root.key}
    stack: list[tuple[RichTree, Iterator[TraceNode]]] = [(tree, iter(root.parents))]
    while stack:
        branch, parents = stack[-1]
        parent = next(parents, None)
        if parent is None:
            stack.pop()
        elif parent.key in seen:
            branch.add(f"[bold]{escape(parent.package)}[/] [dim]{short(parent.digest)}… "
                       "(verified above)[/]")
        else:
            seen.add(parent.key)
            stack.append((branch.add(_label(parent)), iter(parent.parents)))
    return tree


def _ids(root: TraceNode) -> dict[str, str]:
    return {node.key: f"n{i}" for i, node in enumerate(root.walk())}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(root: TraceNode) -> str:
    """A Mermaid flowchart: seed at the top, an arrow from each parent to its child."""
    ids = _ids(root)
    lines = ["flowchart TD"]
    for node in root.walk():
        parts = [node.package, f"{short(node.digest)}…"]
        if node.seeds:
            parts.append("seed: " + ", ".join(s.file for s in node.seeds))
        label = "<br/>".join(_mermaid_text(p) for p in parts)
        lines.append(f'    {ids[node.key]}["{label}"]')
    for node in root.walk():
        for parent in node.parents:
            lines.append(f"    {ids[parent.key]} --> {ids[node.key]}")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(root: TraceNode) -> str:
    """A Graphviz digraph: seed at the top, an edge from each parent to its child."""
    ids = _ids(root)
    lines = ["digraph trace {", "    rankdir=TB;", "    node [shape=box, fontname=monospace];"]
    for node in root.walk():
        label = f"{node.package}\n{short(node.digest)}…"
        if node.seeds:
            label += "\nseed: " + ", ".join(s.file for s in node.seeds)
        style = ", style=filled, fillcolor=palegreen" if node.seeds else ""
        lines.append(f"    {ids[node.key]} [label={_dot_string(label)}{style}];")
    for node in root.walk():
        for parent in node.parents:
            lines.append(f"    {ids[parent.key]} -> {ids[node.key]};")
    lines.append("}")
    return "\n".join(lines) + "\n"
