"""The stage0 chain diagram of ``rootseed report`` (from crosscheck.json), on fixtures."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from provenance_fixtures import SEED_PKG, three_level_chain
from rootseed.crosscheck.model import ArtifactCheck, Report, Status
from rootseed.provenance.chain import chain_section, counts, edges_of, nodes_from
from rootseed.provenance.report import CROSSCHECK_FILE, collect, write_report

A = "/s/x86/artifact"
GCC, CLANG = "DDC: gcc 12.2.0", "DDC: clang 14.0.6"


def _c(artifact: str, program: str, *inputs: str, status: Status = Status.IDENTICAL,
       by: tuple[str, ...] = ("Python hex2",), **kw: object) -> ArtifactCheck:
    return ArtifactCheck("st", 1, artifact, "t", status, program=program, inputs=inputs,
                         reproduced_by=by if status is Status.IDENTICAL else (),
                         chain_size=10, **kw)  # type: ignore[arg-type]


def chain_report() -> Report:
    """A small chain shaped like stage0's: seed → hex0 → hex1 → … → M2-Planet → a tool."""
    seed = "/s/bootstrap-seeds/hex0-seed"
    return Report("bootstrap-stage0", checks=[
        _c(seed, seed, "/s/x86/hex0_x86.hex0", by=("Python hex0",), seed=True),
        _c(f"{A}/hex0", seed, "/s/x86/hex0_x86.hex0", by=("Python hex0",)),
        _c(f"{A}/hex1", f"{A}/hex0", "/s/x86/hex1_x86.hex0", by=("Python hex0",)),
        _c(f"{A}/cc_x86", f"{A}/hex1", "/s/x86/cc_x86.hex1", by=("Python hex1",)),
        _c(f"{A}/M2-0.M1", f"{A}/cc_x86", "/s/M2-0.c", status=Status.NOT_COVERED,
           detail="C compiler: no Python replay"),
        _c(f"{A}/M2", f"{A}/hex1", f"{A}/M2-0.M1", by=("Python hex1",)),
        _c(f"{A}/M2-1.M1", f"{A}/M2", "/s/M2-Planet/cc.c", by=(GCC, CLANG)),
        _c("/s/x86/bin/M2-Planet", f"{A}/hex1", f"{A}/M2-1.M1"),
        _c(f"{A}/M2-Planet-000000", "/s/x86/bin/M2-Planet", "/s/extra/sha256sum.c",
           by=(GCC, CLANG)),
        _c("/s/x86/bin/sha256sum", f"{A}/hex1", f"{A}/M2-Planet-000000",
           status=Status.DIFFERENT, offset=3),
    ])


def test_nodes_edges_and_counts() -> None:
    data = chain_report().as_dict()
    nodes = nodes_from(data)
    assert [n.kind for n in nodes] == ["seed", "python", "python", "python", "not-covered",
                                       "python", "ddc", "python", "ddc", "different"]
    names = {n.index: n.name for n in nodes}
    edges = {(names[a], names[b]) for a, b in edges_of(nodes)}
    # the program that wrote each artifact, and the compared artifacts it read
    assert {("hex0-seed", "hex0"), ("hex0", "hex1"), ("hex1", "cc_x86"),
            ("cc_x86", "M2-0.M1"), ("M2-0.M1", "M2"), ("M2", "M2-1.M1"),
            ("M2-1.M1", "M2-Planet"), ("M2-Planet", "M2-Planet-000000"),
            ("M2-Planet-000000", "sha256sum")} <= edges
    assert ("hex0-seed", "hex0-seed") not in edges  # the seed rebuilding itself: no loop
    assert counts(nodes) == {"identical": 8, "different": 1, "not covered": 1}


def test_every_artifact_confirmed_is_said_only_when_true() -> None:
    report = chain_report()
    assert "every artifact confirmed" not in chain_section("p", report.as_dict())
    # cc_x86's compile replayed by the Python cc_x86, the planted difference gone
    report.checks[4] = _c(f"{A}/M2-0.M1", f"{A}/cc_x86", "/s/M2-0.c",
                          by=("Python cc_x86",))
    report.checks[9] = _c("/s/x86/bin/sha256sum", f"{A}/hex1", f"{A}/M2-Planet-000000")
    page = chain_section("p", report.as_dict())
    assert "every artifact confirmed by at least one independent path" in page
    assert "<b>10</b> identical · <b>0</b> different · <b>0</b> not covered" in page
    report.checks[9] = _c("/s/x86/bin/sha256sum", f"{A}/hex1", f"{A}/M2-Planet-000000",
                          status=Status.DIFFERENT, offset=3)
    assert "every artifact confirmed" not in chain_section("p", report.as_dict())


