"""A fast, unforgeable "unchanged since verified" check for cache entries.

Re-hashing a 300 MB layer on every build costs seconds. After an entry's content was
hashed and found equal to its recorded digest (or just written), a *seal* is stored
beside it: a fingerprint of every entry's ``lstat`` (inode, size, mode, mtime and ctime
in nanoseconds) plus the digest, authenticated with HMAC-SHA256 under a key that lives
outside the cache (``$ROOTSEED_SEAL_KEY`` or the user's state dir, mode 0600). Next time,
a matching seal stands for the full hash: any change to a file's content or metadata,
a rename, a replaced file, a copy of the cache to elsewhere changes a ctime or an inode
(ctime cannot be set by a process: only the kernel's clock writes it) and falls back to
the full hash, which reseals on success. Someone who can write the cache but not read the
key cannot make a seal for altered content. ``ROOTSEED_CACHE_CHECK=full`` always hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path

import platformdirs

from rootseed import safefs

#: A seal is a few hundred bytes; anything larger is not one (a link to /dev/zero, ...).
MAX_SEAL = 4096


def key_path() -> Path:
    env = os.environ.get("ROOTSEED_SEAL_KEY")
    return Path(env) if env else Path(platformdirs.user_state_dir("rootseed")) / "cache-seal.key"


def load_key() -> bytes | None:
    """The sealing key (made on first use); None when it cannot be kept privately."""
    path = key_path()
    try:
        st = os.lstat(path)
        if st.st_uid != os.geteuid() or st.st_mode & 0o077 or not os.path.isfile(path):
            return None  # not ours or not private: seals are not trusted
        data = path.read_bytes()
        return data if len(data) >= 32 else None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # never replace a key another process just made
        tmp.unlink()
        return load_key()
    except OSError:
        return None


def _stat_line(rel: bytes, st: os.stat_result) -> bytes:
    return rel + b"\0" + (f"{st.st_ino}:{st.st_size}:{st.st_mode}:{st.st_mtime_ns}:"
                          f"{st.st_ctime_ns}:{st.st_nlink}\n").encode()


def fingerprint(root: Path) -> str:
    """sha256 over every entry's path and lstat (depth first, names in byte order)."""
    h = hashlib.sha256()
    top = os.fsencode(root)
    h.update(_stat_line(b"", os.lstat(top)))
    todo: list[bytes] = [b""]
    while todo:
        rel = todo.pop()
        with os.scandir(top + b"/" + rel if rel else top) as it:
            entries = sorted(((e.name, e.stat(follow_symlinks=False)) for e in it),
                             reverse=True)
        dirs: list[bytes] = []
        for name, st in reversed(entries):
            path = rel + b"/" + name if rel else name
            h.update(_stat_line(path, st))
            if stat.S_ISDIR(st.st_mode):
                dirs.append(path)
        todo.extend(reversed(dirs))
    return h.hexdigest()


def _seal_file(root: Path, store: Path | None) -> Path:
    """``<root>.seal`` beside a cache entry, or a file in ``store`` (for trees whose
    parent must not gain files, such as out/)."""
    if store is None:
        return root.with_name(root.name + ".seal")
    return store / (hashlib.sha256(os.fsencode(root)).hexdigest()[:40] + ".seal")


def _mac(key: bytes, root: Path, digest: str, print_: str) -> str:
    return hmac.new(key, f"{root}\0{digest}\0{print_}".encode(), hashlib.sha256).hexdigest()


def seal(root: Path, digest: str, key: bytes | None, store: Path | None = None) -> None:
    """Record that ``root`` holds ``digest`` now (best effort)."""
    if key is None:
        return
    try:
        print_ = fingerprint(root)
        target = _seal_file(root, store)
        base = target.parent.parent if store is not None else target.parent
        safefs.write_atomic(base, target, json.dumps(
            {"digest": digest, "fingerprint": print_,
             "mac": _mac(key, root, digest, print_)}).encode())
    except (OSError, safefs.UnsafePath):
        pass


def sealed(root: Path, digest: str, key: bytes | None, store: Path | None = None) -> bool:
    """True when a valid seal says ``root`` still holds ``digest`` (no content read)."""
    if key is None or os.environ.get("ROOTSEED_CACHE_CHECK") == "full":
        return False
    try:
        target = _seal_file(root, store)
        base = target.parent.parent if store is not None else target.parent
        data = safefs.read_json(base, target, MAX_SEAL)
        if data.get("digest") != digest:
            return False
        print_ = fingerprint(root)
    except (OSError, ValueError, AttributeError, safefs.UnsafePath):
        return False
    return (print_ == data.get("fingerprint")
            and hmac.compare_digest(str(data.get("mac")), _mac(key, root, digest, print_)))
