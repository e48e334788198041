"""Opt-in: crosscheck the real bootstrap-stage0 chain (needs the upstream sources).

Set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed>. A real stage0 build takes
minutes; ROOTSEED_CROSSCHECK_CACHE=<dir> reuses a cache directory across runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rootseed import shipped

TREE = shipped.packages()


@pytest.mark.mirror
def test_bootstrap_then_crosscheck_stage0(tmp_path: Path, stage0_cache: Path) -> None:
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> to "
                    "crosscheck bootstrap-stage0 for real")
    cache = os.environ.get("ROOTSEED_CROSSCHECK_CACHE") or str(stage0_cache)
    common = ["--tree", str(TREE), "--mirror", mirror, "--offline", "--cache-dir", cache,
              "--out", str(tmp_path / "out")]
    r = subprocess.run([sys.executable, "-m", "rootseed", "bootstrap", *common, "--json"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = json.loads(r.stdout)["crosscheck"]
    assert lines[0]["seed"] and lines[0]["identical"]
    assert lines[0]["summary"] == "hex0-seed equals hex0(hex0_x86.hex0) computed in Python"
    assert all(line["identical"] for line in lines)

    r = subprocess.run([sys.executable, "-m", "rootseed", "crosscheck", "bootstrap-stage0",
                        *common, "--json"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    data = json.loads(r.stdout)
    checks = data["checks"]
    assert data["ok"] and data["counts"]["different"] == 0 and data["counts"]["error"] == 0
    covered = [c for c in checks if c["status"] != "not covered"]
    assert all(c["status"] == "identical" for c in covered)
    seed = [c for c in checks if c["seed"]]
    assert len(seed) == 1 and seed[0]["chain_size"] == 181
    assert seed[0]["artifact"] == "/stage0/bootstrap-seeds/POSIX/x86/hex0-seed"
    done = {c["artifact"].rsplit("/", 1)[1] for c in covered}
    # the final tools the Python M1/hex2 re-link, and the whole seed-to-M2 path
    assert {"hex0", "hex1", "hex2-0", "catm", "M0", "cc_x86", "M2", "blood-elf-0", "M1-0",
            "hex2-1", "M1", "hex2", "kaem", "M2-Mesoplanet", "blood-elf", "get_machine",
            "M2-Planet"} <= done
    # M2-Mesoplanet reruns: the Python blood-elf/M1/hex2 re-link every extra tool
    extra = {"sha256sum", "match", "mkdir", "untar", "ungz", "unbz2", "unxz", "catm", "cp",
             "chmod", "rm", "replace", "wrap"}
    linked = {c["artifact"].rsplit("/", 1)[1] for c in covered
              if c["stage"].startswith("extra-") and c["tool"] == "hex2"}
    assert linked == extra
    assert sum(1 for c in covered if c["stage"].startswith("extra-")) == 3 * len(extra)
