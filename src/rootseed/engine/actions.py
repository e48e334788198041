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
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rootseed.console import canonical_json

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

#: The code that decides what a build produces: these modules and every rootseed module
#: they import, transitively (read from their source, nothing is executed). A module none
#: of them imports (a new backend not chosen yet, the CLI, the cache's bookkeeping, the
#: publisher, provenance) is not part of the builder digest, so adding one keeps every
#: cache key.
OUTPUT_MODULES = (
    "rootseed.engine.planner",  # the plan, the parents' configurations, stage keys
    "rootseed.engine.actions",  # action keys
    "rootseed.engine.stage",  # the stage interpreter: COPY, ADD, WORKDIR, RUN's operation
    "rootseed.engine.ops",  # how an operation runs (the sandbox)
    "rootseed.engine.executors",  # the executors (layers, hardlinks, copies)
    "rootseed.engine.export",  # image bytes (rootseed's format; another exporter's
    # layouts are cached under a digest of its own code: engine/export.layout_name)
    "rootseed.oci.unpack",  # the parents' trees
)
#: Files run as programs rather than imported (the overlay namespace's holder).
#: And sources that are not Python: the compiled gzip compressor decides layer bytes.
OUTPUT_SCRIPTS = ("sandbox/_overlay_holder.py", "oci/_goflate.c")

_FROM = re.compile(r"^[ \t]*from[ \t]+(rootseed(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]+)",
                   re.MULTILINE)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+(rootseed(?:\.\w+)*)", re.MULTILINE)


def digest_of(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def _module_file(root: Traversable, module: str) -> Traversable | None:
    """``rootseed.a.b`` → ``a/b.py`` or ``a/b/__init__.py`` under ``root`` (the package)."""
    parts = module.split(".")[1:]
    if isinstance(root, Path):  # an installed package: asked of the file system directly
        base = os.path.join(root, *parts)
        for name in ((base + ".py",) if parts else ()) + (os.path.join(base, "__init__.py"),):
            if os.path.isfile(name):
                return Path(name)
        return None
    item = root.joinpath(*parts[:-1], parts[-1] + ".py") if parts else None
    if item is not None and item.is_file():
        return item
    init = root.joinpath(*parts, "__init__.py")
    return init if init.is_file() else None


def _matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` for :data:`_FROM` and :data:`_IMPORT`, tried only at the
    start of lines that name ``rootseed`` (where each of their matches starts: its module
    name is on its first line), not at every character of the file."""
    end = 0
    at = text.find("rootseed")
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        if start >= end and (m := pattern.match(text, start)) is not None:
            end = m.end()
            yield m
        following = text.find("\n", at)
        at = -1 if following < 0 else text.find("rootseed", following)


def _imported(text: str) -> set[str]:
    """The rootseed modules a module's source imports (``from a import b`` names ``a``
    and, when it is a module, ``a.b``)."""
    found = {m.group(1) for m in _matches(_IMPORT, text)}
    for m in _matches(_FROM, text):
        found.add(m.group(1))
        names = m.group(2).split("#")[0].strip("()\n ")
        for name in names.replace("\n", " ").split(","):
            name = name.split(" as ")[0].strip()
            if name.isidentifier():
                found.add(f"{m.group(1)}.{name}")
    return found


_Source = tuple[str, bytes, frozenset[str]]


def code_files(root: Traversable, modules: Iterable[str],
               read: dict[str, _Source | None] | None = None) -> dict[str, bytes]:
    """``modules`` of the rootseed package at ``root`` and every rootseed module they
    import, transitively: relative path → content. ``read``: modules already read from
    ``root`` (filled in; shared by the digests of the installed package, which read most
    of the same files)."""
    read = {} if read is None else read
    files: dict[str, bytes] = {}
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if module not in read:
            read[module] = _module_source(root, module)
        found = read[module]
        if found is None:
            continue  # ``from a import name``: a name, not a module
        rel, data, imported = found
        files[rel] = data
        todo.extend(imported - seen)
    return files


def _module_source(root: Traversable, module: str) -> _Source | None:
    """``module``'s file under ``root``: relative path, content, the rootseed modules it
    imports (None: not a module)."""
    item = _module_file(root, module)
    if item is None:
        return None
    data = item.read_bytes()
    rel = "/".join(module.split(".")[1:]) + ("/__init__.py" if item.name == "__init__.py"
                                            and not module.endswith("__init__") else ".py")
    return rel, data, frozenset(_imported(data.decode("utf-8")))


def builder_files(root: Traversable,
                  read: dict[str, _Source | None] | None = None) -> dict[str, bytes]:
    """The files of the rootseed package at ``root`` that decide outputs: relative path →
    content (see :data:`OUTPUT_MODULES`)."""
    files = code_files(root, OUTPUT_MODULES, read)
    for script in OUTPUT_SCRIPTS:
        item = root.joinpath(*script.split("/"))
        if item.is_file():
            files[script] = item.read_bytes()
    return files


def digest_files(files: dict[str, bytes]) -> str:
    """sha256 over ``files`` sorted by path, each path and content length-prefixed."""
    h = hashlib.sha256()
    for name, data in sorted(files.items()):
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return "sha256:" + h.hexdigest()


def _package_root() -> Traversable:
    """The installed rootseed package's files: its directory when it is one (what
    ``importlib.resources.files`` gives then, without loading importlib.resources at every
    start), else importlib.resources' view of it (a zipped install)."""
    import rootseed

    origin = rootseed.__spec__.origin if rootseed.__spec__ is not None else None
    if origin is not None and os.path.basename(origin) == "__init__.py" \
            and os.path.isfile(origin):
        return Path(origin).parent
    from importlib import resources

    return resources.files("rootseed")


#: The installed package's modules as read by :func:`code_digest` and
#: :func:`builder_digest` (once per process, as they are).
_installed: dict[str, _Source | None] = {}


@functools.cache
def code_digest(module: str) -> str:
    """The digest of ``module``'s code and every rootseed module it imports (e.g. an image
    exporter's, whose layouts are cached under it)."""
    return digest_files(code_files(_package_root(), (module,), _installed))


@functools.cache
def builder_digest() -> str:
    """The digest of the code that decides build outputs (:func:`builder_files`), computed
    once per process."""
    return digest_files(builder_files(_package_root(), _installed))


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

