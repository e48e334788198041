"""``bootstrap``'s chain summary is derived from the build, not a fixed text."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import rootseed as run_cli
from rootseed import shipped
from rootseed.bootstrap.chain import Chain, image_stages, link
from rootseed.containerfile import parse_string
from rootseed.engine.digests import read_digests

CF = """\
FROM scratch AS tools
COPY --from=fetch seed /bin/seed
RUN ["/bin/seed", "a.hex0", "/bin/one"]
RUN ["/bin/one", "b.hex1", "/bin/two"]

FROM tools AS unused
RUN ["/bin/never", "x"]

FROM tools AS more
RUN ["./bin/two", "c", "/bin/three"]
RUN ["/bin/one", "again", "/bin/four"]

FROM scratch AS package
COPY --from=more /bin/three /bin/three
"""


def test_programs_follow_the_stages_the_image_is_made_of() -> None:
    cf = parse_string(CF, display="t/Containerfile")
    assert [s.label for s in image_stages(cf)] == ["tools", "more", "package"]
    got = link("x-y", "sha256:" + "ab" * 32, cf)
    assert got.stages == ("tools", "more", "package")
    assert got.programs == ("seed", "one", "two")  # "never" is in a stage not used
    assert [s.label for s in image_stages(cf, "unused")] == ["tools", "unused"]


def test_text_changes_with_the_containerfile_and_the_digest() -> None:
    cf = parse_string(CF, display="t/Containerfile")
    chain = Chain("seed", (link("x-y", "sha256:" + "ab" * 32, cf),))
    assert chain.text() == "seed → one → two ⇒ x-y abababababab"
    other = parse_string(CF.replace('"/bin/one", "b.hex1"', '"/bin/uno", "b.hex1"'),
                         display="t/Containerfile")
    changed = Chain("seed", (link("x-y", "sha256:" + "cd" * 32, other),))
    assert changed.text() == "seed → uno → two → one ⇒ x-y cdcdcdcdcdcd"
    assert chain.as_dict()["programs"] == ["seed", "one", "two"]


def test_demo_chain_names_the_built_images_and_their_digests(tmp_path: Path) -> None:
    r = run_cli("bootstrap", "--demo", "--offline", "--json", "--cache-dir", tmp_path / "c",
                "--out", tmp_path / "out", cwd=tmp_path, env={"COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    chain = json.loads(r.stdout)["chain"]
    recorded = read_digests(shipped.digests())
    assert [(x["image"], x["manifest_digest"]) for x in chain["links"]] == [
        ("seed-hex0", f"sha256:{recorded['seed-hex0']}"),
        ("seed-hello", f"sha256:{recorded['seed-hello']}")]
    assert chain["seed"] == "hex0-seed"
    assert chain["programs"] == ["hex0", "hello"]
    assert chain["links"][0]["stages"] == ["build", "package"]
