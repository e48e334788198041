"""crosscheck on real sandboxed builds of tiny trees: rootseed's own seed (examples/) and
busybox scripts standing in for chain tools, one of them deliberately wrong."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import rootseed as run_cli
from rootseed import shipped
from rootseed.crosscheck import ArtifactCheck, Report, Status, crosscheck
from rootseed.engine.engine import Builder
from rootseed.tools.hex0 import assemble
from rootseed.tree import Tree

SEED = shipped.examples() / "mirror" / "hex0-seed"  # rootseed's own 180-byte seed
SEED_SRC = shipped.examples() / "mirror" / "hex0.hex0"
BUSYBOX = Path("/usr/bin/busybox")

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

SOURCE = b"# four bytes\n41 42 43 44 ; ABCD\n"

CONTAINERFILE = """\
FROM scratch AS tools
ARG HEX0_SEED_SOURCE
COPY --from=fetch --chmod=0755 ${HEX0_SEED_SOURCE} /bin/hex0-seed
COPY --chmod=0755 busybox /bin/busybox
COPY --chmod=0755 <<"EOF" /bin/catm
#!/bin/busybox sh
out="$1"; shift; /bin/busybox cat "$@" > "$out"
EOF
COPY --chmod=0755 <<"EOF" /bin/hex0
#!/bin/busybox sh
/bin/busybox printf '%s' "$FAKE" > "$2"
EOF

FROM tools AS seed
WORKDIR /work/src
COPY hex0.hex0 four.hex0 ./
WORKDIR /work/out
RUN ["/bin/hex0-seed", "../src/hex0.hex0", "hex0"]

FROM seed AS fake
ENV FAKE=@FAKE@
RUN ["/bin/hex0", "../src/four.hex0", "four"]
RUN ["/bin/catm", "joined", "../src/four.hex0", "../src/hex0.hex0"]

