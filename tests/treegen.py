"""Write small package trees for tests (StageX layout, our own content)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_package(root: Path, stage: str, name: str, toml: str, containerfile: str) -> Path:
    d = root / stage / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "package.toml").write_text(toml)
    (d / "Containerfile").write_text(containerfile)
    return d


def stagex_like_tree(root: Path) -> Path:
    """Several stages, subpackages, version_from and every placeholder; namespace stagex."""
    h = "a" * 64
    write_package(root, "bootstrap", "stage0", f'''
[package]
name = "stage0"
version = "1.6.0"
description = "seed to C"
license = "MIT"
platforms = ["linux/386"]

[sources.stage0]
hash = "{h}"
format = "tar.gz"
git_sha = "0123456789abcdef0123456789abcdef01234567"
file = "stage0-posix-{{version}}.{{format}}"
mirrors = ["https://example.org/stage0/{{version_major_minor}}/{{file}}"]
''', "FROM scratch\nCOPY --from=fetch . /\n")
    write_package(root, "bootstrap", "stage1", f'''
[package]
name = "stage1"
version = "1.2.3-r4"
description = "userland"
license = "GPL-3.0-or-later"

[sources.tcc]
hash = "{"b" * 64}"
version = "0.9.27"
mirrors = ["https://example.org/tcc-{{version_dash}}_{{version_under}}.tar.bz2"]

[sources.tcc_extra]
hash = "{"e" * 64}"
mirrors = ["https://example.org/tcc-extra-{{version_strip_suffix}}.tar.bz2"]
''', "FROM stagex/bootstrap-stage0 AS build\nFROM scratch\nCOPY --from=build / /\n")
    write_package(root, "core", "gcc", f'''
[package]
name = "gcc"
version = "13.1.0"
description = "compiler"
license = "GPL-3.0-or-later"
subpackages = ["gcc", "libstdcxx", "gcc-libs"]

[sources.gcc]
hash = "{"c" * 64}"
file = "gcc-{{version}}.tar.xz"
mirrors = ["https://ftp.example.org/gcc-{{version}}/{{file}}", "https://m2.example.org/{{file}}"]
''', "FROM stagex/bootstrap-stage1:latest AS package-gcc\nRUN true\n"
         "FROM scratch AS package-libstdcxx\nFROM scratch AS package-gcc-libs\n")
    write_package(root, "core", "gcc-cross", '''
[package]
name = "gcc-cross"
version_from = "core-gcc"
description = "cross compiler"
license = "GPL-3.0-or-later"
''', "FROM stagex/core-gcc-libs AS libs\nFROM stagex/bootstrap-stage1\n"
         "COPY --from=stagex/core-libstdcxx@sha256:" + "d" * 64 + " /a /a\nCOPY --from=libs /b /b\n")
    return root
