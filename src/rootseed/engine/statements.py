"""The provenance statements the publisher writes, validated once per exact bytes.

Every ``provenance.json`` rootseed writes is first checked against the in-toto v1 and SLSA
Provenance v1 requirements (:mod:`rootseed.provenance.validate`: the reference library's
protobuf messages plus rootseed's own rules). That check is a pure function of the
statement's bytes and of the code that checks them, and loading the library (protobuf)
costs more than the rest of a warm rebuild's work. So a passing check is remembered in
the cache, ``<cache>/statements/<name>.json``, where ``name`` is the sha256 of the
statement's exact bytes and of what decides the verdict (rootseed's validating code and
the library versions): the same bytes are not validated again. A memo is a record with a
MAC under the seal key (:mod:`rootseed.engine.records`): someone who can write the cache
but does not hold the key cannot make a statement pass unchecked (a forged or copied memo
is not believed, and the statement is validated as if there were none).

:meth:`Statements.read_back` checks what ``out/`` holds after a write: the exact bytes
that were validated are accepted as they are (they name the image, since the record
they were made from does); anything else is read and validated as any provenance from
``out/`` is (:func:`rootseed.provenance.statement.read_statement`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from pathlib import Path

from rootseed import safefs
from rootseed.engine.actions import code_digest
from rootseed.engine.errors import PublishError
from rootseed.engine.maintenance import touch
from rootseed.engine.records import Kind, Records
from rootseed.provenance.record import BuildRecord
from rootseed.provenance.statement import PROVENANCE_FILE, read_statement, statement_bytes

#: Largest provenance statement read back from out/ (a real one is a few KiB).
MAX_STATEMENT = 16 << 20
#: The libraries the statement is parsed with (their versions decide the verdict too).
_LIBRARIES = ("in_toto_attestation", "protobuf")


@functools.cache
def validator() -> str:
    """What decides whether a statement is valid: rootseed's validating code (the modules
    it imports included) and the installed versions of the libraries it parses with
    (their ``.dist-info`` names, found without importing them)."""
    spec = importlib.util.find_spec("in_toto_attestation")
    site = None if spec is None or spec.origin is None else Path(spec.origin).parent.parent
    try:
        names = sorted(n for n in os.listdir(site) if n.endswith(".dist-info")
                       and n.startswith(_LIBRARIES)) if site is not None else []
    except OSError:
        names = []
    return json.dumps([code_digest("rootseed.provenance.validate"), names])


class Statements:
    """Validated provenance statements of one cache (see the module's doc)."""

    def __init__(self, cache_dir: Path, records: Records) -> None:
        self.root = cache_dir
        self.dir = cache_dir / "statements"
        self.records = records

    def _name(self, data: bytes) -> str:
        h = hashlib.sha256(f"rootseed-statement\0{validator()}\0".encode())
        h.update(data)
        return h.hexdigest()

    def validated(self, record: BuildRecord) -> bytes:
        """The bytes of ``record``'s statement, valid (checked now unless this cache holds
        a memo, under the key, that these exact bytes passed before)."""
        data = statement_bytes(record)
        name = self._name(data)
        path = self.dir / f"{name}.json"
        if self.records.read(self.root, path, Kind.STATEMENT, name).record is not None:
            touch(path)  # used: `cache prune` keeps it
            return data
        from rootseed.provenance.validate import validate_statement

        validate_statement(json.loads(data), where=f"provenance of {record.package}")
        try:
            safefs.ensure_dir(self.root, self.dir)
            self.records.write(self.root, path, Kind.STATEMENT, name, {"valid": True})
        except (OSError, safefs.UnsafePath):
            pass  # only a memo: the next build validates again
        return data

    @staticmethod
    def holds(layout: Path, data: bytes) -> bool:
        """``layout/provenance.json`` is a regular file holding exactly ``data`` (never
        read through a link, never blocking on a FIFO, bounded)."""
        try:
            return safefs.read_bytes(layout, layout / PROVENANCE_FILE,
                                     max(MAX_STATEMENT, len(data))) == data
        except (OSError, safefs.UnsafePath):
            return False

    def read_back(self, layout: Path, name: str, digest: str, data: bytes) -> None:
        """``layout``'s provenance (just written from ``data``) is a valid statement of the
        image ``digest``: the exact validated bytes, or else one that validates."""
        if self.holds(layout, data):
            return
        statement = read_statement(layout / PROVENANCE_FILE, package=name)
        if statement.subject_digest != digest:
            raise PublishError(f"{name}: provenance.json names {statement.subject_digest}, "
                               f"the image is {digest}")
