"""The signed payload: the containers/image "atomic container signature" JSON.

The exact form rootseed (and StageX) writes, with sorted keys and no whitespace::

    {"critical":{"identity":{"docker-reference":"<registry>/<stage>-<name>:<tag>"},
    "image":{"docker-manifest-digest":"sha256:<manifest>"},
    "type":"atomic container signature"},"optional":{}}

Parsing follows the consumer rules of containers/image (``containers-signature(5)``):
the top level has exactly ``critical`` and ``optional``; ``critical`` has exactly
``type``, ``image`` and ``identity``; ``image`` has exactly ``docker-manifest-digest``;
``identity`` has exactly ``docker-reference``; unknown keys in ``optional`` are ignored,
but ``optional.creator`` must be a string and ``optional.timestamp`` an integer.
Duplicate keys anywhere make the payload malformed.

The **legacy** form is what StageX's signature store carried from 2023-12 until its
2025-05 change "Fix JSON payload to align with atomic spec" (e.g. every signature at its
2025.04 release): a JSON *array* of exactly one object, ``critical.type`` = ``"pgp
container image signature"``, the digest as bare hex (no ``sha256:``), the docker reference
without a tag, and ``"optional": null``::

    [{"critical":{"identity":{"docker-reference":"stagex/<name>"},
    "image":{"docker-manifest-digest":"<64 hex>"},
    "type":"pgp container image signature"},"optional":null}]

It is accepted for verification only (same digest and name checks, reported as legacy);
:func:`build` writes the atomic form only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rootseed.console import canonical_json
from rootseed.errors import ErrorKind, RootseedError

SIGNATURE_TYPE = "atomic container signature"
#: ``critical.type`` of StageX's legacy payloads (2023-12 .. 2025-05).
LEGACY_SIGNATURE_TYPE = "pgp container image signature"
_LEGACY_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


class PayloadFormat(StrEnum):
    """Which form of signed JSON a signature carried."""

    ATOMIC = "atomic"
    LEGACY = "legacy"

# Docker reference grammar (distribution/reference), written out from its documentation.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE_RE = re.compile(rf"(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?")
_NAME_RE = re.compile(_NAME)
_NAME_MAX = 255

_MANIFEST_DIGEST_RE = re.compile(
    r"(?P<algo>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)")
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


class PayloadError(RootseedError):
    """The payload is not a well-formed atomic container signature."""

    kind = ErrorKind.SIGNATURE


class WrongTypeError(PayloadError):
    """Well-formed, but ``critical.type`` is not ``atomic container signature``."""


@dataclass(frozen=True)
class Reference:
    """A docker reference split into its parts (``name[:tag][@digest]``)."""

    name: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Split and validate a docker reference such as ``stagex/core-gcc:13.1.0``."""
    m = _REFERENCE_RE.fullmatch(text)
    if m is None or len(m["name"]) > _NAME_MAX:
        raise PayloadError(f"invalid docker reference {text!r}",
                           hint="expected <registry>/<stage>-<name>:<tag>, lowercase, e.g. "
                                "stagex/bootstrap-stage0:1.6.0")
    return Reference(m["name"], m["tag"], m["digest"])


def check_name(text: str) -> str:
    """Validate a repository name (``<registry>/<stage>-<name>``, no tag); return it."""
    if _NAME_RE.fullmatch(text) is None or len(text) > _NAME_MAX:
        raise PayloadError(f"invalid image name {text!r}",
                           hint="registry and package names are lowercase letters, digits and "
                                "single '.', '_' or '-' separators")
    return text


def check_manifest_digest(text: str) -> str:
    """Validate an OCI digest (``sha256:<64 lowercase hex>``); return it."""
    m = _MANIFEST_DIGEST_RE.fullmatch(text)
    ok = m is not None
    if m is not None and m["algo"] in _DIGEST_HEX_LENGTHS:
        ok = re.fullmatch(rf"[0-9a-f]{{{_DIGEST_HEX_LENGTHS[m['algo']]}}}", m["hex"]) is not None
    if not ok:
        raise PayloadError(f"invalid manifest digest {text!r}",
                           hint="expected sha256:<64 lowercase hex digits>")
    return text


@dataclass(frozen=True)
class Payload:
    """What a signature says: this manifest digest is the image named by this reference."""

    docker_reference: str
    manifest_digest: str
    creator: str | None = None
    timestamp: int | None = None
    format: PayloadFormat = PayloadFormat.ATOMIC


