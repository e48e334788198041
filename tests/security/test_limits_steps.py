"""Red-team: a RUN step that eats the machine is stopped by a limit that says which.

On main before this change nothing bounded a step but its wall clock: one step ran 1,505
processes, wrote 1 GiB into its /tmp (a tmpfs sized at half of RAM), wrote a 3.4 GB log
in 5 s, and grew files without bound. Each case here runs with a small limit given on the
command line (the defaults are far above a real build) and checks the message names the
limit, the step's output is not published, and the host is unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hostile import Canaries, HostileTree
from kinds import cli_error
from rootseed.errors import ErrorKind
from rootseed.sandbox.cgroup import StepGroup
from rootseed.sandbox.limits import StepLimits


def _has_cgroup() -> bool:
    group = StepGroup.create(StepLimits(processes=10, memory=1 << 30))
    if group is None:
        return False
    group.remove()
    return True


def _tree(tmp_path: Path, script: str) -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("eat", "FROM evil/bootstrap-base\nRUN <<EOF\n" + script + "\nEOF\n")
    return tree


def _attack(tmp_path: Path, script: str, *options: str, snapshots: str = "auto"
            ) -> tuple[HostileTree, dict[str, Any]]:
    """The tree and the build's --json error (which says which limit stopped the step)."""
    canaries = Canaries(tmp_path)
    tree = _tree(tmp_path, script)
    proc = tree.build("test-eat", extra=("--snapshots", snapshots, *options, "--json"),
                      timeout=240)
    assert proc.returncode == 1, proc.stderr
    error: dict[str, Any] = json.loads(proc.stdout)["error"]
    assert not (tree.out / "test-eat").exists()
    assert not list((tree.cache / "actions").glob(".tmp-*")), "a work directory was left"
    canaries.assert_unchanged()
    return tree, error


def test_fork_bomb_hits_the_process_limit(tmp_path: Path) -> None:
    _, error = _attack(tmp_path, "i=0\nwhile [ $i -lt 2000 ]; do sleep 60 & i=$((i+1)); done\n"
                       "wait", "--max-processes", "64", "--step-timeout", "120")
    if _has_cgroup() or os.getuid() != 0:
        assert (error["kind"], error.get("limit")) == ("step-limit", "max-processes"), error
    assert error["kind"] != "step-timeout"  # stopped by the limit, not after 120 s


def test_filling_tmp_hits_the_tmp_limit(tmp_path: Path) -> None:
    _, error = _attack(tmp_path, "dd if=/dev/zero of=/tmp/big bs=1M count=200 || "
                        "{ df /tmp; sleep 1; exit 1; }", "--max-tmp", "32M")
    assert (error["kind"], error.get("limit")) == ("step-limit", "max-tmp"), error


def test_a_flood_of_output_hits_the_log_limit(tmp_path: Path) -> None:
    tree, error = _attack(tmp_path, "yes 0123456789abcdef | head -c 400000000\nsleep 5",
                           "--max-log", "8M")
    assert (error["kind"], error.get("limit")) == ("step-limit", "max-log"), error
    logs = list((tree.cache / "logs").rglob("*.log"))
    assert logs and max(p.stat().st_size for p in logs) <= 8 << 20


def test_one_big_file_hits_the_disk_limit(tmp_path: Path) -> None:
    _, error = _attack(tmp_path, "head -c 100000000 /dev/zero > /big", "--max-disk", "16M")
    assert (error["kind"], error.get("limit")) == ("step-limit", "max-disk"), error


def test_many_files_hit_the_disk_limit(tmp_path: Path) -> None:
    _, error = _attack(tmp_path, "for i in 1 2 3 4 5 6 7 8; do head -c 4000000 /dev/zero "
                        "> /f$i; done", "--max-disk", "16M", snapshots="overlay")
    assert (error["kind"], error.get("limit")) == ("step-limit", "max-disk"), error


def test_memory_hog_hits_the_memory_limit(tmp_path: Path) -> None:
    if not _has_cgroup():
        pytest.skip("no cgroup for steps here: memory is bounded per process (RLIMIT_DATA)")
    _, error = _attack(tmp_path, "awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
                        "--max-memory", "64M")
    assert (error["kind"], error.get("limit")) == ("step-limit", "max-memory"), error


def test_limits_are_parsed_with_clear_errors(tmp_path: Path) -> None:
    tree = _tree(tmp_path, "true")
    for option, value in (("--max-memory", "lots"), ("--max-processes", "1.5"),
                          ("--max-disk", "1e400")):
        proc = tree.build("test-eat", extra=(option, value, "--json"))
        error = cli_error(proc, ErrorKind.USAGE, exit_code=2)
        assert option in error["message"]  # words: names the option, for people


def test_limits_do_not_change_what_a_step_makes(tmp_path: Path) -> None:
    """Same image digest with the defaults, with tight limits the step stays within, and
    with none: limits are not part of any cache key or output."""
    digests = set()
    for n, options in enumerate((
            (), ("--max-processes", "32", "--max-memory", "256M", "--max-tmp", "8M",
                 "--max-log", "1M", "--max-disk", "32M"),
            ("--max-processes", "0", "--max-memory", "0", "--max-tmp", "0", "--max-log", "0",
             "--max-disk", "0"))):
        tree = _tree(tmp_path / str(n), "echo made > /made; head -c 1000 /dev/zero > /tmp/x")
        proc = tree.build("test-eat", extra=options)
        assert proc.returncode == 0, proc.stderr
        digests.add(proc.stdout.split()[-3])
    assert len(digests) == 1, digests
