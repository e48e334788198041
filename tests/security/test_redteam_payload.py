"""Red-team: a validly signed payload whose JSON the parser did not expect.

``payload.parse`` caught ``JSONDecodeError`` but not the plain ``ValueError`` that
``json.loads`` raises for an integer of more than 4300 digits: a signature by a trusted
key over ``{"optional": {"timestamp": 999…}}`` ended ``verify`` in an internal error
(exit 70) instead of "malformed payload" for that one signature.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rootseed.trust import payload, store
from trust_attack import run
from trust_helpers import Keys, gpg, make_image

PKG = "test-a"
REGISTRY = "evil"
REFERENCE = f"{REGISTRY}/{PKG}:1.0"


@pytest.mark.parametrize("shape", ["huge-timestamp", "deep-optional"])
def test_signed_payload_with_hostile_json_is_malformed_not_a_crash(
        tmp_path: Path, keys: Keys, gnupghome: Path, capsys: pytest.CaptureFixture[str],
        shape: str) -> None:
    out, sigs = tmp_path / "out", tmp_path / "signatures"
    digest = make_image(out, PKG)
    good = json.loads(payload.build(REFERENCE, digest))
    text = json.dumps(good, separators=(",", ":"))
    if shape == "huge-timestamp":
        hostile = text.replace('"optional":{}', '"optional":{"timestamp":' + "9" * 5000 + "}")
    else:
        hostile = text.replace('"optional":{}', '"optional":{"x":' + "[" * 100_000
                               + "]" * 100_000 + "}")
    assert hostile != text
    directory = store.signature_dir(sigs, REGISTRY, PKG, digest)
    for data in (hostile.encode(), payload.build(REFERENCE, digest)):
        store.add_signature(directory, gpg(gnupghome, "--local-user", keys.alice, "--sign",
                                           stdin=data))
    keyring = tmp_path / "keyring.gpg"
    keyring.write_bytes(keys.public(keys.alice))
    code, stdout, _ = run(capsys, "verify", PKG, "--keyring", str(keyring), "--quorum", "1",
                          "--signatures", str(sigs), "--registry", REGISTRY, "--out",
                          str(out), "--json")  # run() asserts: no traceback, no exit 70
    assert code == 0, stdout  # the good signature still counts
    report = {s["name"]: s for s in json.loads(stdout)["signatures"]}
    assert report["signature-1"]["counted"] is False
