"""``rootseed trace`` and ``rootseed report`` with --keyring: each image's quorum status.

Real GnuPG with the session's throwaway keys signs (through ``rootseed sign``, which signs
each image and its provenance); Sequoia verifies. Images are the handwritten provenance
fixtures (namespace ``rootseed``). ``trace --keyring`` requires the quorum on every image
and every provenance statement; ``report`` shows each image's status.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from clirun import rootseed as run_cli
from provenance_fixtures import (
    CHILD_PKG,
    GRANDCHILD_PKG,
    NAMESPACE,
    SEED_PKG,
    Chain,
    three_level_chain,
)
from trust_helpers import Keys, gpg

NOT_CHECKED = "signatures not checked (no --keyring)"


class World:
    """A traced chain in ``out``, a signature store, a GnuPG home, and an in-process CLI."""

    def __init__(self, tmp_path: Path, keys: Keys, gnupghome: Path,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.tmp, self.keys, self.home, self.capsys = tmp_path, keys, gnupghome, capsys
        self.out = tmp_path / "out"
        self.sigs = tmp_path / "signatures"
        self.chain: Chain = three_level_chain(self.out)

    def run(self, *args: str) -> tuple[int, str, str]:
        r = run_cli(*args)
        return r.returncode, r.stdout, r.stderr

    def sign(self, package: str, key: str) -> None:
        code, _, err = self.run("sign", package, "--key", key, "--gnupghome", str(self.home),
                                "--signatures", str(self.sigs), "--registry", NAMESPACE,
                                "--tag", "1.0", "--out", str(self.out))
        assert code == 0, err

    def keyring(self, *fprs: str) -> Path:
        path = self.tmp / "keyring.gpg"
        path.write_bytes(gpg(self.home, "--export", *fprs))
        return path

    def trust_args(self, *extra: str) -> tuple[str, ...]:
        return ("--keyring", str(self.keyring(self.keys.alice, self.keys.bob)),
                "--signatures", str(self.sigs), "--out", str(self.out), *extra)


@pytest.fixture
def world(tmp_path: Path, keys: Keys, gnupghome: Path,
          capsys: pytest.CaptureFixture[str]) -> World:
    w = World(tmp_path, keys, gnupghome, capsys)
    w.sign(GRANDCHILD_PKG, keys.alice)
    w.sign(GRANDCHILD_PKG, keys.bob)
    w.sign(CHILD_PKG, keys.alice)
    w.sign(CHILD_PKG, keys.mallory)  # not in the keyring
    return w


@pytest.fixture
def signed_world(tmp_path: Path, keys: Keys, gnupghome: Path,
                 capsys: pytest.CaptureFixture[str]) -> World:
    """Every image (and so its provenance) signed by alice and bob."""
    w = World(tmp_path, keys, gnupghome, capsys)
    for package in (GRANDCHILD_PKG, CHILD_PKG, SEED_PKG):
        w.sign(package, keys.alice)
        w.sign(package, keys.bob)
    return w


MET = "quorum 2/2 met"

EXPECTED = {
    GRANDCHILD_PKG: "quorum 2/2 met",
    CHILD_PKG: "quorum 1/2 NOT met: signature-2 untrusted-key",
    SEED_PKG: "quorum 0/2 NOT met: no signatures",
}


def trace_json(world: World, *args: str) -> dict[str, Any]:
    code, out, err = world.run("trace", GRANDCHILD_PKG, "--json", *args)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_trace_json_shows_each_images_and_provenance_quorum(signed_world: World) -> None:
    w = signed_world
    data = trace_json(w, *w.trust_args("--registry", NAMESPACE))
    assert {n["package"]: n["quorum"] for n in data["nodes"]} == {
        SEED_PKG: MET, CHILD_PKG: MET, GRANDCHILD_PKG: MET}
    assert {n["provenance_quorum"] for n in data["nodes"]} == {f"provenance {MET}"}
    assert {n["package"]: n["digest"] for n in data["nodes"]} == {
        SEED_PKG: w.chain.seed, CHILD_PKG: w.chain.child, GRANDCHILD_PKG: w.chain.grandchild}


def test_trace_refuses_an_image_under_the_quorum(world: World) -> None:
    code, out, err = world.run("trace", GRANDCHILD_PKG, "--json",
                               *world.trust_args("--registry", NAMESPACE))
    assert code == 1
    error = json.loads(out)["error"]  # --json: what a program reads
    assert (error["kind"], error["package"]) == ("quorum", CHILD_PKG)
    text = " ".join(err.split())
    # words: for people: which image, and why on each side
    assert f"{CHILD_PKG} ({world.chain.child}) is not signed by the quorum" in text
    assert "image: quorum 1/2 NOT met: signature-2 untrusted-key" in text
    assert "provenance: quorum 1/2 NOT met: provenance-2 untrusted-key" in text


def test_trace_quorum_follows_the_keyring_and_the_quorum(signed_world: World) -> None:
    w, k = signed_world, signed_world.keys
    code, out, err = w.run("trace", GRANDCHILD_PKG, "--json",
                           "--keyring", str(w.keyring(k.alice, k.bob, k.mallory)),
                           "--signatures", str(w.sigs), "--registry", NAMESPACE,
                           "--out", str(w.out), "--quorum", "3")
    assert code == 1
    assert json.loads(out)["error"]["kind"] == "quorum"
    # words: says why for people (only 2 distinct signers)
    assert "quorum 2/3 NOT met: only 2 distinct trusted signers" in " ".join(err.split())
    data = trace_json(w, "--keyring", str(w.keyring(k.alice)), "--quorum", "1",
                      "--signatures", str(w.sigs), "--registry", NAMESPACE,
                      "--out", str(w.out))
    assert {n["quorum"] for n in data["nodes"]} == {"quorum 1/1 met"}


def test_trace_text_shows_the_quorum_under_each_image(signed_world: World) -> None:
    w = signed_world
    code, out, err = w.run("trace", GRANDCHILD_PKG, *w.trust_args("--registry", NAMESPACE))
    assert code == 0, err
    # one block per image: its name, digest, checks, then its quorum lines (rich may wrap)
    blocks = re.split(r"(?=\b(?:fixture-seed|fixture-stage0|fixture-stage1)\s+sha256:)",
                      out)
    for package in (SEED_PKG, CHILD_PKG, GRANDCHILD_PKG):
        [block] = [b for b in blocks if re.match(rf"{package}\s+sha256:", b)]
        assert MET in " ".join(block.split()), out
        assert f"provenance {MET}" in " ".join(block.split()), out
    assert "3 images verified back to the seed" in err  # words: the summary for people


def test_registry_defaults_to_the_tree_namespace(signed_world: World) -> None:
    w = signed_world
    tree = w.tmp / "tree"
    (tree / "seed" / "x").mkdir(parents=True)
    (tree / "seed" / "x" / "package.toml").write_text(
        '[package]\nname = "x"\nversion = "1"\ndescription = "x"\nlicense = "MIT"\n')
    (tree / "seed" / "x" / "Containerfile").write_text("FROM scratch\n")
    (tree / "rootseed.toml").write_text(f'[tree]\nnamespace = "{NAMESPACE}"\n')
    data = trace_json(w, *w.trust_args("--tree", str(tree)))
    assert {n["quorum"] for n in data["nodes"]} == {MET}

    (tree / "rootseed.toml").write_text('[tree]\nnamespace = "elsewhere"\n')
    code, out, err = w.run("trace", GRANDCHILD_PKG, "--json",
                           *w.trust_args("--tree", str(tree)))
    assert code == 1 and json.loads(out)["error"]["kind"] == "quorum"
    # words: says why for people (no signatures under that registry)
    assert "quorum 0/2 NOT met: no signatures" in " ".join(err.split())


def test_trace_without_keyring_says_signatures_are_not_checked(world: World) -> None:
    data = trace_json(world, "--out", str(world.out))
    assert [n["quorum"] for n in data["nodes"]] == [NOT_CHECKED] * 3
    code, out, _ = world.run("trace", GRANDCHILD_PKG, "--out", str(world.out))
    assert code == 0 and out.count(NOT_CHECKED) == 3


def test_trace_keyring_without_a_registry_or_tree_is_a_clear_error(world: World) -> None:
    code, out, _ = world.run("trace", GRANDCHILD_PKG, "--json",
                             *world.trust_args("--tree", str(world.tmp / "no-tree")))
    error = json.loads(out)["error"]
    assert (code, error["kind"]) == (1, "usage")
    assert "--registry" in error["hint"]


def report_data(path: Path) -> dict[str, dict[str, Any]]:
    """The packages embedded in the report page, by name."""
    page = path.read_text()
    m = re.search(r'<script type="application/json" id="rootseed-data">(.*?)</script>',
                  page, re.S)
    assert m is not None
    data = json.loads(html.unescape(m.group(1)))
    return {p["package"]: p for p in data["packages"]}


def test_report_html_holds_each_images_quorum(world: World) -> None:
    page = world.tmp / "report.html"
    code, _, err = world.run("report", "-o", str(page), "--tree", str(world.tmp / "no-tree"),
                             *world.trust_args("--registry", NAMESPACE))
    assert code == 0, err
    packages = report_data(page)
    assert {name: p["quorum"] for name, p in packages.items()} == EXPECTED
    # as trace --keyring: no image whose chain lacks the quorum counts as verified (the
    # grandchild is signed, but its parent and the parent's provenance are not)
    assert {name: p["status"] for name, p in packages.items()} == dict.fromkeys(
        EXPECTED, "unsigned")
    assert packages[GRANDCHILD_PKG]["provenance_quorum"] == f"provenance {MET}"
    assert f"{CHILD_PKG} ({world.chain.child}) is not signed by the quorum" in \
        packages[GRANDCHILD_PKG]["error"]
    assert packages[GRANDCHILD_PKG]["verified"] == []

    plain = world.tmp / "plain.html"
    code, _, err = world.run("report", "-o", str(plain), "--out", str(world.out),
                             "--tree", str(world.tmp / "no-tree"))
    assert code == 0, err
    assert {p["quorum"] for p in report_data(plain).values()} == {NOT_CHECKED}


def report_json(world: World, page: Path, *args: str) -> dict[str, Any]:
    code, out, err = world.run("report", "-o", str(page), "--json", "--tree",
                               str(world.tmp / "no-tree"), *args)
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_report_requires_the_provenance_quorum_as_trace_does(world: World) -> None:
    """Every image signed by the quorum, but one provenance statement not: trace
    --keyring refuses the chain, so report must not show it as verified."""
    w, k = world, world.keys
    w.sign(CHILD_PKG, k.bob)  # the child image: alice + bob (mallory does not count)
    w.sign(SEED_PKG, k.alice)
    w.sign(SEED_PKG, k.bob)
    # ...but bob's signature of the child's provenance is damaged: 1/2 for the provenance
    [store] = [d for d in w.sigs.rglob(f"{CHILD_PKG}@*") if d.is_dir()]
    bobs = max(store.glob("provenance-*"), key=lambda f: int(f.name.split("-")[1]))
    bobs.write_bytes(b"not a signature")
    code, out, err = w.run("trace", GRANDCHILD_PKG, "--json",
                           *w.trust_args("--registry", NAMESPACE))
    assert (code, json.loads(out)["error"]["kind"]) == (1, "quorum")
    # words: says which side is short, for people
    assert "provenance: quorum 1/2 NOT met" in " ".join(err.split())

    page = w.tmp / "report.html"
    data = report_json(w, page, *w.trust_args("--registry", NAMESPACE))
    assert data["signatures_checked"] is True
    assert data["unsigned"] == data["not_verified"] == [CHILD_PKG, GRANDCHILD_PKG]
    assert data["verified"] == [SEED_PKG]
    packages = report_data(page)
    assert packages[CHILD_PKG]["quorum"] == MET  # the image itself is signed...
    assert packages[CHILD_PKG]["provenance_quorum"].startswith(
        "provenance quorum 1/2 NOT met")  # ...its provenance is not
    text = page.read_text()
    assert f'class="node unsigned" data-package="{GRANDCHILD_PKG}"' in text
    assert f'class="node verified" data-package="{GRANDCHILD_PKG}"' not in text
    assert "1 traced to the seed, 2 not verified" in text


def test_report_signed_chain_is_verified(signed_world: World) -> None:
    w = signed_world
    data = report_json(w, w.tmp / "r.html", *w.trust_args("--registry", NAMESPACE))
    assert data["not_verified"] == [] and data["unsigned"] == []
    assert data["verified"] == sorted([SEED_PKG, CHILD_PKG, GRANDCHILD_PKG])
    assert {p["provenance_quorum"] for p in report_data(w.tmp / "r.html").values()} == {
        f"provenance {MET}"}
