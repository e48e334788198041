"""Dataclass methods compiled once, not at every start: their code kept beside the .pyc files.

``@dataclass`` writes each class's methods (``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, a frozen class's ``__setattr__``/``__delattr__``) as Python source and
compiles it with ``exec`` when the class is made, at import: ~570 compilations for what
``rootseed build`` imports, 40% of its start-up (Python 3.13 compiles a class's methods at
once; 3.11 does not). Compiling is a pure function of that source text, so this module
keeps the compiled code, as Python keeps a module's in ``__pycache__/*.pyc``: in
``rootseed/__pycache__/dataclasses.<command>.<python tag>.marshal``, a mapping from the
exact source text to its code object. ``dataclasses`` then executes the code compiling that
text would give (a text not in it is compiled as before, and added).

What is trusted here is what Python trusts already: whoever can write the package's
``__pycache__`` can replace its ``.pyc`` files. The file is read only if it is a regular
file that this user or root owns, not writable by others and not hardlinked (as a careful
.pyc reader would want), kept where Python keeps the package's .pyc files (under
``sys.pycache_prefix`` when that is set); one of another Python (its bytecode magic),
unreadable or not a mapping of text to code objects is ignored; it is written
(atomically, never through a link) only when Python writes byte-code
(``PYTHONDONTWRITEBYTECODE`` unset) and something was compiled.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import marshal
import os
import stat
import sys
import types
from importlib.util import MAGIC_NUMBER, cache_from_source
from typing import Any

#: The file starts with this, then the SHA-256 of the rest, then the marshalled mapping:
#: another Python's is not read, and a damaged one (a crash after the rename, a bad disk)
#: is never given to ``marshal.loads``, which can take seconds on some damaged input.
HEADER = b"rootseed dataclass code\0" + MAGIC_NUMBER
#: The most texts kept in one file: beyond it, only those this run used (old versions'
#: texts do not pile up; ~570 for ``rootseed build``).
MAX_TEXTS = 2000
#: Larger than this is not a file this module wrote (~600 KiB for ``rootseed build``).
MAX_BYTES = 32 << 20


def cache_file(command: str) -> str | None:
    """Where the code is kept for ``command`` (one file per command module: each loads the
    code of its own classes only) and this Python (None: no byte-code caching)."""
    tag = sys.implementation.cache_tag
    if tag is None or not command.isidentifier():
        return None
    # where Python keeps this package's .pyc files (under ``sys.pycache_prefix`` when one
    # is set: the package's own __pycache__ is then read by no one else)
    pyc = cache_from_source(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         "__init__.py"))
    return os.path.join(os.path.dirname(pyc), f"dataclasses.{command}.{tag}.marshal")


def _read(path: str) -> dict[str, types.CodeType]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid not in (0, os.geteuid())
                or st.st_mode & 0o022 or st.st_size > MAX_BYTES
                or st.st_nlink != 1):  # written by rename of a fresh file: never a hardlink
            return {}
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError:
        return {}
    finally:
        os.close(fd)
    payload = unpack(data)
    if payload is None:
        return {}
    try:
        found = marshal.loads(payload)
    except Exception:  # damaged: ValueError, EOFError, TypeError, SystemError, ...
        return {}
    if type(found) is not dict or not all(type(k) is str and type(v) is types.CodeType
                                          for k, v in found.items()):
        return {}
    return found


def pack(payload: bytes) -> bytes:
    """The file's bytes for a marshalled ``payload``."""
    return HEADER + hashlib.sha256(payload).digest() + payload


def unpack(data: bytes) -> bytes | None:
    """The payload of a file's bytes (None: another Python's, or damaged)."""
    if not data.startswith(HEADER):
        return None
    digest, payload = data[len(HEADER):len(HEADER) + 32], data[len(HEADER) + 32:]
    return payload if hashlib.sha256(payload).digest() == digest else None


def _write(path: str, texts: dict[str, types.CodeType]) -> None:
    directory = os.path.dirname(path)
    tmp = os.path.join(directory, f".dataclasses.{os.getpid()}.tmp")
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644)
    except OSError:
        return  # a package this user cannot write: compiled at every start, as before
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pack(marshal.dumps(texts)))
        os.replace(tmp, path)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class CodeCache:
    """The compiled code of dataclass method texts, read from ``path`` when first needed."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.known: dict[str, types.CodeType] | None = None
        self.added: dict[str, types.CodeType] = {}
        self.used: set[str] = set()  # the known texts this run used

    def code(self, text: str) -> types.CodeType:
        """What ``compile(text, "<string>", "exec")`` gives (as ``exec(text)`` compiles
        it inside ``dataclasses``, which imports no ``__future__`` features)."""
        if self.known is None:
            self.known = _read(self.path)
        found = self.known.get(text)
        if found is not None:
            self.used.add(text)
        else:
            found = self.added.get(text)
        if found is None:
            found = compile(text, "<string>", "exec", dont_inherit=True)
            self.added[text] = found
        return found

    def exec(self, source: Any, globals: dict[str, Any] | None = None,
             locals: dict[str, Any] | None = None) -> None:
        """``exec`` as ``dataclasses`` calls it, with the text's kept code."""
        if type(source) is str:
            source = self.code(source)
        exec(source, globals, locals)

    def save(self) -> None:
        """Keep what was compiled in this run (nothing to do when nothing was)."""
        if not self.added or sys.dont_write_bytecode:
            return
        known = self.known or {}
        if len(known) + len(self.added) > MAX_TEXTS:
            known = {text: known[text] for text in self.used}
        texts = {**known, **self.added}
        _write(self.path, texts)


def install(command: str) -> None:
    """Make ``dataclasses`` use the code kept for ``command`` (the CLI's module that is about
    to be imported); once per process, written back at exit."""
    import dataclasses

    if isinstance(getattr(vars(dataclasses).get("exec"), "__self__", None), CodeCache):
        return
    path = cache_file(command)
    if path is None:
        return
    cache = CodeCache(path)
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]
    atexit.register(cache.save)
