"""Copy-on-write snapshots: overlayfs in a user namespace, layers, OCI whiteouts."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from rootseed.engine.layers import finish_layer, is_opaque, layer_digest, write_diff_tar
from rootseed.sandbox import SandboxSpec
from rootseed.sandbox import run as sandbox_run
from rootseed.sandbox.overlay import OverlayNamespace, probe
from rootseed.sandbox.spec import EnteredRoot

BUSYBOX = Path("/usr/bin/busybox")
HOLDER = Path(__file__).resolve().parents[1] / "src/rootseed/sandbox/_overlay_holder.py"
needs_tools = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None or shutil.which("unshare") is None,
    reason="needs busybox, bubblewrap and util-linux")


def _lower(base: Path) -> Path:
    low = base / "low"
    (low / "d").mkdir(parents=True)
    (low / "d" / "f").write_text("a")
    (low / "e").mkdir()
    (low / "e" / "g").write_text("g")
    (low / "top").write_text("t")
    shutil.copy(BUSYBOX, low / "busybox")
    return low


def _step(ns: OverlayNamespace, base: Path, low: Path, script: str) -> Path:
    for name in ("up", "wk", "m"):
        (base / name).mkdir()
    ns.mount(base / "m", [low], base / "up", base / "wk")
    try:
        spec = SandboxSpec(rootfs=ns.view(base / "m"),
                           entered=EnteredRoot(tuple(ns.enter()), base / "m"), argv=["/busybox", "sh", "-c", script], env={})
        assert sandbox_run(spec, log=base / "log") == 0, (base / "log").read_text()
    finally:
        ns.umount(base / "m")
    finish_layer(base / "up")
    return base / "up"


@needs_tools
def test_a_step_writes_only_its_changes_and_whiteouts_become_oci(tmp_path: Path) -> None:
    low = _lower(tmp_path)
    before = layer_digest(low)
    with probe(tmp_path / "probe") as ns:
        upper = _step(ns, tmp_path, low,
                      "/busybox rm /top && /busybox rm -r /d && /busybox mkdir /d && "
                      "echo n > /d/n && echo x >> /e/g && echo new > /new")
    assert layer_digest(low) == before  # the lower layer is untouched
    names = sorted(p.relative_to(upper).as_posix() for p in upper.rglob("*"))
    assert names == ["d", "d/n", "e", "e/g", "new", "top"]  # no /dev, /proc, /tmp stubs
    assert (upper / "top").is_char_device() and os.stat(upper / "top").st_rdev == 0
    assert is_opaque(upper / "d") and not is_opaque(upper / "e")
    assert all(not x.startswith("user.overlay.") or x == "user.overlay.opaque"
               for p in [upper, *upper.rglob("*")] for x in os.listxattr(p))
    buf = io.BytesIO()
    write_diff_tar(upper, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == [".wh.top", "d", "d/.wh..wh..opq", "d/n", "e", "e/g", "new"]
    assert all(m.uid == 0 and m.mtime <= 1 for m in members.values())
    # the digest covers whiteouts and opaqueness: removing the opaque mark changes it
    digest = layer_digest(upper)
    os.removexattr(upper / "d", "user.overlay.opaque")
    assert layer_digest(upper) != digest


@needs_tools
def test_the_holder_works_for_an_unprivileged_user(tmp_path: Path) -> None:
    """What a normal user gets (run as nobody with the system python; root only)."""
    python = Path("/usr/bin/python3")
    if os.geteuid() != 0 or not python.is_file() or shutil.which("setpriv") is None:
        pytest.skip("needs root (to become nobody), /usr/bin/python3 and setpriv")
    base = Path(tempfile.mkdtemp(prefix="rootseed-nobody-"))  # tmp_path's parents are 0700
    try:
        _as_nobody(base, python)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(base: Path, python: Path) -> None:
    low = base / "low"
    (low / "d").mkdir(parents=True)
    (low / "d" / "f").write_text("a")
    for name in ("up", "wk", "m"):
        (base / name).mkdir()
    os.chmod(base, 0o755)
    shutil.copy(HOLDER, base / "holder.py")
    subprocess.run(["chown", "-R", "65534:65534", str(base)], check=True)
    req = {"op": "mount", "target": str(base / "m"), "lower": [str(low)],
           "upper": str(base / "up"), "work": str(base / "wk")}
    script = (f"{json.dumps(req)}\n")
    proc = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "--user",
         "--map-root-user", "--mount", "--", str(python), "-I", "-S", str(base / "holder.py")],
        input=script, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0]) == {"ok": True}
    bad = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "unshare", "--user",
         "--map-root-user", "--mount", "--", str(python), "-I", "-S", str(base / "holder.py")],
        input=json.dumps({**req, "lower": [str(base / "missing")]}) + "\n",
        capture_output=True, text=True, timeout=30, check=False)
    answer = json.loads(bad.stdout.splitlines()[0])
    assert answer["ok"] is False and answer["errno"] != 0
