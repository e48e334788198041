"""Red-team: host paths visible inside a RUN step through its own file descriptors.

The step's stdout/stderr were the log file itself, so ``readlink /proc/self/fd/1`` inside
the step printed the host path of the log (``/home/…/.cache/rootseed/logs/…``): a host
path a build could embed in its output, as it could mountinfo's (issue #12, item 7).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hostile import BUSYBOX, HostileTree
from rootseed.oci import unpack_image

pytestmark = pytest.mark.skipif(not BUSYBOX.is_file() or shutil.which("bwrap") is None,
                                reason="needs a static busybox and bubblewrap")


def test_step_fds_name_no_host_path(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("fds", "FROM evil/bootstrap-base\n"
                 "RUN readlink /proc/$$/fd/0 > /fd0; readlink /proc/$$/fd/1 > /fd1; "
                 "readlink /proc/$$/fd/2 > /fd2; echo to-the-log; echo err-to-the-log >&2\n")
    proc = tree.build("test-fds")
    assert proc.returncode == 0, proc.stderr
    rootfs = tmp_path / "unpacked"
    unpack_image(tree.out / "test-fds", rootfs)
    text = "".join((rootfs / f"fd{n}").read_text() for n in range(3))
    assert text.count("\n") == 3, text
    for host in {str(tmp_path), str(tmp_path.resolve()), str(tree.cache.resolve())}:
        assert host not in text, text
    assert ".log" not in text, text
    logs = "".join(p.read_text() for p in (tree.cache / "logs").rglob("*.log"))
    assert "to-the-log" in logs and "err-to-the-log" in logs  # the log still gets it all
