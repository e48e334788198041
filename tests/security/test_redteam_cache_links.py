"""Red-team (#20): a cache or ``out/`` that someone else wrote, with links planted in it.

Each attack plants a symlink (to a host file or directory, to ``/dev/zero``, to an endless
``/proc`` file) or a FIFO where rootseed keeps its own files: step logs, the log
directory of a package, a cache area pruned by ``cache prune``, ``out/<pkg>`` and the temp
name ``challenge`` used, a source-cache entry, cache records and seals. Each ends with
the host canaries unchanged and either a normal result (the planted thing replaced, never
followed) or one clear message naming it (exit != 0, no traceback). Processes run with
an address-space limit, so a record read without a bound fails here instead of eating
the machine.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from hostile import BUSYBOX, Canaries, HostileTree, rootseed
from kinds import cli_error
from rootseed.errors import ErrorKind

LIMIT_AS = 3 << 30  # a build needs far less; reading /dev/zero into memory hits it


def limited(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI under an address-space limit and a timeout (see the module docstring)."""
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))

    proc = subprocess.run([sys.executable, "-m", "rootseed", *args], capture_output=True,
                          text=True, check=False, timeout=timeout, preexec_fn=cap)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode != 70, proc.stderr
    return proc


def run_tree(tmp_path: Path) -> HostileTree:
    """A one-RUN package (busybox copied in, exec form: no base image needed)."""
    tree = HostileTree(tmp_path)
    d = tree.package("runs", "FROM scratch\nCOPY --chmod=0755 busybox /bin/busybox\n"
                     'RUN ["/bin/busybox", "sh", "-c", "echo step output; '
                     '/bin/busybox mkdir -p /out; echo x > /out/x"]\n')
    shutil.copy2(BUSYBOX, d / "busybox")
    return tree


def copy_tree(tmp_path: Path, data: bytes = b"data\n") -> HostileTree:
    tree = HostileTree(tmp_path)
    tree.package("plain", "FROM scratch\nCOPY f /f\n", files={"f": data})
    return tree


def build(tree: HostileTree, *extra: str) -> subprocess.CompletedProcess[str]:
    return limited("build", *extra, "--tree", str(tree.root), "--cache-dir", str(tree.cache),
                   "--out", str(tree.out), "--mirror", str(tree.mirror), "--offline")


# -- logs ----------------------------------------------------------------------------------

