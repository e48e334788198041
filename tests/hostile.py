"""Helpers for the adversarial suite (tests/security/): host canaries, tiny hostile trees.

A canary is a file *outside* the tree, the cache and out/ that an attack aims at. Every
security test snapshots the canaries before the attack and checks after it that content,
mode, link count, inode and mtime are unchanged.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from clirun import Result
from clirun import rootseed as run_cli

BUSYBOX = Path("/usr/bin/busybox")
NAMESPACE = "evil"


@dataclass(frozen=True)
class Snapshot:
    content: bytes | None
    mode: int
    nlink: int
    ino: int
    mtime_ns: int


class Canaries:
    """Files and a directory on the "host", outside everything rootseed is given."""

    def __init__(self, base: Path) -> None:
        self.dir = base / "host"
        self.dir.mkdir(parents=True)
        self.secret = self.dir / "secret"  # a root-only file
        self.secret.write_bytes(b"host secret: must never reach an image\n")
        os.chmod(self.secret, 0o600)
        self.public = self.dir / "public.txt"
        self.public.write_bytes(b"host file\n")
        os.chmod(self.public, 0o644)
        self.subdir = self.dir / "etc"
        self.subdir.mkdir()
        (self.subdir / "passwd").write_bytes(b"root:x:0:0::/root:/bin/sh\n")
        self.before = self.snapshot()

    def paths(self) -> list[Path]:
        return [*sorted(self.dir.rglob("*")), self.dir]

    def snapshot(self) -> dict[Path, Snapshot]:
        snap = {}
        for p in self.paths():
            st = os.lstat(p)
            content = p.read_bytes() if p.is_file() and not p.is_symlink() else None
            snap[p] = Snapshot(content, st.st_mode, st.st_nlink, st.st_ino, st.st_mtime_ns)
        return snap

    def assert_unchanged(self) -> None:
        after = self.snapshot()
        assert after == self.before, "the attack changed files on the host"


def tar_bytes(members: Iterable[tuple[tarfile.TarInfo, bytes | None]], gz: bool = False
              ) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as t:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            else:
                t.addfile(info)
    return buf.getvalue()


def reg(name: str, data: bytes = b"x\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def link(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    return info, None


def special(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o644
    return info, None


def directory(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


class HostileTree:
    """A one-package tree ``evil/<stage>-<name>`` with a busybox base image available."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "tree"
        self.cache = base / "cache"
        self.out = base / "out"
        self.mirror = base / "mirror"
        self.mirror.mkdir(parents=True, exist_ok=True)
        (self.root).mkdir(parents=True, exist_ok=True)
        (self.root / "rootseed.toml").write_text(f'[tree]\nnamespace = "{NAMESPACE}"\n')

    def package(self, name: str, containerfile: str, *, files: dict[str, bytes] | None = None,
                sources: dict[str, bytes] | None = None, stage: str = "test") -> Path:
        d = self.root / stage / name
        d.mkdir(parents=True, exist_ok=True)
        toml = [f'[package]\nname = "{name}"\nversion = "1.0"\ndescription = "attack"\n'
                'license = "MIT"\n']
        for sid, data in (sources or {}).items():
            fname = f"{sid}-1.0.tar"
            (self.mirror / fname).write_bytes(data)
            # a version of its own, so StageX passes <ID>_SOURCE (targets.get_build_args)
            toml.append(f'[sources.{sid}]\nhash = "{hashlib.sha256(data).hexdigest()}"\n'
                        f'version = "1.0"\nfile = "{fname}"\nmirrors = ["https://invalid.example/{{file}}"]\n')
        (d / "package.toml").write_text("\n".join(toml))
        (d / "Containerfile").write_text(containerfile)
        for rel, data in (files or {}).items():
            (d / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / rel).write_bytes(data)
        return d

    def busybox_base(self) -> None:
        d = self.package("base", "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\n"
                         'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin"]\n'
                         "ENV PATH=/bin\n", stage="bootstrap")
        shutil.copy2(BUSYBOX, d / "busybox")

    def build(self, *names: str, extra: tuple[str, ...] = (), timeout: float = 300
              ) -> Result:
        return rootseed("build", *names, "--tree", str(self.root), "--cache-dir",
                        str(self.cache), "--out", str(self.out), "--mirror", str(self.mirror),
                        "--offline", *extra, timeout=timeout)


def rootseed(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> Result:
    """Run the CLI as a user would; never a traceback, never exit 70 (internal error)."""
    return run_cli(*args, timeout=timeout, env=env)
