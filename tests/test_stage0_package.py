"""The bootstrap-stage0 package: its package.toml, its Containerfile, and (opt-in) a real build.

The offline checks read only files of this repository (and the shared pins when they are
present beside it). The build check needs the upstream sources: set ROOTSEED_MIRROR to a
directory holding the six pinned tarballs and hex0-seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import pytest

from clirun import rootseed as run_cli
from rootseed import shipped

TREE = shipped.packages()
PKG_DIR = TREE / "bootstrap" / "stage0"
# StageX's stage0 pins as a reference file (.ci/run sets it when ../shared/ is present).
PINS_ENV = "ROOTSEED_STAGE0_PINS"

TOOLS = frozenset({
    "blood-elf", "catm", "chmod", "cp", "get_machine", "hex2", "kaem", "M1",
    "M2-Mesoplanet", "M2-Planet", "match", "mkdir", "replace", "rm", "sha256sum",
    "ungz", "unbz2", "unxz", "untar", "wrap",
})
HEX64 = re.compile(r"[0-9a-f]{64}")


def load_package() -> dict[str, Any]:
    with (PKG_DIR / "package.toml").open("rb") as f:
        return tomllib.load(f)


def load_pins() -> dict[str, Any]:
    pins = os.environ.get(PINS_ENV)
    if not pins:
        pytest.skip(f"set {PINS_ENV}=<StageX's stage0 pins as TOML> to compare with them")
    with Path(pins).open("rb") as f:
        return tomllib.load(f)


def stages(path: Path) -> list[tuple[str, list[Any]]]:
    """The Containerfile as (stage name, instructions) in file order (BuildKit's parser)."""
    out: list[tuple[str, list[Any]]] = []
    for cmd in dockerfile.parse_file(str(path)):
        if cmd.cmd == "FROM":
            value = list(cmd.value)
            name = value[2] if len(value) == 3 and value[1].upper() == "AS" else str(len(out))
            out.append((name, [cmd]))
        else:
            assert out, f"line {cmd.start_line}: {cmd.cmd} before the first FROM"
            out[-1][1].append(cmd)
    return out


# --- package.toml --------------------------------------------------------------------------

def test_tree_namespace_is_rootseed() -> None:
    with (TREE / "rootseed.toml").open("rb") as f:
        assert tomllib.load(f)["tree"]["namespace"] == "rootseed"


def test_package_header() -> None:
    pkg = load_package()["package"]
    assert pkg["name"] == "stage0"
    assert PKG_DIR.parent.name == "bootstrap"  # -> package name bootstrap-stage0
    assert pkg["platforms"] == ["linux/386"]
    for key in ("version", "description", "license", "website"):
        assert isinstance(pkg[key], str) and pkg[key], key


def test_every_source_is_pinned() -> None:
    sources = load_package()["sources"]
    assert set(sources) == {"stage0_posix_x86", "m2libc", "m2_planet", "mescc_tools",
                            "mescc_tools_extra", "m2_mesoplanet", "hex0_seed"}
    for sid, src in sources.items():
        assert HEX64.fullmatch(src["hash"]), f"{sid}: hash is not 64 lowercase hex digits"
        assert src["mirrors"], f"{sid}: no mirrors"
        assert src["file"], f"{sid}: no file"


def test_tarball_sources_are_github_archives_of_their_commit() -> None:
    for sid, src in load_package()["sources"].items():
        if src.get("seed"):
            continue
        assert re.fullmatch(r"[0-9a-f]{40}", src["version"]), sid
        assert src["git_sha"] == src["version"], sid
        assert src["format"] == "tar.gz", sid
        assert src["file"].endswith("-{version}.tar.gz"), sid
        assert len(src["mirrors"]) == 1, sid
        assert re.fullmatch(r"https://github\.com/oriansj/[A-Za-z0-9-]+/archive/\{version\}"
                            r"\.tar\.gz", src["mirrors"][0]), sid


def test_only_the_seed_is_marked_seed() -> None:
    sources = load_package()["sources"]
    seeds = [sid for sid, src in sources.items() if src.get("seed")]
    assert seeds == ["hex0_seed"]
    assert sources["hex0_seed"]["seed"] is True
    assert sources["hex0_seed"]["file"] == "hex0-seed"


def test_outputs_list_the_twenty_tools() -> None:
    outputs = load_package()["outputs"]
    assert set(outputs) == {f"bin/{t}" for t in TOOLS}
    for path, (digest, size) in outputs.items():
        assert HEX64.fullmatch(digest), path
        assert isinstance(size, int) and size > 0, path


def test_outputs_and_sources_match_the_shared_pins() -> None:
    pins = load_pins()
    pkg = load_package()
    want_outputs = {f"bin/{t}": [d, s] for t, (d, s) in pins["outputs"].items()}
    assert pkg["outputs"] == want_outputs
    by_commit = {p["commit"]: p for p in pins["sources"].values()}
    for sid, src in pkg["sources"].items():
        if src.get("seed"):
            assert src["hash"] == pins["seed"]["sha256"]
            assert src["mirrors"] == pins["seed"]["mirrors"]
            continue
        pin = by_commit[src["version"]]
        assert src["hash"] == pin["sha256"], sid
        assert src["file"].replace("{version}", src["version"]) == pin["file"], sid


def test_no_upstream_bytes_are_committed() -> None:
    committed = {p.name for p in PKG_DIR.iterdir()}
    assert committed == {"package.toml", "Containerfile"}


# --- Containerfile -------------------------------------------------------------------------

def test_containerfile_runs_only_exec_form() -> None:
    for name, cmds in stages(PKG_DIR / "Containerfile"):
        for cmd in cmds:
            if cmd.cmd == "RUN":
                assert cmd.json, f"stage {name} line {cmd.start_line}: RUN must be exec form"
            assert cmd.cmd in {"FROM", "ARG", "ENV", "WORKDIR", "ADD", "COPY", "RUN"}, (
                f"line {cmd.start_line}: unexpected {cmd.cmd}")


def test_containerfile_build_args_name_declared_sources() -> None:
    ids = {sid.upper() for sid in load_package()["sources"]}
    for _, cmds in stages(PKG_DIR / "Containerfile"):
        for cmd in cmds:
            if cmd.cmd != "ARG":
                continue
            for arg in cmd.value:
                m = re.fullmatch(r"([A-Z0-9_]+)_(SOURCE|VERSION|GIT_SHA)", arg.split("=")[0])
                assert m and m.group(1) in ids, f"line {cmd.start_line}: unknown ARG {arg}"


def test_containerfile_stages_refer_to_earlier_stages() -> None:
    seen: set[str] = set()
    for name, cmds in stages(PKG_DIR / "Containerfile"):
        base = cmds[0].value[0]
        assert base == "scratch" or base in seen, f"stage {name}: FROM {base}"
        for cmd in cmds[1:]:
            for flag in cmd.flags:
                if flag.startswith("--from="):
                    src = flag.removeprefix("--from=")
                    assert src == "fetch" or src in seen, f"stage {name}: {flag}"
        assert name not in seen, f"stage {name} defined twice"
        seen.add(name)


def test_final_image_is_exactly_the_twenty_tools() -> None:
    name, cmds = stages(PKG_DIR / "Containerfile")[-1]
    assert cmds[0].value[0] == "scratch", f"final stage {name} must be FROM scratch"
    dests = []
    for cmd in cmds[1:]:
        assert cmd.cmd == "COPY", f"final stage line {cmd.start_line}: only COPY --from"
        assert any(f.startswith("--from=") for f in cmd.flags)
        src, dest = cmd.value
        assert Path(src).name == Path(dest).name
        dests.append(dest)
    assert sorted(dests) == sorted(f"/bin/{t}" for t in TOOLS)


def test_the_seed_is_copied_executable_from_the_fetch_context() -> None:
    found = False
    for _, cmds in stages(PKG_DIR / "Containerfile"):
        for cmd in cmds:
            if cmd.cmd == "COPY" and cmd.value[0] == "${HEX0_SEED_SOURCE}":
                assert set(cmd.flags) == {"--from=fetch", "--chmod=755"}
                found = True
    assert found


# --- opt-in: the real build ----------------------------------------------------------------

def members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """All members; a layer that ends without the two zero blocks (some writers omit them)
    is read up to its end. A truncated member still shows up as a wrong digest below."""
    out: list[tarfile.TarInfo] = []
    while True:
        try:
            member = tar.next()
        except tarfile.ReadError:
            return out
        if member is None:
            return out
        out.append(member)


def image_files(layout: Path) -> dict[str, bytes]:
    """Regular files of the image in an OCI layout, layers applied in order."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]

    def blob(d: str) -> Path:
        algo, hexd = d.split(":", 1)
        return layout / "blobs" / algo / hexd

    manifest = json.loads(blob(digest).read_text())
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"]), "r:*") as tar:
            for member in members(tar):
                path = member.name.removeprefix("./").lstrip("/")
                name = Path(path).name
                if name.startswith(".wh."):
                    files.pop(str(Path(path).parent / name.removeprefix(".wh.")), None)
                elif member.isfile():
                    f = tar.extractfile(member)
                    assert f is not None
                    files[path] = f.read()
    return files


@pytest.mark.mirror
def test_build_reproduces_the_pinned_tools(tmp_path: Path, stage0_built: Path) -> None:
    """Runs the whole chain through the CLI (needs the builder: `rootseed build`)."""
    mirror = os.environ.get("ROOTSEED_MIRROR")
    if not mirror:
        pytest.skip("set ROOTSEED_MIRROR=<dir with the stage0 tarballs and hex0-seed> "
                    "to build bootstrap-stage0 for real")
    out = tmp_path / "out"
    r = run_cli("build", "bootstrap-stage0", "--tree", TREE, "--mirror", mirror, "--offline",
                "--cache-dir", stage0_built, "--out", out)
    assert r.returncode == 0, r.stdout + r.stderr
    files = image_files(out / "bootstrap-stage0")
    want = {path: (digest, size) for path, (digest, size) in load_package()["outputs"].items()}
    got = {path: (hashlib.sha256(data).hexdigest(), len(data)) for path, data in files.items()}
    assert got == want
