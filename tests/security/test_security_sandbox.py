"""The sandbox's other edges (issue #12, item 7): a per-step wall-clock limit, no host
paths in /proc/self/mountinfo, and a challenge that never rebuilds in the recorded second."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from hostile import BUSYBOX, Canaries, HostileTree, rootseed
from kinds import cli_error, raises_kind
from rootseed.challenge import leave_the_recorded_second
from rootseed.errors import ErrorKind
from rootseed.oci import unpack_image
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT, describe, parse_duration

needs_sandbox = pytest.mark.skipif(not BUSYBOX.is_file() or shutil.which("bwrap") is None,
                                   reason="needs a static busybox and bubblewrap")


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("6h", 21600.0), ("1h30m", 5400.0), ("45s", 45.0), ("2d", 172800.0),
    ("0", None), ("none", None), ("1.5m", 90.0)])
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "6x", "1h 30m", "-5", "6h5"])
def test_parse_duration_refuses(text: str) -> None:
    if text == "-5":
        assert parse_duration(text) is None  # non-positive: no limit
        return
    with raises_kind(ErrorKind.USAGE):
        parse_duration(text)


def test_default_step_timeout_is_generous() -> None:
    assert DEFAULT_STEP_TIMEOUT >= 6 * 3600 and describe(DEFAULT_STEP_TIMEOUT) == "6h"


@needs_sandbox
def test_a_step_past_the_timeout_is_killed_with_a_clear_message(tmp_path: Path) -> None:
    canaries = Canaries(tmp_path)
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("slow", "FROM evil/bootstrap-base\nRUN echo started; sleep 60; "
                 f"echo pwned > {canaries.dir}/late\n")
    start = time.monotonic()
    proc = tree.build("test-slow", extra=("--step-timeout", "3s", "--json"))
    elapsed = time.monotonic() - start
    error = cli_error(proc, ErrorKind.STEP_TIMEOUT, exit_code=1, line=2, step="RUN")
    assert "--step-timeout" in error["hint"]  # words: says what to do, for people
    assert elapsed < 50
    assert not (tree.out / "test-slow").exists()
    canaries.assert_unchanged()


@needs_sandbox
def test_a_bad_step_timeout_is_a_usage_error(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.package("a", "FROM scratch\n")
    proc = tree.build("test-a", extra=("--step-timeout", "soon", "--json"))
    cli_error(proc, ErrorKind.USAGE)


@needs_sandbox
def test_mountinfo_inside_a_step_shows_no_host_path(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("mi", "FROM evil/bootstrap-base\n"
                 "RUN cat /proc/self/mountinfo > /mountinfo\n"
                 "RUN <<EOF\n#!/bin/sh\ncat /proc/self/mountinfo > /mountinfo-heredoc\nEOF\n")
    proc = tree.build("test-mi")
    assert proc.returncode == 0, proc.stderr
    rootfs = tmp_path / "unpacked"
    unpack_image(tree.out / "test-mi", rootfs)
    for name in ("mountinfo", "mountinfo-heredoc"):
        text = (rootfs / name).read_text()
        assert text.strip()
        for host in {str(tmp_path), str(tmp_path.resolve()), str(tree.cache.resolve())}:
            assert host.lstrip("/") not in text, text
        assert "/work/" not in text and "stage-" not in text, text


def test_challenge_waits_past_the_recorded_second(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{}")
    os.utime(tmp_path / "index.json", (1000.25, 1000.25))
    clock = [1000.5]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    assert leave_the_recorded_second(tmp_path, now=lambda: clock[0], sleep=sleep) == 0.5
    assert clock[0] >= 1001.0 and slept == [0.5]
    assert leave_the_recorded_second(tmp_path, now=lambda: 1002.0, sleep=sleep) == 0.0
    assert leave_the_recorded_second(None) == 0.0


@needs_sandbox
def test_challenge_catches_a_build_that_embeds_the_time(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.busybox_base()
    tree.package("clock", "FROM evil/bootstrap-base\nRUN date +%s > /built-at\n")
    proc = tree.build("test-clock")
    assert proc.returncode == 0, proc.stderr
    proc = rootseed("challenge", "test-clock", "--tree", str(tree.root), "--cache-dir",
                    str(tree.cache), "--out", str(tree.out), "--mirror", str(tree.mirror),
                    "--offline", "--json")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "differs"
    assert [d["path"] for d in report["differences"]] == ["built-at"]


def _busybox_root(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "cat", "echo", "grep"):
        os.symlink("busybox", root / "bin" / applet)
    return root


@needs_sandbox
@pytest.mark.parametrize("how", ["neutral", "no-unshare", "helper-fails"])
def test_sandbox_root_neutral_or_fallback(tmp_path: Path, how: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from rootseed.sandbox import SandboxSpec, execute, neutralroot, run

    monkeypatch.setattr(execute, "_NEUTRAL_ROOT_BROKEN", False)
    if how == "no-unshare":
        monkeypatch.setattr(execute, "wrap", lambda *a: None)
    elif how == "helper-fails":
        monkeypatch.setattr(execute, "wrap",
                            lambda argv, s, r: ["/nonexistent-unshare", *argv])
    root = _busybox_root(tmp_path / "rootfs")
    log = tmp_path / "log"
    spec = SandboxSpec(root, ["sh", "-c", "cat /proc/self/mountinfo; echo made > /made"],
                       {"PATH": "/bin"}, data_files=[(b"#!/bin/sh\necho data\n",
                                                      "/dev/pipes/x", 0o755)])
    assert run(spec, log=log) == 0
    assert (root / "made").read_text() == "made\n"
    assert not list(tmp_path.glob("rootfs/.sandbox-*")) and not list(
        tmp_path.glob(".sandbox-*"))  # the scratch dir is gone
    text = log.read_text()
    assert "nonexistent" not in text
    first = text.splitlines()[0]
    if how == "neutral":
        assert " / / " in first and "overlay" in first and str(tmp_path) not in text
        assert f"lowerdir=./lower,upperdir=../{root.name}" in first
    else:
        assert str(root) in first  # the plain bind: the documented fallback
    assert run(SandboxSpec(root, ["/dev/pipes/x"], {"PATH": "/bin"},
                           data_files=[(b"#!/bin/sh\necho data\n", "/dev/pipes/x", 0o755)]),
               log=log) == 0
    assert log.read_text().endswith("data\n")
    assert neutralroot.MOUNT_POINT == "./mnt"
