"""Crosscheck the real bootstrap-stage0 chain (needs the upstream sources).

Set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed>. Every test reads the run's
one real-chain build (``stage0_built`` in conftest.py), and the crosscheck with DDC of the
whole chain is the one ``rootseed bootstrap`` of the run (``stage0_bootstrapped``): it is
replayed once per run, not once per test. ROOTSEED_CROSSCHECK_CACHE=<dir> has the planted
byte tests use that cache directory instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bootstrapped import Bootstrapped
from clirun import rootseed as run_cli
from rootseed import shipped
from rootseed.crosscheck.memo import RECALLED
from rootseed.engine.api import StageTree

TREE = shipped.packages()


@pytest.mark.mirror
def test_a_second_bootstrap_recalls_the_crosscheck(tmp_path: Path,
                                                   stage0_bootstrapped: Bootstrapped) -> None:
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> to "
                    "crosscheck bootstrap-stage0 for real")
    common = ["--tree", str(TREE), "--mirror", mirror, "--offline", "--cache-dir",
              str(stage0_bootstrapped.cache), "--out", str(tmp_path / "out")]
    r = run_cli("bootstrap", *common, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = json.loads(r.stdout)["crosscheck"]
    assert lines[0]["seed"] and lines[0]["identical"]
    # the run's bootstrap (stage0_bootstrapped) passed the crosscheck of this exact build:
    # this one recalls it (and says so), with the same lines; `rootseed crosscheck`
    # (test_crosscheck_stage0) repeats it
    assert lines[0]["summary"].startswith(
        "hex0-seed equals hex0(hex0_x86.hex0) computed in Python")
    assert all(line["identical"] and line["recalled"] for line in lines)
    first = stage0_bootstrapped.report["crosscheck"]
    assert [line["summary"] for line in lines] == [
        line["summary"] + RECALLED for line in first]
    # out/ written anew: the recalled report is put back beside the image
    kept = json.loads((tmp_path / "out" / "bootstrap-stage0" / "crosscheck.json").read_text())
    assert kept == json.loads(
        (stage0_bootstrapped.out / "bootstrap-stage0" / "crosscheck.json").read_text())


@pytest.mark.mirror
def test_crosscheck_stage0(tmp_path: Path, stage0_built: Path) -> None:
    """``rootseed crosscheck`` (without DDC) replays the chain again, whatever bootstrap
    remembered. It needs only the build, so it runs while the run's bootstrap does."""
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> to "
                    "crosscheck bootstrap-stage0 for real")
    cache = os.environ.get("ROOTSEED_CROSSCHECK_CACHE") or str(stage0_built)
    common = ["--tree", str(TREE), "--mirror", mirror, "--offline", "--cache-dir", cache,
              "--out", str(tmp_path / "out")]
    r = run_cli("crosscheck", "bootstrap-stage0", *common, "--json")
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


