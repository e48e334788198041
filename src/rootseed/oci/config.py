"""The image configuration rootseed writes: a frozen dataclass and its OCI JSON form."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rootseed.errors import RootseedError

MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


def created_at(epoch: int) -> str:
    """RFC 3339 UTC time of ``epoch`` (1 → ``1970-01-01T00:00:01Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass(frozen=True)
class ImageConfig:
    """What an image tells its runtime. ``None`` means unset (``()`` is an explicit ``[]``).

    ``env`` entries are ``KEY=value`` in the order the Containerfile set them.
    """

    architecture: str = "386"
    os: str = "linux"
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def to_oci(self, diff_ids: list[str], *, epoch: int = 1) -> dict[str, Any]:
        """The OCI image config document (fields left empty are omitted)."""
        for item in self.env:
            if "=" not in item:
                raise RootseedError(f"image environment entry {item!r} is not KEY=value")
        cfg: dict[str, Any] = {}
        if self.env:
            cfg["Env"] = list(self.env)
        if self.entrypoint is not None:
            cfg["Entrypoint"] = list(self.entrypoint)
        if self.cmd is not None:
            cfg["Cmd"] = list(self.cmd)
        if self.working_dir:
            cfg["WorkingDir"] = self.working_dir
        if self.user:
            cfg["User"] = self.user
        if self.labels:
            cfg["Labels"] = dict(self.labels)
        return {
            "architecture": self.architecture,
            "os": self.os,
            "created": created_at(epoch),
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        }

    @classmethod
    def from_oci(cls, doc: Mapping[str, Any]) -> ImageConfig:
        """Read an OCI image config document (written by rootseed or anything else)."""
        cfg = doc.get("config") or {}

        def strings(key: str) -> tuple[str, ...] | None:
            value = cfg.get(key)
            return None if value is None else tuple(str(v) for v in value)

        return cls(
            architecture=str(doc.get("architecture", "")),
            os=str(doc.get("os", "")),
            env=strings("Env") or (),
            entrypoint=strings("Entrypoint"),
            cmd=strings("Cmd"),
            working_dir=str(cfg.get("WorkingDir") or ""),
            user=str(cfg.get("User") or ""),
            labels={str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
        )