def test_hostile_data_is_escaped_and_bounded() -> None:
    assert chain_section("p", {"checks": "nope"}) == ""
    assert chain_section("p", [1, 2]) == ""
    evil = {"checks": [{"artifact": "<script>alert(1)</script>", "status": "identical",
                        "reproduced_by": [1, None, "Python <b>"], "inputs": "x",
                        "program": {"a": 1}, "seed": "yes"},
                       {"artifact": "a", "program": "b", "inputs": ["a"]},
                       {"artifact": "b", "program": "a", "inputs": ["b"]}],  # a cycle
            "headline": "<img src=x>"}
    page = chain_section("p<", evil)
    assert "<script>" not in page and "<img" not in page and "Python <b>" not in page
    assert "&lt;script&gt;" in page and page.count('class="artifact') == 3


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.nodes: list[dict[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "g" and (dict(attrs).get("class") or "").startswith("artifact"):
            self.nodes.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_draws_the_chain_in_chromium(tmp_path: Path) -> None:
    out = tmp_path / "out"
    three_level_chain(out)
    report = chain_report()
    (out / SEED_PKG / CROSSCHECK_FILE).write_text(json.dumps(report.as_dict()))
    page = write_report(tmp_path / "report.html", collect(out))
    assert CHROMIUM is not None
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run",
                        f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                        page.as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    parser = _Collector()
    parser.feed(r.stdout)
    kinds = [(n.get("class"), n.get("data-artifact")) for n in parser.nodes]
    assert len(kinds) == len(report.checks)
    assert ("artifact ddc", f"{A}/M2-1.M1") in kinds
    assert ("artifact not-covered", f"{A}/M2-0.M1") in kinds
    assert ("artifact different", "/s/x86/bin/sha256sum") in kinds
    text = " ".join(" ".join(parser.text).split())
    assert "8 identical · 1 different · 1 not covered" in text
    assert "DDC: gcc, clang" in text  # the node's second line


def test_an_unverified_images_chain_is_not_presented_as_confirmed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    three_level_chain(out)
    (out / SEED_PKG / CROSSCHECK_FILE).write_text(json.dumps(chain_report().as_dict()))
    page = write_report(tmp_path / "ok.html", collect(out)).read_text()
    assert "NOT VERIFIED" not in page and 'class="chain-box" ' in page
    # the seed's provenance no longer matches its image: its chain is broken
    prov = out / SEED_PKG / "provenance.json"
    prov.write_text(prov.read_text().replace('"fixture-seed"', '"fixture-other"', 1))
    infos = {i.package: i for i in collect(out)}
    assert infos[SEED_PKG].status == "broken"
    page = write_report(tmp_path / "broken.html", list(infos.values())).read_text()
    assert 'class="chain-box unverified"' in page
    assert "the chain, artifact by artifact (not verified)" in page
    assert ("NOT VERIFIED: this image's chain of custody is broken or lacks its signature "
            "quorum") in page


def test_a_wide_layer_wraps_instead_of_running_off_the_page() -> None:
    """Many artifacts made by one program (the DDC-checked compiles of stage0) wrap onto
    rows of at most PER_ROW, so the diagram fits a desktop page."""
    import re

    from rootseed.provenance.chain import H_GAP, MARGIN, NODE_W, PER_ROW, chain_svg

    wide = Report("bootstrap-stage0", checks=[
        _c(f"{A}/M2", f"{A}/M2", "/s/M2.hex2"),
        *[_c(f"{A}/out-{i}.M1", f"{A}/M2", f"/s/src-{i}.c", by=(GCC, CLANG))
          for i in range(20)]])
    svg = chain_svg(nodes_from(wide.as_dict()))
    width = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert width == MARGIN * 2 + PER_ROW * NODE_W + (PER_ROW - 1) * H_GAP <= 1400
    rows = {int(y) for y in re.findall(r'class="artifact ddc".*?translate\(\d+,(\d+)\)', svg)}
    assert len(rows) == 3  # 20 artifacts: 9 + 9 + 2