def test_step_log_planted_as_a_link_to_a_host_file(tmp_path: Path) -> None:
    tree = run_tree(tmp_path)
    proc = build(tree, "test-runs")
    assert proc.returncode == 0, proc.stderr
    [log] = (tree.cache / "logs" / "test-runs").glob("*.log")
    host = Canaries(tmp_path)
    log.unlink()
    log.symlink_to(host.public)
    proc = build(tree, "test-runs", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    host.assert_unchanged()  # before: the host file was truncated and got the step output
    assert not log.is_symlink() and b"step output" in log.read_bytes()


def test_log_directory_of_a_package_linked_to_a_host_dir(tmp_path: Path) -> None:
    tree = run_tree(tmp_path)
    host = Canaries(tmp_path)
    (tree.cache / "logs").mkdir(parents=True)
    os.chmod(tree.cache, 0o700)
    (tree.cache / "logs" / "test-runs").symlink_to(host.dir)
    proc = build(tree, "test-runs", "--json")
    host.assert_unchanged()  # before: the step log was written into the host directory
    assert not list(host.dir.glob("*.log"))
    error = cli_error(proc, ErrorKind.REFUSED, exit_code=1, problem="LINK")
    assert error["path"] == str(tree.cache / "logs" / "test-runs")


# -- cache prune -----------------------------------------------------------------------------

def _prune(cache: Path) -> subprocess.CompletedProcess[str]:
    return limited("cache", "prune", "--keep-days", "0", "--cache-dir", str(cache), "--json")


def test_prune_with_the_logs_area_linked_to_a_host_dir(tmp_path: Path) -> None:
    host = Canaries(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "logs").symlink_to(host.dir)
    proc = _prune(cache)
    host.assert_unchanged()  # before: every file of the host directory was deleted
    error = cli_error(proc, ErrorKind.REFUSED, exit_code=1, problem="LINK")
    assert error["path"] == str(cache / "logs")


def test_prune_with_the_source_area_linked_to_a_host_dir(tmp_path: Path) -> None:
    host = Canaries(tmp_path)
    cache = tmp_path / "cache"
    (cache / "sources").mkdir(parents=True)
    os.chmod(cache, 0o700)
    (cache / "sources" / "sha256").symlink_to(host.dir)
    proc = _prune(cache)
    host.assert_unchanged()
    error = cli_error(proc, ErrorKind.REFUSED, exit_code=1, problem="LINK")
    assert error["path"] == str(cache / "sources" / "sha256")


def test_prune_removes_a_linked_entry_as_a_link(tmp_path: Path) -> None:
    host = Canaries(tmp_path)
    cache = tmp_path / "cache"
    (cache / "logs").mkdir(parents=True)
    os.chmod(cache, 0o700)
    (cache / "logs" / "pkg").symlink_to(host.dir)
    (cache / "actions").mkdir()
    (cache / "actions" / "k").symlink_to(host.subdir)
    proc = _prune(cache)
    assert proc.returncode == 0, proc.stderr
    host.assert_unchanged()
    assert not os.path.lexists(cache / "logs" / "pkg")
    assert not os.path.lexists(cache / "actions" / "k")


# -- challenge ---------------------------------------------------------------------------------

def _challenge(tree: HostileTree) -> subprocess.CompletedProcess[str]:
    return limited("challenge", "test-plain", "--tree", str(tree.root), "--cache-dir",
                   str(tree.cache), "--out", str(tree.out), "--mirror", str(tree.mirror),
                   "--offline", timeout=300)


def test_challenge_json_through_a_planted_temp_link(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    assert build(tree, "test-plain").returncode == 0
    host = Canaries(tmp_path)
    (tree.out / "test-plain" / ".challenge.json.tmp").symlink_to(host.public)
    proc = _challenge(tree)
    assert proc.returncode == 0, proc.stderr
    host.assert_unchanged()  # before: the host file got the challenge result
    written = tree.out / "test-plain" / "challenge.json"
    assert not written.is_symlink() and b'"identical"' in written.read_bytes()


def test_challenge_json_through_a_linked_out_package(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    assert build(tree, "test-plain").returncode == 0
    host = Canaries(tmp_path)
    shutil.move(str(tree.out / "test-plain"), host.dir / "layout")
    (tree.out / "test-plain").symlink_to(host.dir / "layout")
    host.before = host.snapshot()
    proc = _challenge(tree)
    host.assert_unchanged()  # before: challenge.json was written into the host directory
    assert not (host.dir / "layout" / "challenge.json").exists()
    # words: a warning for people (the challenge itself succeeds; warnings have no kind)
    assert "challenge.json not written" in proc.stderr and "symbolic link" in proc.stderr


# -- source cache ---------------------------------------------------------------------------

def test_source_cache_entry_linked_to_an_endless_proc_file(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    data = b"source\n"
    tree.package("src", "FROM scratch\nCOPY --from=fetch . /src\n", sources={"s": data})
    entry = tree.cache / "sources" / "sha256" / hashlib.sha256(data).hexdigest()
    entry.parent.mkdir(parents=True)
    os.chmod(tree.cache, 0o700)
    entry.symlink_to("/proc/self/pagemap")  # a regular file that reads for ~256 GB
    proc = limited("fetch", "test-src", "--tree", str(tree.root), "--cache-dir",
                   str(tree.cache), "--mirror", str(tree.mirror), "--offline", timeout=60)
    assert proc.returncode == 0, proc.stderr  # before: read until the timeout
    assert not entry.is_symlink() and entry.read_bytes() == data


def test_source_cache_area_linked_to_a_host_dir(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.package("src", "FROM scratch\nCOPY --from=fetch . /src\n", sources={"s": b"s\n"})
    host = Canaries(tmp_path)
    (tree.cache / "sources").mkdir(parents=True)
    os.chmod(tree.cache, 0o700)
    (tree.cache / "sources" / "sha256").symlink_to(host.dir)
    proc = limited("fetch", "test-src", "--tree", str(tree.root), "--cache-dir",
                   str(tree.cache), "--mirror", str(tree.mirror), "--offline", "--json")
    host.assert_unchanged()  # before: the source was stored in the host directory
    error = cli_error(proc, ErrorKind.REFUSED, exit_code=1, problem="LINK")
    assert error["path"] == str(tree.cache / "sources" / "sha256")


# -- cache records and seals -------------------------------------------------------------------

def _records(cache: Path) -> list[Path]:
    found = [*cache.glob("builds/*/stage.json"), *cache.glob("actions/*/action.json"),
             *cache.glob("builds/*/image.json"), *cache.glob("**/*.seal")]
    assert found
    return found


def test_records_and_seals_linked_to_dev_zero(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    proc = build(tree, "test-plain")
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.split()[0]
    for record in _records(tree.cache):
        record.unlink()
        record.symlink_to("/dev/zero")
    proc = build(tree, "test-plain")  # before: read /dev/zero until out of memory
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == digest


def test_records_that_are_huge_or_fifos(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    assert build(tree, "test-plain").returncode == 0
    for n, record in enumerate(_records(tree.cache)):
        record.unlink()
        if n % 2:
            os.mkfifo(record)
        else:
            with open(record, "wb") as f:
                f.truncate(8 << 30)  # sparse: 8 GiB that cost nothing on disk
    proc = build(tree, "test-plain")
    assert proc.returncode == 0, proc.stderr


def test_touching_a_record_never_touches_a_host_file(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    assert build(tree, "test-plain").returncode == 0
    host = Canaries(tmp_path)
    for record in tree.cache.glob("actions/*/action.json"):
        record.unlink()
        record.symlink_to(host.public)
    proc = rootseed("build", "test-plain", "--tree", str(tree.root), "--cache-dir",
                    str(tree.cache), "--out", str(tree.out), "--offline")
    assert proc.returncode == 0, proc.stderr
    host.assert_unchanged()  # before: the host file's mtime was set by the cache hit


def test_views_and_layers_areas_linked_to_a_host_dir(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    host = Canaries(tmp_path)
    tree.cache.mkdir(mode=0o700)
    (tree.cache / "views").symlink_to(host.dir)
    (tree.cache / "layers").symlink_to(host.subdir)
    proc = build(tree, "test-plain", "--json")
    host.assert_unchanged()  # before: the overlay views were made in the host directory
    cli_error(proc, ErrorKind.REFUSED, exit_code=1, problem="LINK")


def test_report_reads_out_files_without_links_or_end(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    assert build(tree, "test-plain").returncode == 0
    (tree.out / "test-plain" / "challenge.json").symlink_to("/proc/self/pagemap")
    (tree.out / "test-plain" / "crosscheck.json").symlink_to("/proc/self/pagemap")
    proc = limited("report", "--tree", str(tree.root), "--out", str(tree.out), "--output",
                   str(tmp_path / "report.html"), timeout=60)  # before: read until killed
    assert proc.returncode == 0, proc.stderr
    assert "challenge.json" in (tmp_path / "report.html").read_text()


def test_cached_index_json_linked_to_dev_zero(tmp_path: Path) -> None:
    tree = copy_tree(tmp_path)
    first = build(tree, "test-plain")
    assert first.returncode == 0, first.stderr
    [index] = (tree.cache / "builds").glob("*/image/index.json")
    index.unlink()
    index.symlink_to("/dev/zero")
    shutil.rmtree(tree.out)
    proc = build(tree, "test-plain")  # before: out of memory hashing /dev/zero
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == first.stdout.split()[0]


def test_unpacked_image_record_linked_to_dev_zero(tmp_path: Path) -> None:
    tree = HostileTree(tmp_path)
    tree.package("base", "FROM scratch\nCOPY f /f\n", files={"f": b"data\n"})
    tree.package("child", "FROM evil/test-base\nCOPY g /g\n", files={"g": b"g\n"})
    first = build(tree, "test-child")
    assert first.returncode == 0, first.stderr
    [record] = (tree.cache / "images").glob("*/complete.json")
    record.unlink()
    record.symlink_to("/dev/zero")
    proc = build(tree, "test-child", "--no-cache")  # before: read /dev/zero until out of memory
    assert proc.returncode == 0, proc.stderr
    def child(out: str) -> str:
        return next(line.split()[0] for line in out.splitlines() if "test-child" in line)

    assert child(proc.stdout) == child(first.stdout)
    assert not record.is_symlink()
