"""Builder tests: real sandboxed builds of small fixture trees (busybox gives a shell)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildtree import (
    APP_CONTAINERFILE,
    BASE_CONTAINERFILE,
    BUSYBOX,
    app_package,
    base_package,
    make_tree,
)
from clirun import Result, rootseed
from kinds import raises_kind
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.ops import StepFailed
from rootseed.errors import ErrorKind
from rootseed.oci import read_image, unpack_image
from rootseed.tree import Tree

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")


def builder(tree: Path, tmp: Path, name: str = "") -> Builder:
    return Builder(Tree.load(tree), cache_dir=tmp / f"cache{name}", out=tmp / f"out{name}")


def cli(*args: str) -> Result:
    return rootseed(*args)


def cli_process(*args: str, env: dict[str, str], umask: int
                ) -> subprocess.CompletedProcess[str]:
    """A process of its own: the test is about the process's environment, TMPDIR and umask."""
    return subprocess.run([sys.executable, "-m", "rootseed", *args], capture_output=True,
                          text=True, env=env, preexec_fn=lambda: os.umask(umask), check=False)


def test_multistage_build_contents_config_and_record(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    results = builder(tree, tmp_path).build(["core-app"], BuildOptions(jobs=2, progress=False))
    assert [r.package for r in results] == ["bootstrap-base", "core-app"]
    base, app = results
    assert not app.cached and sorted(app.stages_built) == ["2", "build", "other"]
    assert app.image == tmp_path / "out" / "core-app"
    rootfs = tmp_path / "unpacked"
    image = unpack_image(app.image, rootfs)
    assert image.manifest_digest == app.manifest_digest
    share = rootfs / "share"
    assert (share / "version").read_text() == "hi there 2.0\n"
    assert (share / "inline").read_text() == "version 2.0\n"
    assert (share / "note.txt").read_text() == "a context file\n"
    assert (share / "other.txt").read_text() == "other\n"
    assert (share / "greeting").read_text() == "hello from base\n"
    assert (rootfs / "shebang").read_text() == "ran by sh\n"
    assert oct((share / "inline").stat().st_mode & 0o777) == "0o644"
    assert image.config.cmd == ("/bin/true",)
    assert image.config.labels == {"org.example.name": "app"}
    assert image.ref_name == "2.0"
    assert image.config_json["created"] == "1970-01-01T00:00:01Z"
    # the base image: busybox executable, ADD unpacked the tarball, COPY --from=fetch did not
    base_root = tmp_path / "base-unpacked"
    unpack_image(base.image, base_root)
    assert os.access(base_root / "bin" / "busybox", os.X_OK)
    assert (base_root / "src" / "hello-1.0" / "README").read_text() == "readme\n"
    assert (base_root / "archives" / "hello-1.0.tar.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert read_image(base.image).config.env == ("PATH=/bin",)
    record = app.record
    assert record.package == "core-app" and record.version == "2.0"
    assert record.namespace == "rs" and record.target is None
    assert record.manifest_digest == app.manifest_digest
    assert [(p.package, p.reference, p.manifest_digest) for p in record.parents] == [
        ("bootstrap-base", "rs/bootstrap-base", base.manifest_digest)]
    assert record.context_files["note.txt"] == hashlib.sha256(b"a context file\n").hexdigest()
    assert record.build_args["VERSION"] == "2.0"
    assert [(s.id, s.file) for s in base.record.sources] == [("hello", "hello-1.0.tar.gz")]


def test_cache_hits_target_and_no_cache(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    b = builder(tree, tmp_path)
    quiet = BuildOptions(progress=False)
    first = b.build(["core-app"], quiet)[-1]
    again = b.build(["core-app"], quiet)[-1]
    assert again.cached and again.stages_built == ()
    assert again.manifest_digest == first.manifest_digest
    target = b.build(["core-app"], BuildOptions(target="build", progress=False))[-1]
    assert target.cached and target.record.target == "build"
    assert target.manifest_digest != first.manifest_digest
    rebuilt = b.build(["core-app"], BuildOptions(no_cache=True, progress=False))[-1]
    assert not rebuilt.cached and len(rebuilt.stages_built) == 3
    assert rebuilt.manifest_digest == first.manifest_digest
    # a changed context file changes the key of the stages that COPY it, not the others
    (tree / "core" / "app" / "note.txt").write_text("changed\n")
    changed = b.build(["core-app"], quiet)[-1]
    assert sorted(changed.stages_built) == ["2", "build"] and changed.stages_cached == ("other",)


def test_cli_build_says_cached_and_checks_digests(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out",
              str(tmp_path / "o")]
    r = cli("build", "bootstrap-base", *common)
    assert r.returncode == 0, r.stderr
    r = cli("digests", "bootstrap-base", *common)
    assert r.returncode == 0, r.stderr
    digests = (tmp_path / "digests" / "bootstrap.txt").read_text()
    hexd = read_image(tmp_path / "o" / "bootstrap-base").manifest_digest.removeprefix("sha256:")
    assert digests == f"{hexd} bootstrap-base\n"
    r = cli("build", "bootstrap-base", "--check", *common)
    assert r.returncode == 0, r.stderr
    assert "cached" in r.stderr and "cached" in r.stdout  # words: progress, not an error
    (tmp_path / "digests" / "bootstrap.txt").write_text(f"{'0' * 64} bootstrap-base\n")
    r = cli("build", "bootstrap-base", "--check", "--json", *common)
    assert r.returncode == 1, r.stderr
    [problem] = json.loads(r.stdout)["check"]  # the --json result says what differs
    assert f"built sha256:{hexd}" in problem
    r = cli("build", "bootstrap-base", "--json", "--no-cache", *common)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["cached"] is False


def test_determinism_across_dirs_tmpdir_umask_env(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "t")
    digests = []
    for n, (umask, extra) in enumerate([(0o022, {"LANG": "C"}),
                                        (0o077, {"TZ": "Asia/Tokyo", "LC_ALL": "fr_FR.UTF-8",
                                                 "FOO": "bar"})]):
        tmp = tmp_path / f"run{n}" / ("deep/" * n)
        (tmp / "tmp").mkdir(parents=True)
        env = {**os.environ, **extra, "TMPDIR": str(tmp / "tmp")}
        r = cli_process("build", "core-app", "--tree", str(tree), "--cache-dir",
                        str(tmp / "cache"), "--out", str(tmp / "out"), "-j", str(n + 1),
                        env=env, umask=umask)
        assert r.returncode == 0, r.stderr
        digests.append(read_image(tmp / "out" / "core-app").manifest_digest)
    assert digests[0] == digests[1]


@pytest.mark.skipif(shutil.which("umoci") is None or shutil.which("skopeo") is None,
                    reason="needs umoci and skopeo")
def test_umoci_and_skopeo_read_the_layout(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app = builder(tree, tmp_path).build(["core-app"], BuildOptions(progress=False))[-1]
    r = subprocess.run(["skopeo", "inspect", f"oci:{app.image}"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Digest"] == app.manifest_digest
    bundle = tmp_path / "bundle"
    r = subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{app.image}:2.0",
                        str(bundle)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    ours = tmp_path / "ours"
    unpack_image(app.image, ours)
    for path in sorted(ours.rglob("*")):
        theirs = bundle / "rootfs" / path.relative_to(ours)
        assert theirs.is_symlink() == path.is_symlink(), path
        if path.is_file() and not path.is_symlink():
            assert theirs.read_bytes() == path.read_bytes()
            assert theirs.stat().st_mode == path.stat().st_mode
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["/bin/true"]


def test_failing_run_names_package_line_code_output_and_log(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, APP_CONTAINERFILE.replace(
        'RUN echo other > /other.txt',
        'RUN for i in $(seq 1 30); do echo line$i; done; echo oops >&2; exit 3'))
    with pytest.raises(StepFailed) as e:
        builder(tree, tmp_path).build(["core-app"], BuildOptions(progress=False))
    error = e.value
    assert (error.package, error.file, error.line, error.step, error.status) == (
        "core-app", "packages/core/app/Containerfile", 17, "RUN", 3)
    log = tmp_path / "cache" / "logs" / "core-app" / "other-line0017.log"
    assert error.log == log
    message = error.message
    # words: the message shows the last lines of output and names the log, for people
    assert "line30" in message and "oops" in message and "line5\n" not in message
    assert f"full log: {log}" in message
    assert "line1\n" in log.read_text()
    assert not (tmp_path / "out" / "core-app").exists()
    assert (tmp_path / "out" / "bootstrap-base").is_dir()


def test_missing_context_file_and_missing_source(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    (tree / "core" / "app" / "note.txt").unlink()
    with raises_kind(ErrorKind.STEP, package="core-app", file="packages/core/app/Containerfile",
                     line=5, step="COPY") as e:
        builder(tree, tmp_path).build(["core-app"], BuildOptions(progress=False))
    # words: a message for people: where (package, file:line, instruction), then what
    assert e.value.message.startswith("core-app: packages/core/app/Containerfile:5: COPY: "
                                      "source 'note.txt' not found")
    (tree / "mirror" / "hello-1.0.tar.gz").unlink()
    with raises_kind(ErrorKind.FETCH):
        builder(tree, tmp_path, "2").build(["bootstrap-base"], BuildOptions(progress=False))


def test_unsupported_things_fail_clearly(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, "FROM docker.io/library/alpine\n")
    with raises_kind(ErrorKind.PLAN, package="core-app", line=1):
        builder(tree, tmp_path).build(["core-app"], BuildOptions(progress=False))
    app_package(tree, "FROM rs/bootstrap-base\nUSER nobody\nRUN true\n")
    with raises_kind(ErrorKind.STEP, package="core-app", line=3, step="RUN"):
        builder(tree, tmp_path).build(["core-app"], BuildOptions(progress=False))
    with raises_kind(ErrorKind.PLAN):
        builder(tree, tmp_path).build(["core-app"], BuildOptions(target="nope"))


def test_declared_outputs_are_verified(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    good = hashlib.sha256(b"other\n").hexdigest()
    app_package(tree, outputs=f'[outputs]\n"share/other.txt" = ["{good}", 6]\n')
    builder(tree, tmp_path).build(["core-app"], BuildOptions(progress=False))
    bad = "0" * 64
    app_package(tree, outputs=f'[outputs]\n"share/other.txt" = ["{bad}", 6]\n')
    with raises_kind(ErrorKind.DIGEST_MISMATCH, package="core-app") as e:
        builder(tree, tmp_path, "2").build(["core-app"], BuildOptions(progress=False))
    # words: names the output, what was pinned and what was built, for people
    assert f"share/other.txt: expected sha256 {bad} (6 bytes), got sha256 {good}" in str(e.value)
    assert not (tmp_path / "out2" / "core-app").exists()


def test_sigkill_mid_build_then_rebuild(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    base_package(tree, BASE_CONTAINERFILE + "RUN sleep 2\n")
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c"), "--out",
              str(tmp_path / "o")]
    proc = subprocess.Popen([sys.executable, "-m", "rootseed", "build", "bootstrap-base",
                             *common], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    log = tmp_path / "c" / "logs" / "bootstrap-base" / "base-line0010.log"
    deadline = time.monotonic() + 120
    while not log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the build ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "o" / "bootstrap-base").exists()
    builds = tmp_path / "c" / "builds"
    assert not builds.exists() or not list(builds.iterdir())
    r = cli("build", "bootstrap-base", *common)
    assert r.returncode == 0, r.stderr
    assert read_image(tmp_path / "o" / "bootstrap-base").manifest_digest in r.stdout
    assert not [p for p in (tmp_path / "c" / "work").iterdir() if p.is_dir()]


def test_two_concurrent_builds_of_one_package(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    common = ["--tree", str(tree), "--cache-dir", str(tmp_path / "c")]
    procs = [subprocess.Popen([sys.executable, "-m", "rootseed", "build", "bootstrap-base",
                               *common, "--out", str(tmp_path / f"o{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    digests = {read_image(tmp_path / f"o{i}" / "bootstrap-base").manifest_digest
               for i in range(2)}
    assert len(digests) == 1
    assert len([p for p in (tmp_path / "c" / "builds").iterdir()]) == 1
