"""Test helpers: build a root filesystem with every kind of entry, and describe one."""

from __future__ import annotations

import os
import random
import stat
from pathlib import Path

LONG = "d" * 60 + "/" + "e" * 70 + "/" + "long-file-name-" * 5

# (kind, path, mode, payload) — payload: file content, symlink target or hardlink source
ENTRIES: list[tuple[str, str, int, str]] = [
    ("dir", "bin", 0o755, ""),
    ("file", "bin/tool", 0o755, "#!/bin/sh\necho tool\n"),
    ("link", "bin/tool-hard", 0, "bin/tool"),
    ("link", "bin/tool-hard2", 0, "bin/tool"),
    ("symlink", "bin/sh", 0, "tool"),
    ("symlink", "bin/abs", 0, "/bin/tool"),
    ("symlink", "bin/dangling", 0, "../nowhere/at/all"),
    ("file", "bin/su", 0o4755, "setuid\n"),
    ("file", "bin/wall", 0o2711, "setgid\n"),
    ("dir", "secret", 0o750, ""),
    ("file", "secret/key", 0o600, "k" * 5000),
    ("dir", "empty", 0o755, ""),
    ("dir", "sticky", 0o1777, ""),
    ("dir", "ro", 0o555, ""),
    ("file", "ro/inside", 0o444, "read only\n"),
    ("file", "zero-length", 0o644, ""),
    ("dir", "d" * 60, 0o755, ""),
    ("dir", "d" * 60 + "/" + "e" * 70, 0o755, ""),
    ("file", LONG, 0o644, "deep\n"),
    ("file", "ünïcødé-名前.txt", 0o644, "utf-8 name\n"),
    # no FIFO: images hold none (#20; refused by rootseed.oci.entries)
    ("dir", "a-b", 0o755, ""),
    ("dir", "a", 0o755, ""),
    ("file", "a/b", 0o644, "sort order\n"),
    ("file", "a-b/c", 0o644, "sort order\n"),
]


def make_tree(root: Path, *, seed: int = 0, umask: int = 0o022, owner: int | None = None,
              mtime_base: int = 1_700_000_000) -> Path:
    """Create ENTRIES under ``root``: same content for any seed; order, umask, mtimes,
    owners differ."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    old = os.umask(umask)
    try:
        # directories must exist before their contents, otherwise any order
        dirs = [e for e in ENTRIES if e[0] == "dir"]
        rest = [e for e in ENTRIES if e[0] != "dir"]
        rng.shuffle(rest)
        dirs.sort(key=lambda e: (e[1].count("/"), rng.random()))
        # hardlinks after their source
        rest.sort(key=lambda e: e[0] == "link")
        for kind, rel, _mode, payload in dirs + rest:
            p = root / rel
            if kind == "dir":
                p.mkdir()
            elif kind == "file":
                p.write_text(payload)
            elif kind == "link":
                os.link(root / payload, p)
            elif kind == "symlink":
                os.symlink(payload, p)
            elif kind == "fifo":
                os.mkfifo(p)
        for kind, rel, mode, _ in ENTRIES:
            if kind not in ("symlink", "link"):
                p = root / rel
                if owner is not None:
                    os.lchown(p, owner, owner)
                os.chmod(p, mode)
        for _kind, rel, _, _ in sorted(ENTRIES, key=lambda e: -e[1].count("/")):
            t = mtime_base + rng.randrange(10**6)
            os.utime(root / rel, (t, t), follow_symlinks=False)
    finally:
        os.umask(old)
    return root


def describe(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything that must survive a round trip: type, mode, content/target, link group."""
    out: dict[str, tuple[object, ...]] = {}
    groups: dict[int, list[str]] = {}
    files: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            st = os.lstat(p)
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo", mode)
            else:
                groups.setdefault(st.st_ino, []).append(rel)
                files[rel] = st.st_ino
                out[rel] = ("file", mode, p.read_bytes(), st.st_nlink)
    for rel, ino in files.items():
        out[rel] += (tuple(sorted(groups[ino])),)
    return out
