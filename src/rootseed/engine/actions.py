"""Action keys, shaped like the Remote Execution API's Action / Command / input root.

Every instruction that can change the root filesystem (RUN, COPY, ADD, WORKDIR) is an
*action*. Its key hashes:

* the **command** (REAPI ``Command``): the planned instruction — for RUN the final argv,
  environment, working directory and user; for COPY/ADD the instruction with the
  variables in scope; for WORKDIR the directory — and the platform;
* the **input root** (REAPI ``input_root_digest``): the digest of the snapshot it runs on;
* the digests of every other **input** it reads (build context, fetched sources,
  ``--from`` snapshots and images), by name;
* the digest of **rootseed's own builder code** (:func:`builder_digest`), so entries made
  by other builder code are never reused (a version string would not change).

Keys are ``sha256`` of canonical JSON (sorted keys, no whitespace): a remote backend can
store the same three documents and arrive at the same keys.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from rootseed.console import canonical_json

#: The packages whose code decides what a build produces (their .py files are hashed).
BUILDER_PACKAGES = ("rootseed.engine", "rootseed.containerfile", "rootseed.oci",
                    "rootseed.oci.buildkit",
                    "rootseed.sandbox", "rootseed.plan")
#: Single modules outside those packages that also affect outputs.
BUILDER_MODULES = ("rootseed/fsutil.py",)


def digest_of(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()


@functools.cache
def builder_digest() -> str:
    """sha256 over the source of every module that affects build outputs (sorted by
    path, each path and content length-prefixed). Computed once per process."""
    h = hashlib.sha256()
    root = resources.files("rootseed")
    files: list[tuple[str, bytes]] = []
    for package in BUILDER_PACKAGES:
        sub = root.joinpath(*package.split(".")[1:])
        if not sub.is_dir():
            continue
        for item in sub.iterdir():
            if item.name.endswith(".py") and item.is_file():
                files.append((f"{package}/{item.name}", item.read_bytes()))
    for module in BUILDER_MODULES:
        item = root.joinpath(*module.split("/")[1:])
        if item.is_file():
            files.append((module, item.read_bytes()))
    for name, data in sorted(files):
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return "sha256:" + h.hexdigest()


@dataclass(frozen=True)
class Command:
    """What runs (REAPI ``Command``): the planned instruction, fully expanded."""

    kind: str  # "RUN" | "COPY" | "ADD" | "WORKDIR"
    instruction: Mapping[str, Any]  # the planned instruction's fields
    platform: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "instruction": dict(self.instruction),
                "platform": self.platform}


@dataclass(frozen=True)
class Action:
    """REAPI ``Action``: a command, the snapshot it runs on, and its other inputs."""

    command: Command
    input_root: str  # the parent snapshot's digest
    inputs: Mapping[str, str] = field(default_factory=dict)  # name → digest
    builder: str = field(default_factory=builder_digest)

    def to_json(self) -> dict[str, Any]:
        return {"command_digest": digest_of(self.command.to_json()),
                "input_root_digest": self.input_root,
                "inputs": dict(sorted(self.inputs.items())),
                "builder_digest": self.builder}

    @property
    def key(self) -> str:
        """The cache key: hex sha256 of the canonical Action document."""
        return digest_of(self.to_json()).removeprefix("sha256:")


def env_pairs(env: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[list[str]]:
    items = env.items() if isinstance(env, Mapping) else env
    return [[k, v] for k, v in items]