# -- diverse double-compiling on the real chain ----------------------------------------------
def _built(tmp_path: Path, stage0_built: Path) -> tuple[list[str], Path]:
    """The common options on the run's stage0 cache, where bootstrap-stage0 is built (a
    cache hit here: the build is the run's one real-chain build)."""
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> to "
                    "crosscheck bootstrap-stage0 for real")
    cache = Path(os.environ.get("ROOTSEED_CROSSCHECK_CACHE") or stage0_built)
    common = ["--tree", str(TREE), "--mirror", mirror, "--offline", "--cache-dir",
              str(cache), "--out", str(tmp_path / "out")]
    r = run_cli("build", "bootstrap-stage0", *common, "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    # nothing is executed again: this is the run's own stage0 build
    assert cache != stage0_built or json.loads(r.stdout)["results"][0]["cached"] is True
    return common, cache


def _compilers() -> list[str]:
    from rootseed.crosscheck.compilers import find_compilers

    found, _ = find_compilers(("gcc", "clang"))
    if len(found) < 2:
        pytest.skip("the DDC acceptance needs gcc and clang in /usr/bin")
    return [c.label for c in found]


@pytest.mark.mirror
def test_ddc_and_the_python_tools_cover_every_step(stage0_bootstrapped: Bootstrapped) -> None:
    # the report of the run's one `rootseed bootstrap` (stage0_bootstrapped): its crosscheck
    # is `crosscheck bootstrap-stage0 --ddc` (the same call, with every known compiler; the
    # --ddc option's wiring is tested in test_crosscheck_build.py), replayed for real
    labels = _compilers()
    report = stage0_bootstrapped.out / "bootstrap-stage0" / "crosscheck.json"
    data = json.loads(report.read_text())
    checks = data["checks"]
    assert data["counts"]["different"] == 0 and data["counts"]["error"] == 0
    assert data["counts"]["not covered"] == 0
    assert data["counts"]["identical"] == len(checks) == 113
    # the one compile no C compiler can redo: cc_x86's, by the Python cc_x86
    (m2_0,) = [c for c in checks if c["artifact"].endswith("/M2-0.M1")]
    assert m2_0["tool"] == "cc_x86" and m2_0["reproduced_by"] == ["Python cc_x86"]
    ddc = [c for c in checks if c["tool"] == "DDC"]
    assert len(ddc) == 10 + 13  # the ten M2 compiles, one M2-Planet per extra tool
    assert all(set(labels) <= set(c["reproduced_by"]) for c in ddc)
    assert sum(1 for c in ddc if c["stage"].startswith("extra-")) == 13
    # M2-Mesoplanet's temporaries are the build's own (kept by --dirty-mode): no rerun
    extra = [c for c in checks if c["stage"].startswith("extra-")]
    assert len(extra) == 4 * 13
    assert all("kept by the build's --dirty-mode" in c["detail"] for c in extra)
    # (crosscheck.json in out/ names no log directory: the crosscheck logs are the cache's)
    assert not list((stage0_bootstrapped.cache / "logs").rglob("rerun-*"))
    headline = data["headline"]
    assert headline.startswith("/stage0/x86/bin/M2-Planet")
    assert all(label.removeprefix("DDC: ") in headline for label in labels)
    compilers = data["ddc"]["bootstrap-stage0"]["compilers"]
    assert {"-O0", "-std=c99"} <= set(compilers[0]["flags"])
    assert data["package"] == "bootstrap-stage0" and data["ok"] is True


@pytest.mark.mirror
def test_ddc_reports_a_planted_byte_at_its_compile_step(tmp_path: Path, stage0_built: Path
                                                        ) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from rootseed.crosscheck.compilers import find_compilers
    from rootseed.crosscheck.ddc import Diverse
    from rootseed.crosscheck.mesoplanet import replay_mesoplanet
    from rootseed.crosscheck.run import needed_stages
    from rootseed.crosscheck.steps import ddc_compile, rerunnable, stage_steps
    from rootseed.engine.engine import Builder, BuildOptions
    from rootseed.engine.fsops import copy_tree
    from rootseed.fetch import Fetcher
    from rootseed.plan import PlannedRun
    from rootseed.sandbox.rootpath import resolve
    from rootseed.tree import Tree

    common, cache = _built(tmp_path, stage0_built)
    _compilers()
    tree = Tree.load(TREE)
    fetcher = Fetcher(cache, (Path(common[3]),), offline=True, progress=False,
                      base_dir=tree.root)
    builder = Builder(tree, cache_dir=cache, out=tmp_path / "out", fetcher=fetcher)
    pkg = tree.get("bootstrap-stage0")
    options = BuildOptions(progress=False)
    plan = builder.plan(pkg.name, options=options)

    def step_of(label: str, pick):  # type: ignore[no-untyped-def]
        stage = next(s for s in needed_stages(plan) if s.label == label)
        entry = builder.stage(pkg.name, label, options)
        step = next(s for s in stage_steps(stage) if pick(s))
        env = next(dict(i.env) for i in stage.steps
                   if isinstance(i, PlannedRun) and i.line == step.line)
        return step, entry, env

    found, missing = find_compilers(("gcc",))
    (tmp_path / "work").mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        diverse = Diverse(pool, list(fetcher.fetch_package(pkg).values()), found, missing,
                          tmp_path / "work", tmp_path / "logs")
        # an M2 step: M2-1.M1, the assembly of the final M2-Planet
        step, entry, _ = step_of("cc-m2-planet", ddc_compile)
        copy = tmp_path / "planted"
        copy_tree(entry.rootfs, copy)
        target = resolve(copy, step.output)
        data = bytearray(target.read_bytes())
        data[1000] ^= 0x20
        target.write_bytes(bytes(data))
        (check,) = diverse.m2_step(step, StageTree(copy))
        assert check.status.value == "different" and check.offset == 1000
        assert (check.stage, check.artifact) == ("cc-m2-planet", step.output)
        # a stage root on overlay snapshots is a view only the builder's namespace can
        # bind into a sandbox: like crosscheck (run._materialize), use a real copy
        real_root = tmp_path / "real"
        copy_tree(entry.rootfs, real_root)
        (check,) = diverse.m2_step(step, StageTree(real_root))
        assert check.status.value == "identical", check.detail

        # an M2-Mesoplanet step: the M2-Planet output it spawned
        step, entry, env = step_of("extra-sha256sum", rerunnable)
        meso_root = tmp_path / "meso"
        copy_tree(entry.rootfs, meso_root)
        real = diverse.mesoplanet_check(env, StageTree(meso_root))

        def planted(s, command, root):  # type: ignore[no-untyped-def]
            out = resolve(root, command[command.index("--output") + 1])
            raw = bytearray(out.read_bytes())
            raw[77] ^= 0x01
            out.write_bytes(bytes(raw))
            return real(s, command, root)

        (tmp_path / "rerun").mkdir()
        log = tmp_path / "rerun.log"
        checks = replay_mesoplanet(step, StageTree(meso_root), env, tmp_path / "rerun", log,
                                   compile_check=planted)
        compiled = [c for c in checks if c.tool == "DDC"]
        assert len(compiled) == 1 and compiled[0].status.value == "different"
        assert compiled[0].offset == 77 and compiled[0].stage == "extra-sha256sum"
    fetcher.close()


@pytest.mark.mirror
def test_a_byte_planted_in_m2_0_m1_is_reported_at_cc_x86s_step(tmp_path: Path,
                                                                stage0_built: Path) -> None:
    from rootseed.crosscheck.replay import replay
    from rootseed.crosscheck.run import needed_stages
    from rootseed.crosscheck.steps import stage_steps
    from rootseed.engine.engine import Builder, BuildOptions
    from rootseed.engine.fsops import copy_tree
    from rootseed.fetch import Fetcher
    from rootseed.sandbox.rootpath import resolve
    from rootseed.tree import Tree

    mirror = os.environ["ROOTSEED_MIRROR"]
    tree = Tree.load(TREE)
    fetcher = Fetcher(stage0_built, (Path(mirror),), offline=True, progress=False,
                      base_dir=tree.root)
    builder = Builder(tree, cache_dir=stage0_built, out=tmp_path / "out", fetcher=fetcher)
    try:
        options = BuildOptions(progress=False)
        plan = builder.plan("bootstrap-stage0", options=options)
        stage = next(s for s in needed_stages(plan) if s.label == "m2")
        (step,) = [s for s in stage_steps(stage) if s.tool == "cc_x86"]
        root = tmp_path / "m2"
        copy_tree(builder.stage_tree("bootstrap-stage0", "m2", options).rootfs, root)
    finally:
        builder.close()
        fetcher.close()
    (check,) = replay(step, root)
    assert check.status.value == "identical" and check.reproduced_by == ("Python cc_x86",)
    assert step.output is not None and step.output.endswith("/x86/artifact/M2-0.M1")
    target = resolve(root, step.output)
    data = bytearray(target.read_bytes())
    data[123456] ^= 0x04
    target.write_bytes(bytes(data))
    (check,) = replay(step, root)
    assert check.status.value == "different" and check.offset == 123456
    assert (check.stage, check.artifact, check.tool) == ("m2", step.output, "cc_x86")