def build(docker_reference: str, manifest_digest: str) -> bytes:
    """The exact bytes to sign for ``docker_reference`` (with a tag) and ``manifest_digest``."""
    ref = parse_reference(docker_reference)
    if ref.tag is None or ref.digest is not None:
        raise PayloadError(f"docker reference {docker_reference!r} must have a tag and no digest",
                           hint="sign <registry>/<stage>-<name>:<tag>")
    check_manifest_digest(manifest_digest)
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": {},
    }
    return canonical_json(document).encode("utf-8")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise PayloadError(f"duplicate key {key!r} in signature payload")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise PayloadError(f"invalid JSON constant {name} in signature payload")


def _object(value: Any, where: str, exact: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"signature payload: {where} must be a JSON object")
    if exact is not None and set(value) != set(exact):
        extra = sorted(set(value) - set(exact))
        missing = sorted(set(exact) - set(value))
        detail = "; ".join(part for part in (
            f"unexpected {', '.join(extra)}" if extra else "",
            f"missing {', '.join(missing)}" if missing else "") if part)
        raise PayloadError(f"signature payload: {where} must have exactly the keys "
                           f"{', '.join(exact)} ({detail})")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"signature payload: {where} must be a string")
    return value


def parse(data: bytes) -> Payload:
    """Strictly parse signed payload bytes; raise :class:`PayloadError` if malformed."""
    try:
        text = data.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_no_duplicates,
                              parse_constant=_reject_constant)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as e:  # ValueError: also ints over 4300 digits
        raise PayloadError(f"signature payload is not JSON: {e}") from e
    if isinstance(document, list):
        return _parse_legacy(document)
    top = _object(document, "the top level", ("critical", "optional"))
    optional = _object(top["optional"], "optional", None)
    creator = optional.get("creator")
    if creator is not None:
        creator = _string(creator, "optional.creator")
    timestamp = optional.get("timestamp")
    if timestamp is not None:
        if isinstance(timestamp, float) and timestamp.is_integer():
            timestamp = int(timestamp)
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise PayloadError("signature payload: optional.timestamp must be an integer")
    critical = _object(top["critical"], "critical", ("type", "image", "identity"))
    kind = _string(critical["type"], "critical.type")
    if kind != SIGNATURE_TYPE:
        raise WrongTypeError(f"signature payload has type {kind!r}, not {SIGNATURE_TYPE!r}")
    image = _object(critical["image"], "critical.image", ("docker-manifest-digest",))
    digest = check_manifest_digest(
        _string(image["docker-manifest-digest"], "critical.image.docker-manifest-digest"))
    identity = _object(critical["identity"], "critical.identity", ("docker-reference",))
    reference = _string(identity["docker-reference"], "critical.identity.docker-reference")
    parse_reference(reference)
    return Payload(docker_reference=reference, manifest_digest=digest,
                   creator=creator, timestamp=timestamp)


def _parse_legacy(document: list[Any]) -> Payload:
    """StageX's legacy payload (see the module docstring), exactly as it was written."""
    if len(document) != 1:
        raise PayloadError(f"legacy signature payload: the array must hold exactly one "
                           f"object, not {len(document)} items")
    top = _object(document[0], "the legacy top level", ("critical", "optional"))
    if top["optional"] is not None:
        raise PayloadError("legacy signature payload: optional must be null")
    critical = _object(top["critical"], "critical", ("type", "image", "identity"))
    kind = _string(critical["type"], "critical.type")
    if kind != LEGACY_SIGNATURE_TYPE:
        raise WrongTypeError(f"legacy signature payload has type {kind!r}, not "
                             f"{LEGACY_SIGNATURE_TYPE!r}")
    image = _object(critical["image"], "critical.image", ("docker-manifest-digest",))
    hexdigest = _string(image["docker-manifest-digest"],
                        "critical.image.docker-manifest-digest")
    if _LEGACY_DIGEST_RE.fullmatch(hexdigest) is None:
        raise PayloadError(f"legacy signature payload: invalid manifest digest {hexdigest!r}",
                           hint="the legacy form holds 64 lowercase hex digits, no sha256:")
    identity = _object(critical["identity"], "critical.identity", ("docker-reference",))
    reference = _string(identity["docker-reference"], "critical.identity.docker-reference")
    check_name(reference)
    return Payload(docker_reference=reference, manifest_digest=f"sha256:{hexdigest}",
                   format=PayloadFormat.LEGACY)