FROM scratch
COPY --from=seed /work/out/hex0 /bin/hex0
COPY --from=fake /work/out/four /four
COPY --from=fake /work/out/joined /joined
"""


def make_tree(root: Path, fake: str, containerfile: str = CONTAINERFILE) -> Path:
    """A one-package tree whose fake ``hex0`` writes ``fake`` (right: "ABCD")."""
    tree = root / "packages"
    d = tree / "test" / "xc"
    d.mkdir(parents=True)
    (tree / "rootseed.toml").write_text('[tree]\nnamespace = "rs"\n')
    mirror = tree / "mirror"  # file: mirrors must stay inside the tree
    mirror.mkdir()
    shutil.copy2(SEED, mirror / "hex0-seed")
    shutil.copy2(BUSYBOX, d / "busybox")
    shutil.copy2(SEED_SRC, d / "hex0.hex0")
    (d / "four.hex0").write_bytes(SOURCE)
    seed_hash = hashlib.sha256(SEED.read_bytes()).hexdigest()
    (d / "package.toml").write_text(f'''[package]
name = "xc"
version = "1"
description = "crosscheck fixture"
license = "MIT"

[sources.hex0_seed]
version = "1"  # StageX passes HEX0_SEED_SOURCE only for a source with its own version
hash = "{seed_hash}"
file = "hex0-seed"
seed = true
mirrors = ["file:mirror/{{file}}"]
''')
    (d / "Containerfile").write_text(containerfile.replace("@FAKE@", fake))
    return tree


def by_artifact(checks: list[ArtifactCheck], artifact: str, seed: bool = False
                ) -> ArtifactCheck:
    return next(c for c in checks if c.artifact == artifact and c.seed == seed)


def test_right_and_wrong_outputs(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, "ABXD")
    builder = Builder(Tree.load(tree), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    report = crosscheck(builder, "test-xc")
    assert not (tmp_path / "out" / "test-xc").exists()  # stages only, no image written
    seed = by_artifact(report.checks, "/bin/hex0-seed", seed=True)
    assert seed.status is Status.IDENTICAL and seed.chain_size == SEED.stat().st_size
    assert seed.detail == "hex0-seed equals hex0(hex0.hex0) computed in Python"
    assert by_artifact(report.checks, "/work/out/hex0").status is Status.IDENTICAL
    four = by_artifact(report.checks, "/work/out/four")
    assert four.status is Status.DIFFERENT
    assert (four.offset, four.chain_size, four.python_size) == (2, 4, 4)
    assert assemble(SOURCE) == b"ABCD"  # what the Python tool made of it
    joined = by_artifact(report.checks, "/work/out/joined")
    assert joined.status is Status.IDENTICAL and joined.tool == "catm"
    assert not report.ok and report.count(Status.DIFFERENT) == 1
    assert report.count(Status.IDENTICAL) == 3

    fixed = tmp_path / "fixed"
    fixed.mkdir()
    good_tree = make_tree(fixed, "ABCD")
    good = crosscheck(Builder(Tree.load(good_tree), cache_dir=fixed / "cache",
                              out=fixed / "out"), "test-xc")
    assert good.ok and good.count(Status.DIFFERENT) == 0
    assert by_artifact(good.checks, "/work/out/four").status is Status.IDENTICAL


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, "ABC")  # one byte short
    args = ["crosscheck", "test-xc", "--tree", str(tree),
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    r = run_cli(*args, "--json")
    assert r.returncode == 2, r.stderr
    data = json.loads(r.stdout)
    four = next(c for c in data["checks"] if c["artifact"] == "/work/out/four")
    assert (four["status"], four["offset"], four["chain_size"]) == ("different", 3, 3)
    assert data["counts"]["different"] == 1 and data["ok"] is False
    r = run_cli(*args, env={"COLUMNS": "250"})
    assert r.returncode == 2
    assert "differs at offset 3" in r.stdout
    assert "✓ hex0-seed equals hex0(hex0.hex0) computed in Python" in r.stdout


def test_ddc_options_reach_the_crosscheck(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``crosscheck --ddc [--ddc-compilers]`` hands the compilers to the crosscheck (the
    real chain's DDC itself is checked on the run's one bootstrap, in
    test_crosscheck_stage0.py: the same crosscheck call)."""
    import rootseed.cli.crosscheck as command
    from rootseed.crosscheck.compilers import KNOWN
    from rootseed.crosscheck.run import DdcOptions

    seen: list[DdcOptions | None] = []

    def spy(*args: object, ddc: DdcOptions | None = None, **kwargs: object) -> Report:
        seen.append(ddc)
        return crosscheck_package(*args, ddc=ddc, **kwargs)  # type: ignore[arg-type]

    crosscheck_package = command.crosscheck_package
    monkeypatch.setattr(command, "crosscheck_package", spy)
    tree = make_tree(tmp_path, "ABCD")
    args = ["crosscheck", "test-xc", "--tree", str(tree), "--json",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert run_cli(*args).returncode == 0
    assert run_cli(*args, "--ddc").returncode == 0
    assert run_cli(*args, "--ddc", "--ddc-compilers", "clang, gcc").returncode == 0
    assert seen == [None, DdcOptions(KNOWN), DdcOptions(("clang", "gcc"))]


def test_builder_stage_rootfs_builds_once_and_writes_no_image(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, "ABXD")
    builder = Builder(Tree.load(tree), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    rootfs = builder.stage_rootfs("test-xc", "seed")
    assert (rootfs / "work" / "out" / "hex0").read_bytes() == SEED.read_bytes()
    assert not (rootfs / "work" / "out" / "four").exists()  # a later stage's file
    entry = builder.stage("test-xc", "seed")
    assert entry.state["config"]["workdir"] == "/work/out"
    assert builder.stage_rootfs("test-xc", "seed") == rootfs  # the same cache entry
    assert not (tmp_path / "out").exists()


#: a stand-in M2-Mesoplanet (writes its --output, says so on stdout: the rerun's log)
MESOPLANET_CONTAINERFILE = CONTAINERFILE + """
FROM seed AS driver
COPY --chmod=0755 <<"EOF" /bin/M2-Mesoplanet
#!/bin/busybox sh
out=""
while [ $# -gt 0 ]; do case "$1" in -o|--output) out="$2"; shift;; esac; shift; done
/bin/busybox echo "stand-in M2-Mesoplanet writing $out"
/bin/busybox sleep 1
/bin/busybox printf 'PROGRAM' > "$out"
EOF
RUN ["/bin/M2-Mesoplanet", "-f", "../src/four.hex0", "-o", "prog"]

FROM scratch
COPY --from=driver /work/out/prog /prog
"""


def test_concurrent_crosschecks_keep_separate_logs(tmp_path: Path) -> None:
    """Two crosschecks on one cache at once: each run's rerun log in its own directory,
    named in --json, kept after the run (they used to share one path and truncate it)."""
    tree = make_tree(tmp_path, "ABCD", MESOPLANET_CONTAINERFILE)
    args = [sys.executable, "-m", "rootseed", "crosscheck", "test-xc", "--json", "--tree",
            str(tree), "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]

    def logs_of(proc: subprocess.Popen[str]) -> Path:
        stdout, stderr = proc.communicate(timeout=600)
        assert "Traceback" not in stderr and proc.returncode in (0, 1), stderr
        data = json.loads(stdout)
        rerun = [c for c in data["checks"] if c["stage"] == "driver"]
        assert rerun, data["checks"]  # the driver step was rerun (and its log read)
        return Path(data["logs"])

    first = logs_of(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True))  # builds the stages
    runs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    dirs = [first, *(logs_of(p) for p in runs)]
    assert len(set(dirs)) == 3, dirs
    for d in dirs:
        assert d.parent == tmp_path / "cache" / "logs" / "test-xc"
        assert d.name.startswith("crosscheck-")
        [log] = d.glob("rerun-*.log")
        assert log.read_text().count("stand-in M2-Mesoplanet writing") == 1, log.read_text()


def test_saved_report_names_no_log_directory(tmp_path: Path) -> None:
    from rootseed.crosscheck.run import save_report

    (tmp_path / "p").mkdir()
    path = save_report(tmp_path, Report(package="p", logs="/somewhere/on/the/host"))
    assert path is not None and "logs" not in json.loads(path.read_text())
    assert Report(package="p", logs="/x").as_dict()["logs"] == "/x"


def test_checks_started_while_building_report_as_after(tmp_path: Path) -> None:
    """crosscheck.ahead: a cold build starts the checks on its first step, each stage's
    when the stage is done; the report is the one crosscheck gives after the build. A
    warm build (all cache hits) starts nothing."""
    from rootseed.crosscheck.ahead import Ahead, Starter
    from rootseed.engine.engine import BuildOptions

    tree = Tree.load(make_tree(tmp_path, "ABXD"))
    builder = Builder(tree, cache_dir=tmp_path / "cache", out=tmp_path / "out")
    seen: list[str] = []

    def make() -> Ahead:
        ahead = Ahead(builder, "test-xc", options=BuildOptions(progress=False))
        original = ahead.stage_done

        def stage_done(label: str) -> None:
            seen.append(label)
            original(label)
        ahead.stage_done = stage_done  # type: ignore[method-assign]
        return ahead

    starter = Starter("test-xc", make)
    builder.build(["test-xc"], BuildOptions(progress=False, events=starter.on_event))
    ahead = starter.started()
    assert ahead is not None and starter.error is None
    assert {"seed", "fake"} <= set(seen)  # both stages were started by the build's events
    early = ahead.finish()
    after = crosscheck(builder, "test-xc")
    assert [c.as_dict() for c in early.checks] == [c.as_dict() for c in after.checks]
    assert by_artifact(early.checks, "/work/out/four").status is Status.DIFFERENT
    assert early.count(Status.IDENTICAL) == 3

    warm = Starter("test-xc", make)
    builder.build(["test-xc"], BuildOptions(progress=False, events=warm.on_event))
    assert warm.started() is None
