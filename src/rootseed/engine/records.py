"""Cache records that only this user's rootseed can have written.

A cache entry's record (``stage.json``, ``action.json``, ``complete.json``,
``image.json``) says what its content hashes to; before an entry is used its content is
checked against that digest (or a seal vouches that it has not changed since). If anyone
who can write the cache could also rewrite the record, the check would prove nothing: a
changed layer with a rewritten digest would pass. So each record carries an HMAC-SHA256
under the seal key (:mod:`rootseed.engine.seal`, kept outside the cache) over its kind,
the name of its entry and its canonical JSON. A record without a valid MAC — written by
someone else, copied from another entry, or from a cache made under another key — is not
believed: the entry is a miss and is built again.

Without a key that can be kept privately, each process makes a random one of its own:
entries it writes are used within the run, and nothing from earlier runs is believed.

Records are read through :mod:`rootseed.safefs` (no link followed, at most
:data:`MAX_RECORD` bytes).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rootseed import safefs
from rootseed.console import canonical_json
from rootseed.engine import seal

#: The most a record may hold (a layered stage lists up to a few hundred layers).
MAX_RECORD = 4 << 20
_MAC = "mac"


class Kind(enum.Enum):
    STAGE = "stage"
    ACTION = "action"
    UNPACKED = "unpacked-image"
    IMAGE = "stage-image"
    CROSSCHECK = "crosscheck-memo"
    STATEMENT = "valid-statement"  # a provenance statement that passed validation
    PROBE = "overlay-probe"  # overlay worked in this cache on this boot
    SHARED = "shared-image"  # an image taken from a shared cache (engine/shared.py)


class Verdict(enum.Enum):
    ABSENT = "absent"  # no record: a plain miss
    UNREADABLE = "unreadable"  # a link, special file, too large, not JSON
    FORGED = "not written by rootseed under this user's key"


@dataclass(frozen=True)
class Read:
    record: dict[str, Any] | None
    verdict: Verdict | None = None  # why record is None

    def problem(self) -> str | None:
        """A message for a record that exists but is not believed (None: fine or absent)."""
        if self.verdict in (None, Verdict.ABSENT):
            return None
        assert self.verdict is not None
        return f"its record is {self.verdict.value}"


class Records:
    """Signs and checks records with the seal key (or a key of this process)."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is None:
            key = seal.load_key()
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, kind: Kind, name: str, body: dict[str, Any]) -> str:
        text = f"rootseed-record\0{kind.value}\0{name}\0{canonical_json(body)}"
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def sign(self, kind: Kind, name: str, record: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in record.items() if k != _MAC}
        return {**body, _MAC: self._mac(kind, name, body)}

    def encode(self, kind: Kind, name: str, record: dict[str, Any]) -> bytes:
        return canonical_json(self.sign(kind, name, record)).encode("utf-8")

    def check(self, kind: Kind, name: str, data: object) -> dict[str, Any] | None:
        """``data`` if it is a record of ``kind`` for entry ``name`` signed under our key."""
        if not isinstance(data, dict) or not isinstance(data.get(_MAC), str):
            return None
        body = {k: v for k, v in data.items() if k != _MAC}
        try:
            expected = self._mac(kind, name, body)
        except (TypeError, ValueError):
            return None
        return data if hmac.compare_digest(data[_MAC], expected) else None

    def read(self, root: Path, path: Path, kind: Kind, name: str) -> Read:
        """The record at ``path`` below ``root`` (see :class:`Read`)."""
        try:
            data = safefs.read_json(root, path, MAX_RECORD)
        except FileNotFoundError:
            return Read(None, Verdict.ABSENT)
        except (OSError, ValueError, safefs.UnsafePath):
            return Read(None, Verdict.UNREADABLE)
        record = self.check(kind, name, data)
        return Read(record, None if record is not None else Verdict.FORGED)

    def write(self, root: Path, path: Path, kind: Kind, name: str,
              record: dict[str, Any]) -> None:
        """Write the signed record atomically (never through a planted link)."""
        safefs.write_atomic(root, path, self.encode(kind, name, record))
