"""docs/ stands alone, and the identifiers in provenance name sections that exist in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rootseed.provenance import statement
from rootseed.provenance.statement import BUILD_TYPE, BUILDER_ID, IDENTIFIER_SCHEME

REPO = Path(__file__).resolve().parents[1]  # docs are read from the checkout under test
DOCS = sorted((REPO / "docs").glob("*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """Heading anchors, by the usual Markdown rule (lower case, punctuation dropped)."""
    found: set[str] = set()
    for line in markdown.splitlines():
        m = re.match(r"#{1,6} (.+)", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            found.add(text.replace(" ", "-"))
    return found


def test_the_three_documents_exist() -> None:
    assert {p.name for p in DOCS} >= {"architecture.md", "trust-model.md", "formats.md"}


@pytest.mark.parametrize("identifier", [BUILD_TYPE, BUILDER_ID])
def test_identifiers_name_a_versioned_section_of_this_repository(identifier: str) -> None:
    assert identifier.startswith(IDENTIFIER_SCHEME)
    path, _, anchor = identifier.removeprefix(IDENTIFIER_SCHEME).partition("#")
    document = REPO / path
    assert document.is_file(), f"{identifier}: {path} is not in the repository"
    assert anchor in anchors(document.read_text()), f"{identifier}: no heading #{anchor}"
    assert re.search(r"-v[0-9]+$", anchor), f"{identifier}: not a versioned section"


def test_provenance_uses_no_domain_of_its_own() -> None:
    source = Path(statement.__file__).read_text()
    assert "rootseed.dev" not in source
    assert not re.search(r"https?://[^\"]*rootseed", source)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_stay_inside_the_repository_and_resolve(doc: Path) -> None:
    text = doc.read_text()
    assert "DESIGN.md" not in text
    for target in LINK.findall(text):
        assert not target.startswith(("http://", "https://", "/")), \
            f"{doc.name}: links outside the repository: {target}"
        path, _, anchor = target.partition("#")
        linked = doc if not path else (doc.parent / path)
        assert linked.is_file(), f"{doc.name}: broken link {target}"
        if anchor:
            assert anchor in anchors(linked.read_text()), f"{doc.name}: no anchor {target}"


def test_code_comments_cite_docs_not_design_md() -> None:
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "src").rglob("*.py")
                 if "DESIGN.md" in p.read_text()]
    assert offenders == []
