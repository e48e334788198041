"""What a warm ``rootseed build`` loads: nothing it does not use (issue 19's start-up).

Each module a command imports costs start-up time on every run, so a warm rebuild (all in
the cache, output not a terminal) must not load the heavy libraries it has no use for:
rich (progress lines are plain text there), the ``filelock`` package (rootseed locks with
``flock`` itself: :mod:`rootseed.filelocks`), the step runner (no step runs),
importlib.resources (the package's own files are read from its directory). Checked in a fresh interpreter with
``sys.modules`` after a real warm build of a small package. Time itself is measured by
``benchmarks/bench_startup.py``, not here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from buildtree import write

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")

#: Libraries a warm build off a terminal has no use for.
UNUSED = ("rich", "filelock", "ctypes", "zipfile")
#: Nor has it for these modules: the step runner (no step runs), the whole-tree builder (no
#: --all), importlib.resources (the package's own files are read from its directory).
UNUSED_MODULES = ("rootseed.sandbox.execute", "rootseed.sandbox.neutralroot",
                  "rootseed.engine.whole", "importlib.resources", "importlib.readers")

_RUN = """\
import json, sys
from rootseed.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
sys.stdout.flush()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _tree(root: Path) -> Path:
    tree = root / "packages"
    write(tree / "rootseed.toml", '[tree]\nnamespace = "rs"\n')
    d = tree / "core" / "hello"
    write(d / "package.toml", '[package]\nname = "hello"\nversion = "1.0"\n'
                              'description = "a file"\nlicense = "MIT"\n')
    write(d / "hello.txt", "hello\n")
    write(d / "Containerfile", "FROM scratch\nCOPY hello.txt /hello.txt\n")
    return tree


def _build(tmp_path: Path, tree: Path) -> tuple[str, set[str]]:
    """One ``rootseed build core-hello`` in a fresh interpreter: its stderr (progress lines)
    and the modules it had loaded at the end."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    r = subprocess.run(
        [sys.executable, "-c", _RUN, "build", "core-hello", "--tree", str(tree),
         "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--offline"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env, check=False,
        timeout=300)
    *lines, last = r.stderr.splitlines()
    result = json.loads(last)
    assert result["code"] in (0, None), r.stderr
    return "\n".join(lines), set(result["modules"])


def test_a_warm_build_loads_only_what_it_uses(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    _build(tmp_path, tree)  # cold: fills the cache
    shutil.rmtree(tmp_path / "out")
    progress, loaded = _build(tmp_path, tree)  # warm: a fresh out/, all from the cache
    assert "core-hello: cached sha256:" in progress
    assert (tmp_path / "out" / "core-hello" / "index.json").is_file()
    assert not {m for m in loaded if m.split(".")[0] in UNUSED}
    assert not loaded & set(UNUSED_MODULES)
