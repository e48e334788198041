"""StageX's legacy signature payloads (2023-12 .. 2025-05) verify like atomic ones.

The payload bytes come from :func:`trust_helpers.legacy_payload` (the format, written
here); with ``ROOTSEED_STAGEX=<a StageX checkout at its 2025.04 release>`` the real
signature files are read too: their payloads must be exactly what the helper writes, and
re-signed by two test keys (the maintainers' keys are not reachable here) they verify for
the digest they name and are refused for any other. Without it those tests skip.
To make such a checkout from the mirror used here::

    git -C stagex.git archive 17e07990 signatures | tar -x -C /tmp/stagex
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from pysequoia import packet as pgp

from rootseed.cli import main
from rootseed.trust import payload, store
from rootseed.trust.facts import CryptoStatus, SignatureFacts
from rootseed.trust.payload import PayloadFormat
from rootseed.trust.quorum import Reason, check_quorum
from trust_helpers import Keys, gpg, legacy_payload

HEX = "2b302a926971b9da62c6d898779971b4229d73a8c4e341d7de2ea79de70f920e"
NAME = "stagex/abseil-cpp"
OTHER = "sha256:" + "0" * 64


def test_legacy_payload_parses_with_its_digest_and_name() -> None:
    parsed = payload.parse(legacy_payload(NAME, HEX))
    assert parsed == payload.Payload(docker_reference=NAME, manifest_digest=f"sha256:{HEX}",
                                     format=PayloadFormat.LEGACY)


@pytest.mark.parametrize("data", [
    legacy_payload(NAME, HEX).replace(b"null}]", b"{}}]"),  # optional must be null
    legacy_payload(NAME, HEX)[:-1] + b",1]",  # exactly one item
    b"[]",
    legacy_payload(NAME, "sha256:" + HEX),  # bare hex only
    legacy_payload(NAME, HEX.upper()),
    legacy_payload(NAME, HEX[:-1]),
    legacy_payload(NAME + ":latest", HEX),  # no tag in the legacy reference
    legacy_payload(NAME, HEX).replace(b'"optional":null', b'"optional":null,"optional":null'),
    legacy_payload(NAME, HEX).replace(b'"critical":{', b'"critical":{"extra":1,'),
])
def test_malformed_legacy_payloads_are_refused(data: bytes) -> None:
    with pytest.raises(payload.PayloadError):
        payload.parse(data)
    assert not isinstance(_error(data), payload.WrongTypeError)


def _error(data: bytes) -> payload.PayloadError:
    try:
        payload.parse(data)
    except payload.PayloadError as e:
        return e
    raise AssertionError("parsed")


def test_legacy_type_is_checked() -> None:
    data = legacy_payload(NAME, HEX).replace(b"pgp container image", b"pgp container other")
    with pytest.raises(payload.WrongTypeError):
        payload.parse(data)


def good(name: str, data: bytes, signer: str) -> SignatureFacts:
    return SignatureFacts(name, CryptoStatus.GOOD, primary_fingerprint=signer,
                          signing_fingerprint=signer, payload=data)


def test_quorum_counts_legacy_signatures_for_their_digest_and_name_only() -> None:
    a, b = "A" * 40, "B" * 40
    facts = [good("signature-1", legacy_payload(NAME, HEX), a),
             good("signature-2", legacy_payload(NAME, HEX), b)]
    result = check_quorum([a, b], facts, digest=f"sha256:{HEX}", quorum=2, reference=NAME)
    assert result.passed
    assert [v.format for v in result.verdicts] == [PayloadFormat.LEGACY] * 2
    assert {v.detail for v in result.verdicts} == {"valid (legacy format)"}
    other = check_quorum([a, b], facts, digest=OTHER, quorum=2, reference=NAME)
    assert not other.passed
    assert {v.reason for v in other.verdicts} == {Reason.WRONG_DIGEST}
    elsewhere = check_quorum([a, b], facts, digest=f"sha256:{HEX}", quorum=2,
                             reference="stagex/other")
    assert {v.reason for v in elsewhere.verdicts} == {Reason.WRONG_REFERENCE}
    tagged = check_quorum([a, b], facts, digest=f"sha256:{HEX}", quorum=2,
                          reference=f"{NAME}:1.0")  # verify --tag: a legacy one has none
    assert {v.reason for v in tagged.verdicts} == {Reason.WRONG_REFERENCE}


def _store(sigs: Path, registry: str, name: str, digest: str, data: bytes,
           keys: Keys, gnupghome: Path) -> None:
    directory = store.signature_dir(sigs, registry, name, digest)
    for key in (keys.alice, keys.bob):
        signed = gpg(gnupghome, "--local-user", key, "--sign", stdin=data)  # gpg's defaults
        store.add_signature(directory, signed)


def _verify(tmp: Path, gnupghome: Path, keys: Keys, sigs: Path, registry: str, name: str,
            digest: str, capsys: pytest.CaptureFixture[str], *extra: str
            ) -> tuple[int, str, str]:
    keyring = tmp / "keyring.gpg"
    keyring.write_bytes(gpg(gnupghome, "--export", keys.alice, keys.bob))
    capsys.readouterr()
    try:
        main(["verify", name, "--keyring", str(keyring), "--quorum", "2", "--signatures",
              str(sigs), "--registry", registry, "--digest", digest, *extra])
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_verify_accepts_legacy_signatures_and_says_so(
        tmp_path: Path, keys: Keys, gnupghome: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sigs = tmp_path / "signatures"
    digest = f"sha256:{HEX}"
    _store(sigs, "stagex", "abseil-cpp", digest, legacy_payload(NAME, HEX), keys, gnupghome)
    code, out, _ = _verify(tmp_path, gnupghome, keys, sigs, "stagex", "abseil-cpp", digest,
                           capsys, "--json")
    result = json.loads(out)
    assert code == 0 and result["passed"] is True
    assert [s["format"] for s in result["signatures"]] == ["legacy", "legacy"]
    code, out, _ = _verify(tmp_path, gnupghome, keys, sigs, "stagex", "abseil-cpp", digest,
                           capsys)
    assert code == 0 and out.count("legacy format") == 2 and "PASS: 2 of 2" in out


def test_legacy_signatures_moved_to_another_digest_are_refused(
        tmp_path: Path, keys: Keys, gnupghome: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    sigs = tmp_path / "signatures"
    _store(sigs, "stagex", "abseil-cpp", OTHER, legacy_payload(NAME, HEX), keys, gnupghome)
    code, out, _ = _verify(tmp_path, gnupghome, keys, sigs, "stagex", "abseil-cpp", OTHER,
                           capsys, "--json")
    result = json.loads(out)
    assert code == 1 and result["valid"] == 0
    assert {s["reason"] for s in result["signatures"]} == {"wrong-digest"}


# -- opt-in: StageX's real signature files ------------------------------------------------

_DIR_RE = re.compile(r"(?P<name>[a-z0-9][a-z0-9._-]*)@sha256=(?P<hex>[0-9a-f]{64})")


def _stagex_store() -> Path:
    root = os.environ.get("ROOTSEED_STAGEX")
    if not root:
        pytest.skip("set ROOTSEED_STAGEX to a StageX checkout (its signatures/ store at the "
                    "2025.04 release) to test with real signature files")
    path = Path(root) / "signatures" / "stagex"
    if not path.is_dir():
        pytest.skip(f"ROOTSEED_STAGEX={root} has no signatures/stagex/")
    return path


def _literal(data: bytes) -> bytes | None:
    literals = [p.literal_data for p in pgp.PacketPile.from_bytes(data)
                if p.literal_data is not None]
    return literals[0] if len(literals) == 1 else None


@pytest.mark.stagex_checkout
def test_every_real_legacy_payload_is_what_the_helper_writes() -> None:
    root = _stagex_store()
    checked = 0
    for directory in sorted(root.iterdir()):
        m = _DIR_RE.fullmatch(directory.name)
        if m is None:
            continue  # e.g. "build.log@sha256=": not an image
        for sig in sorted(directory.iterdir()):
            data = sig.read_bytes()
            if not data:
                continue  # two empty files at 2025.04
            literal = _literal(data)
            assert literal == legacy_payload(f"stagex/{m['name']}", m["hex"]), sig
            parsed = payload.parse(literal)
            assert parsed.manifest_digest == f"sha256:{m['hex']}"
            assert parsed.format is PayloadFormat.LEGACY
            checked += 1
    assert checked > 0


@pytest.mark.stagex_checkout
def test_real_payloads_resigned_verify_for_their_digest_only(
        tmp_path: Path, keys: Keys, gnupghome: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = _stagex_store()
    dirs = [d for d in sorted(root.iterdir()) if _DIR_RE.fullmatch(d.name)]
    sample = dirs[:: max(1, len(dirs) // 12)][:12]
    sigs = tmp_path / "signatures"
    for directory in sample:
        m = _DIR_RE.fullmatch(directory.name)
        assert m is not None
        real = next(s for s in sorted(directory.iterdir()) if s.stat().st_size)
        literal = _literal(real.read_bytes())
        assert literal is not None
        _store(sigs, "stagex", m["name"], f"sha256:{m['hex']}", literal, keys, gnupghome)
        _store(sigs, "stagex", m["name"], OTHER, literal, keys, gnupghome)
        code, out, _ = _verify(tmp_path, gnupghome, keys, sigs, "stagex", m["name"],
                               f"sha256:{m['hex']}", capsys, "--json")
        assert code == 0, (directory.name, out)
        assert {s["format"] for s in json.loads(out)["signatures"]} == {"legacy"}
        code, out, _ = _verify(tmp_path, gnupghome, keys, sigs, "stagex", m["name"], OTHER,
                               capsys, "--json")
        assert code == 1
        assert {s["reason"] for s in json.loads(out)["signatures"]} == {"wrong-digest"}
