from __future__ import annotations

import pytest

from rootseed.trust import payload
from rootseed.trust.payload import PayloadError, WrongTypeError

DIGEST = "sha256:" + "ab" * 32


def test_build_is_exactly_the_containers_image_form() -> None:
    data = payload.build("stagex/bootstrap-stage0:1.6.0", DIGEST)
    assert data == (
        b'{"critical":{"identity":{"docker-reference":"stagex/bootstrap-stage0:1.6.0"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"atomic container signature"},"optional":{}}')


def test_parse_roundtrip() -> None:
    parsed = payload.parse(payload.build("rootseed/core-gcc:13.1.0", DIGEST))
    assert parsed == payload.Payload("rootseed/core-gcc:13.1.0", DIGEST)


def test_parse_accepts_optional_creator_and_timestamp_and_ignores_unknown() -> None:
    data = (b'{"critical":{"type":"atomic container signature","image":'
            b'{"docker-manifest-digest":"' + DIGEST.encode() + b'"},"identity":'
            b'{"docker-reference":"docker.io/stagex/core-gcc:13"}},'
            b'"optional":{"creator":"skopeo 1.9","timestamp":1700000000,"x":[1]}}')
    parsed = payload.parse(data)
    assert parsed.creator == "skopeo 1.9"
    assert parsed.timestamp == 1700000000
    assert parsed.docker_reference == "docker.io/stagex/core-gcc:13"


def _doc(critical: str, optional: str = "{}") -> bytes:
    return f'{{"critical":{critical},"optional":{optional}}}'.encode()


GOOD_IMAGE = f'{{"docker-manifest-digest":"{DIGEST}"}}'
GOOD_IDENTITY = '{"docker-reference":"stagex/a-b:1"}'
GOOD_TYPE = '"atomic container signature"'


@pytest.mark.parametrize("data", [
    b"",
    b"\xff\xfe",
    b"[]",
    b"null",
    b'{"critical":{}}',
    b'{"critical":{},"optional":{},"extra":1}',
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},"identity":{GOOD_IDENTITY},"x":1}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{{"docker-manifest-digest":"sha256:abc"}},'
         f'"identity":{GOOD_IDENTITY}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{{"docker-manifest-digest":"{DIGEST.upper()}"}},'
         f'"identity":{GOOD_IDENTITY}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{{"docker-manifest-digest":"{DIGEST}","x":1}},'
         f'"identity":{GOOD_IDENTITY}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},'
         f'"identity":{{"docker-reference":"Stagex/UPPER:1"}}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},"identity":{{"docker-reference":5}}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"type":{GOOD_TYPE},"image":{GOOD_IMAGE},'
         f'"identity":{GOOD_IDENTITY}}}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},"identity":{GOOD_IDENTITY}}}',
         '{"timestamp":1.5}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},"identity":{GOOD_IDENTITY}}}',
         '{"timestamp":NaN}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},"identity":{GOOD_IDENTITY}}}',
         '{"creator":7}'),
    _doc(f'{{"type":{GOOD_TYPE},"image":{GOOD_IMAGE},"identity":{GOOD_IDENTITY}}}', "[]"),
    _doc(f'{{"type":1,"image":{GOOD_IMAGE},"identity":{GOOD_IDENTITY}}}'),
])
def test_parse_rejects_malformed(data: bytes) -> None:
    with pytest.raises(PayloadError) as info:
        payload.parse(data)
    assert not isinstance(info.value, WrongTypeError)


def test_parse_reports_wrong_type_separately() -> None:
    data = _doc(f'{{"type":"cosign container image signature","image":{GOOD_IMAGE},'
                f'"identity":{GOOD_IDENTITY}}}')
    with pytest.raises(WrongTypeError):
        payload.parse(data)


@pytest.mark.parametrize(("reference", "digest"), [
    ("stagex/bootstrap-stage0", DIGEST),  # no tag
    ("stagex/bootstrap-stage0:1@" + DIGEST, DIGEST),  # digest reference
    ("stagex/Bootstrap:1", DIGEST),
    ("../etc/passwd:1", DIGEST),
    ("stagex/a:1", "sha256:" + "g" * 64),
    ("stagex/a:1", "ab" * 32),
])
def test_build_rejects_bad_input(reference: str, digest: str) -> None:
    with pytest.raises(PayloadError):
        payload.build(reference, digest)


def test_parse_reference_parts() -> None:
    ref = payload.parse_reference("localhost:5000/stagex/core-gcc:13.1.0")
    assert (ref.name, ref.tag, ref.digest) == ("localhost:5000/stagex/core-gcc", "13.1.0", None)
    assert str(ref) == "localhost:5000/stagex/core-gcc:13.1.0"
