"""Red-team: images shared through a REAPI service's action cache (remote/images.py,
engine/shared.py; ``rootseed build --remote``).

A record there is an untrusted claim anyone who may call ``UpdateActionResult`` can
write: a *valid* forged image is accepted and attributed (docs/trust-model.md). Anything
else a record can say -- names outside a layout, a blob under another digest, files the
manifest does not name, more files than a layout has, an index naming another image,
hostile text where a digest or a worker's name goes -- is refused with one warning, the
package is built step by step (and its own image recorded in the bad one's place), and
the host is unchanged. What the builder keeps of a taken image (``<cache>/shared/<id>/``)
is used again only while it is what it took: a changed blob, a rewritten record, a link
planted in the area or the entry are never used. A build without ``--remote``, with
``--remote-no-images`` or ``--remote-no-cache``, and ``challenge --remote`` take none.

On rc before this file's changes: the digests of ``index.json`` and ``oci-layout`` were
not checked, and went (terminal escapes, megabytes) into the warning; a record of the
honest image's blobs with another ``oci-layout`` or a second manifest in ``index.json``
was taken (the golden digest) and copied into out/, and so was such a change made to a
kept entry; a taken image that did not unpack or match the package's ``[outputs]``
failed the build (blaming the build) instead of being refused (rc 670945c fixed that
too); a refusal's reason quoting megabytes of the record, or the service's own error
text with terminal escapes, was repeated whole; a full disk during a take was an
"internal error" (exit 70); a service streaming more than a blob's size had all of it
written to disk before the size was checked; an image kept from one service was used
for a build naming another.

Each test forges the record of a core-app of its own (a RUN with a random token), so
records never reach another test, however the cluster is shared. bootstrap-base is the
same in every scene (honest records only, taken from the service's caches); the one
test that forges its record has a bootstrap-base of its own.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from clirun import Result, rootseed
from hostile import Canaries, link, reg, tar_bytes
from remotecluster import Cluster
from rootseed.engine.interface import ImageIdent
from rootseed.engine.shared import AREA, MARKER, RECORD, ident_name
from rootseed.remote.client import Remote
from rootseed.remote.images import MAX_FILES, record_action
from rootseed.remote.merkle import digest_of
from rootseed.remote.protos import re_pb2

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

PACKAGE = "core-app"
NOT_TAKEN = "was not taken"  # the warning of a refused record (engine.py _take_shared)


@dataclass
class Scene:
    """A tree of this test's own, its honest image (built locally) and the ident a
    builder records it under (as the attacker, who knows the plan, computes it)."""

    base: Path
    tree: Path
    cluster: Cluster
    ident: ImageIdent
    digest: str  # the honest image's manifest digest
    layout: Path  # the honest image's layout (out/ of the local build)
    canaries: Canaries

    def files(self, layout: Path | None = None) -> dict[str, bytes]:
        """A layout's files (relative name → bytes)."""
        layout = layout or self.layout
        return {str(p.relative_to(layout)): p.read_bytes() for p in sorted(layout.rglob("*"))
                if p.is_file() and p.name != "provenance.json"}

    def forge(self, files: list[tuple[str, re_pb2.Digest]], blobs: dict[str, bytes],
              worker: str = "forger", **extra: Any) -> None:
        """Store a record of ``files`` for the package (``blobs`` uploaded first, as they
        are: the CAS takes them, they match their digests)."""
        action, _ = record_action(self.ident)
        result = re_pb2.ActionResult(exit_code=0, **extra)
        for path, d in files:
            result.output_files.add(path=path, digest=d)
        result.execution_metadata.worker = worker
        with Remote(self.cluster.endpoint) as remote:
            if blobs:
                remote.upload(blobs)
            remote.update_result(digest_of(action.SerializeToString(deterministic=True)),
                                 result)

    def forge_layout(self, files: dict[str, bytes], worker: str = "forger") -> None:
        self.forge([(rel, digest_of(data)) for rel, data in files.items()],
                   {digest_of(data).hash: data for data in files.values()}, worker)

    def record(self) -> re_pb2.ActionResult | None:
        action, _ = record_action(self.ident)
        with Remote(self.cluster.endpoint) as remote:
            return remote.cached_result(digest_of(action.SerializeToString(
                deterministic=True)))

    def build(self, cache: str = "victim", *args: str, remote: bool = True) -> Result:
        extra = ("--remote", self.cluster.endpoint) if remote else ()
        return rootseed("build", PACKAGE, *extra, *args, "--tree", str(self.tree),
                        "--cache-dir", str(self.base / cache), "--out",
                        str(self.base / f"out-{cache}"), "--offline", "--json",
                        timeout=600)

    def entry(self, cache: str = "victim") -> Path:
        return self.base / cache / AREA / ident_name(self.ident)


def _same_base(tree: Path) -> None:
    """bootstrap-base the same in every scene (its source tarball made with a fixed gzip
    time): its steps and its image come from the service's caches after the first
    scene, instead of running again on workers that the remote stage0 chain keeps busy
    in CI. Only a test that forges bootstrap-base's record has one of its own."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in sorted({"hello-1.0/greet.sh": b"#!/bin/sh\necho hello from $1\n",
                                  "hello-1.0/README": b"readme\n"}.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            tar.addfile(info, io.BytesIO(data))
    tarball = tree / "mirror" / "hello-1.0.tar.gz"
    old = hashlib.sha256(tarball.read_bytes()).hexdigest()
    tarball.write_bytes(buf.getvalue())
    toml = tree / "bootstrap" / "base" / "package.toml"
    toml.write_text(toml.read_text().replace(old, hashlib.sha256(buf.getvalue()).hexdigest()))


def _scene(cluster: Cluster, tmp_path: Path, *, pinned: bool = False,
           own_base: bool = False) -> Scene:
    """``pinned``: the package's ``[outputs]`` pin /t (so a taken image is unpacked);
    ``own_base``: bootstrap-base of this test's own (it forges its record)."""
    canaries = Canaries(tmp_path)
    tree = make_tree(tmp_path)
    token = secrets.token_hex(16)
    if own_base:
        base = tree / "bootstrap" / "base" / "Containerfile"
        base.write_text(base.read_text() + f"RUN echo {token} > /unique\n")
    else:
        _same_base(tree)
    t = f"{token}\n".encode()
    outputs = f'[outputs]\n"t" = ["{hashlib.sha256(t).hexdigest()}", {len(t)}]\n' \
        if pinned else ""
    app_package(tree, f"FROM rs/bootstrap-base AS b\nRUN echo {token} > /t\n"
                      "FROM scratch\nCOPY --from=b /t /t\n", outputs=outputs)
    r = rootseed("build", PACKAGE, "--tree", str(tree), "--cache-dir", str(tmp_path / "local"),
                 "--out", str(tmp_path / "out-local"), "--offline", "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    digest = {x["package"]: x["manifest_digest"] for x in json.loads(r.stdout)["results"]}
    return Scene(tmp_path, tree, cluster, _ident(tmp_path / "local", PACKAGE),
                 digest[PACKAGE], tmp_path / "out-local" / PACKAGE, canaries)


def _stage_keys(cache: Path, package: str = PACKAGE) -> set[str]:
    """The keys of ``package``'s stage entries in ``cache`` (a stage on another base
    has another key)."""
    return {e.name for e in (cache / "builds").iterdir()
            if json.loads((e / "stage.json").read_text())["package"] == package}


def _ident(cache: Path, package: str) -> ImageIdent:
    """The ident a builder records ``package``'s image under: its target stage's key is
    the stage entry of the package that holds its image (in a cache that built it)."""
    [key] = [e.name for e in (cache / "builds").iterdir()
             if (e / "image").is_dir()
             and json.loads((e / "stage.json").read_text())["package"] == package]
    return ImageIdent(key, "image", package)


@pytest.fixture
def scene(remote_cluster: Cluster, tmp_path: Path) -> Scene:
    return _scene(remote_cluster, tmp_path)


def _events(r: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]


def _taken(r: Result) -> list[dict[str, Any]]:
    return [e for e in _events(r) if e["event"] == "image" and e["package"] == PACKAGE]


def _digest(r: Result) -> str:
    return {x["package"]: x["manifest_digest"]
            for x in json.loads(r.stdout)["results"]}[PACKAGE]


def _no_leftovers(scene: Scene, cache: str = "victim") -> None:
    """Nothing half-written: no work dir left in the cache, no partial entry in out/."""
    work = scene.base / cache / "work"
    assert not work.exists() or [p for p in work.iterdir() if p.suffix != ".lock"] == []
    out = scene.base / f"out-{cache}"
    assert not out.exists() or [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def _refused(scene: Scene, r: Result, cache: str = "victim", *, kept: bool = False,
             served: bool = False) -> None:
    """The record was refused with one warning; the package was built step by step, to
    the honest image, and recorded in the bad record's place (``served``: the record was
    served by a patched lookup, which answers the same still); nothing of the record is
    kept (``kept``: a whole image is, which every later take checks and refuses again);
    the host is unchanged."""
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if NOT_TAKEN in line]
    assert len(warnings) == 1, r.stderr[-3000:]
    assert warnings[0].isascii() and warnings[0].isprintable() and len(warnings[0]) < 2000
    assert _taken(r) == []
    assert _digest(r) == scene.digest
    assert os.path.lexists(scene.entry(cache)) == kept
    if not served:
        record = scene.record()
        assert record is not None and record.execution_metadata.worker.startswith("builder ")
    _no_leftovers(scene, cache)
    scene.canaries.assert_unchanged()


# -- records that are no layout's: refused before anything is kept ------------------------

def _honest(scene: Scene) -> list[tuple[str, re_pb2.Digest]]:
    return [(rel, digest_of(data)) for rel, data in scene.files().items()]


def _honest_blobs(scene: Scene) -> dict[str, bytes]:
    return {digest_of(data).hash: data for data in scene.files().values()}


#: End to end here: one name climbing out, one a layout's name with a NUL; every other
#: name (an absolute path, ".", "", a directory, ...) is refused by the same check before
#: anything is read, tested without a service in tests/test_shared_images.py.
@pytest.mark.parametrize("name", ["../../host/pwned", "oci-layout\0x"])
def test_a_record_naming_a_file_outside_a_layout_is_refused(scene: Scene, name: str) -> None:
    data = f"pwned {scene.canaries.dir}\n".encode()
    if name.startswith("../../host"):
        name = f"../../{scene.canaries.dir.name}/pwned"
    scene.forge([*_honest(scene), (name, digest_of(data))],
                {**_honest_blobs(scene), digest_of(data).hash: data})
    _refused(scene, scene.build())


def _serve(monkeypatch: pytest.MonkeyPatch, scene: Scene, result: re_pb2.ActionResult
           ) -> None:
    """A service that does not check that a result's blobs exist (BuildGrid here does;
    REAPI does not require it), or a hostile one: it answers the record's lookup with
    ``result`` as it is."""
    action, _ = record_action(scene.ident)
    wanted = digest_of(action.SerializeToString(deterministic=True))
    real = Remote.cached_result

    def cached_result(self: Remote, d: re_pb2.Digest) -> re_pb2.ActionResult | None:
        return result if d == wanted else real(self, d)

    monkeypatch.setattr(Remote, "cached_result", cached_result)


#: what a hostile record puts where a digest goes: terminal escapes (OSC 52 writes the
#: clipboard, ESC[2J clears the screen) and a lot of text
ESCAPES = "\x1b]52;c;aGVsbG8=\x07\x1b[2J\x1b[31m"


#: End to end here for two of the six (name, size) pairs; the check that refuses them all
#: (a digest must be SHA-256 hex) is tested for each without a service in
#: tests/test_shared_images.py.
@pytest.mark.parametrize(("name", "size"), [("index.json", 10), ("oci-layout", 3 << 20)])
def test_hostile_text_as_a_digest_never_reaches_the_terminal(
        scene: Scene, monkeypatch: pytest.MonkeyPatch, name: str, size: int) -> None:
    """Only a blob's name is checked against its digest: the digest of ``index.json`` and
    ``oci-layout`` went as it was into the error (a BlobMismatch, a missing blob, the
    service's INVALID_ARGUMENT) and so into the warning: escapes and megabytes of it."""
    result = re_pb2.ActionResult(exit_code=0)
    for rel, d in _honest(scene):
        if rel == name:
            d = re_pb2.Digest(hash=ESCAPES + "A" * (1 << 20), size_bytes=size)
        result.output_files.add(path=rel, digest=d)
    result.execution_metadata.worker = "forger"
    _serve(monkeypatch, scene, result)
    r = scene.build()
    _refused(scene, r, served=True)
    # words: no terminal escape reaches the user's terminal: the bytes shown are what is tested
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr
    assert len(r.stderr_bytes) < 100_000


def test_a_record_naming_a_file_twice_is_refused(scene: Scene) -> None:
    honest = _honest(scene)
    scene.forge([*honest, honest[-1]], _honest_blobs(scene))
    _refused(scene, scene.build())


def test_a_blob_named_by_another_digest_is_refused(scene: Scene) -> None:
    """``blobs/sha256/<a>`` whose digest is ``b``'s (the bytes of b, verified as b's)."""
    honest = dict(_honest(scene))
    blobs = sorted(rel for rel in honest if rel.startswith("blobs/"))
    swapped = {**honest, blobs[0]: honest[blobs[1]], blobs[1]: honest[blobs[0]]}
    scene.forge(list(swapped.items()), _honest_blobs(scene))
    _refused(scene, scene.build())


def test_files_the_manifest_does_not_name_are_refused(scene: Scene) -> None:
    """Each a valid blob under its own name, and downloaded: the layout as a whole is
    checked before anything is kept."""
    extra = {f"extra {i} {scene.canaries.dir}\n".encode() for i in range(3)}
    scene.forge([*_honest(scene), *((f"blobs/sha256/{digest_of(x).hash}", digest_of(x))
                                    for x in extra)],
                {**_honest_blobs(scene), **{digest_of(x).hash: x for x in extra}})
    _refused(scene, scene.build())


def test_a_record_missing_a_blob_of_its_manifest_is_refused(scene: Scene) -> None:
    honest = [(rel, d) for rel, d in _honest(scene)]
    layer = max((x for x in honest if x[0].startswith("blobs/")), key=lambda x: x[1].size_bytes)
    scene.forge([x for x in honest if x != layer], _honest_blobs(scene))
    _refused(scene, scene.build())


def test_an_index_naming_another_image_is_refused(scene: Scene) -> None:
    """index.json names the manifest of another image whose blobs are not all there."""
    other = scene.files(scene.base / "out-local" / "bootstrap-base")
    files = {**scene.files(), "index.json": other["index.json"]}
    scene.forge_layout(files)
    _refused(scene, scene.build())


@pytest.mark.parametrize("kind", ["directory", "symlink", "file-symlink"])
def test_a_record_holding_more_than_files_is_refused(scene: Scene, kind: str) -> None:
    extra: dict[str, Any] = {}
    if kind == "directory":
        extra["output_directories"] = [re_pb2.OutputDirectory(
            path="blobs", tree_digest=digest_of(b""))]
    elif kind == "symlink":
        extra["output_symlinks"] = [re_pb2.OutputSymlink(path="x", target="/etc")]
    else:
        extra["output_file_symlinks"] = [re_pb2.OutputSymlink(path="x", target="/etc/passwd")]
    scene.forge(_honest(scene), _honest_blobs(scene), **extra)
    _refused(scene, scene.build())


def test_a_record_of_more_files_than_a_layout_has_is_refused(scene: Scene) -> None:
    """MAX_FILES + 1 names, each a blob the CAS has (one empty blob would be named
    once only): refused before any is read."""
    honest = _honest(scene)
    fillers = [str(i).encode() for i in range(MAX_FILES + 1 - len(honest))]
    scene.forge([*honest, *((f"blobs/sha256/{digest_of(x).hash}", digest_of(x))
                            for x in fillers)],
                {**_honest_blobs(scene), **{digest_of(x).hash: x for x in fillers}})
    _refused(scene, scene.build())


def test_sizes_that_are_no_blobs_are_refused(scene: Scene, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    """Served as it is (a service that does not check completeness): a layer of 2**62
    bytes, index.json of -1."""
    result = re_pb2.ActionResult(exit_code=0)
    for rel, d in _honest(scene):
        if rel.startswith("blobs/"):
            d = re_pb2.Digest(hash=d.hash, size_bytes=1 << 62)
        result.output_files.add(path=rel, digest=d)
    _serve(monkeypatch, scene, result)
    _refused(scene, scene.build(), served=True)
    [index] = [f for f in result.output_files if f.path == "index.json"]
    index.digest.size_bytes = -1
    shutil.rmtree(scene.base / "victim")
    shutil.rmtree(scene.base / "out-victim")
    _refused(scene, scene.build(), served=True)


@pytest.mark.parametrize("change", ["oci-layout", "oci-layout-version", "index-manifests"])
def test_the_honest_image_with_other_layout_files_is_refused(scene: Scene, change: str
                                                             ) -> None:
    """The image's own blobs (its digest is the honest one, so ``build --check`` would
    pass) with an ``oci-layout`` or an ``index.json`` that no digest covers: kilobytes of
    terminal escapes as the layout marker, or a second manifest beside the verified one
    (tools that read the layout then refuse it, or take the other). Before the fix both
    were taken and copied into out/ as they were."""
    files = scene.files()
    if change == "oci-layout":
        files["oci-layout"] = ESCAPES.encode() + b" not a layout" * 3000
    elif change == "oci-layout-version":
        files["oci-layout"] = b'{"imageLayoutVersion":"9.9.9"}'
    else:
        index = json.loads(files["index.json"])
        index["manifests"].append({**index["manifests"][0], "digest": "sha256:" + "0" * 64})
        files["index.json"] = json.dumps(index).encode()
    scene.forge_layout(files)
    _refused(scene, scene.build())
    assert (scene.base / "out-victim" / PACKAGE / "oci-layout").read_bytes() == \
        (scene.layout / "oci-layout").read_bytes()
    assert (scene.base / "out-victim" / PACKAGE / "index.json").read_bytes() == \
        (scene.layout / "index.json").read_bytes()


# -- a valid forged image: accepted and attributed, and only where a record is asked for --

#: a worker name with escapes (OSC 52, clear screen, colour), a newline and 1 MiB of text
WORKER = ESCAPES + "evil\nbuilder" + "W" * (1 << 20)


def _forge_other(scene: Scene) -> str:
    """Record another valid image (bootstrap-base's) as the package's; its digest."""
    other = scene.base / "out-local" / "bootstrap-base"
    scene.forge_layout(scene.files(other), worker=WORKER)
    return str(json.loads((other / "index.json").read_text())["manifests"][0]["digest"])


def test_a_valid_forged_image_is_taken_attributed_and_its_worker_shown_safely(
        scene: Scene) -> None:
    forged = _forge_other(scene)
    r = scene.build()
    assert r.returncode == 0, r.stderr
    assert _digest(r) == forged  # a claim: accepted (docs/trust-model.md)
    [event] = _taken(r)
    assert event["service"] == scene.cluster.endpoint and event["manifest_digest"] == forged
    [result] = [x for x in json.loads(r.stdout)["results"] if x["package"] == PACKAGE]
    assert result["shared"] == {k: event[k] for k in result["shared"]}
    # the worker's name: printable ASCII, at most 80 characters, wherever it is shown
    for shown in (event["worker"], result["shared"]["worker"]):
        assert shown.isascii() and shown.isprintable() and 0 < len(shown) <= 80
    # words: no terminal escape reaches the terminal, in any text shown
    assert "\x1b" not in r.stderr + r.stdout and len(r.stderr_bytes) < 100_000
    scene.canaries.assert_unchanged()
    # kept apart: a build without --remote on the same cache and out/ builds the package
    # itself, and never took the forged image from the shared area
    assert (scene.entry() / "image").is_dir()
    r = scene.build(remote=False)
    assert r.returncode == 0, r.stderr
    assert _digest(r) == scene.digest and _taken(r) == []
    assert json.loads((scene.base / "out-victim" / PACKAGE / "index.json").read_text()
                      )["manifests"][0]["digest"] == scene.digest
    # and with --remote again: the builder's own cache entry comes first
    r = scene.build()
    assert r.returncode == 0 and _digest(r) == scene.digest and _taken(r) == []


def test_a_build_without_remote_never_builds_on_a_taken_dependency(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """bootstrap-base's record is a valid forged image (its files and one more); a
    --remote build takes it and builds the package on it. A build without --remote on
    that cache and out/ builds bootstrap-base itself (its image in out/ is the taken
    one): the package's honest image."""
    scene = _scene(remote_cluster, tmp_path, own_base=True)
    base = replace(scene, ident=_ident(scene.base / "local", "bootstrap-base"))
    base.forge_layout(_with_extra_file(scene.base / "out-local" / "bootstrap-base"))
    r = scene.build()
    assert r.returncode == 0, r.stderr
    [taken] = [e for e in _events(r) if e["event"] == "image"]
    assert taken["package"] == "bootstrap-base" and taken["worker"] == "forger"
    assert _stage_keys(scene.base / "victim") & _stage_keys(scene.base / "local") == set()
    r = scene.build(remote=False)
    assert r.returncode == 0, r.stderr
    assert _digest(r) == scene.digest
    assert not [e for e in _events(r) if e["event"] == "image"]
    scene.canaries.assert_unchanged()


@pytest.mark.parametrize("flags", [("--remote-no-images",), ("--remote-no-cache",),
                                   ("--no-cache",)])
def test_no_image_is_taken_when_the_build_says_so(scene: Scene, flags: tuple[str, ...]
                                                  ) -> None:
    _forge_other(scene)
    before = scene.record()
    r = scene.build("victim", *flags)
    assert r.returncode == 0, r.stderr
    assert _digest(r) == scene.digest and _taken(r) == []
    assert not os.path.lexists(scene.base / "victim" / AREA)
    # and none is recorded: the forged record is still there (a fresh or uncached build
    # is no claim to share; --remote-no-images records none)
    assert scene.record() == before
    scene.canaries.assert_unchanged()


def test_challenge_remote_never_takes_a_recorded_image(scene: Scene) -> None:
    """The image in out/ is the honest one; a forged record of the package must not
    answer the challenge's rebuild (it would differ, or worse, agree with a forged out/)."""
    r = scene.build(remote=False)
    assert r.returncode == 0
    _forge_other(scene)
    r = rootseed("challenge", PACKAGE, "--tree", str(scene.tree), "--cache-dir",
                 str(scene.base / "victim"), "--out", str(scene.base / "out-victim"),
                 "--offline", "--json", "--remote", scene.cluster.endpoint,
                 cwd=scene.base, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["verdict"] == "identical"
    scene.canaries.assert_unchanged()


# -- what the builder keeps of a taken image: used again only as it was taken -------------

def _state(root: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    """Every path below ``root`` (links not followed): kind and mode, inode, mtime, bytes."""
    found = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = os.lstat(p)
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else None
        found[str(p.relative_to(root))] = (st.st_mode, st.st_ino, st.st_mtime_ns, data)
    return found


def _took(scene: Scene) -> Path:
    """An honest record (builder a's), taken by the victim; its kept entry."""
    r = scene.build("a")
    assert r.returncode == 0 and _digest(r) == scene.digest, r.stderr
    r = scene.build()
    assert r.returncode == 0, r.stderr
    assert [e["manifest_digest"] for e in _taken(r)] == [scene.digest]
    entry = scene.entry()
    assert (entry / RECORD).is_file() and (entry / "image" / "index.json").is_file()
    return entry


#: End to end here: the tampers with links, FIFOs, another entry swapped in and a
#: changed oci-layout; a changed blob, another image (with or without its record
#: rewritten), a second manifest and an extra file in a kept entry are tested without a
#: service in tests/test_shared_images.py (the same SharedCache check decides them).
TAMPERS = ["swap", "fifo", "image-link", "blobs-link", "entry-link", "oci-layout",
           "fifo-index", "fifo-blob"]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_a_changed_kept_image_is_never_used(scene: Scene, tamper: str) -> None:
    """The kept entry is changed into another valid image (bootstrap-base's, which the
    victim kept as well), or led elsewhere by a link: the next build takes the record
    again from the service (the honest image) and never uses, follows or removes what a
    link leads to."""
    entry = _took(scene)
    image = entry / "image"
    other = scene.base / "out-local" / "bootstrap-base"
    host = scene.canaries.dir.parent / "planted"  # a directory of the "host" (not ours)
    host.mkdir()
    if tamper == "blob":  # a layer's bytes changed, size kept
        layer = max((p for p in (image / "blobs" / "sha256").iterdir()),
                    key=lambda p: p.stat().st_size)
        data = bytearray(layer.read_bytes())
        data[len(data) // 2] ^= 0xFF
        os.chmod(layer, 0o644)
        layer.write_bytes(bytes(data))
    elif tamper in ("layout", "record"):  # another valid image in its place
        shutil.rmtree(image)
        shutil.copytree(other, image)
        if tamper == "record":  # the record rewritten to name it (its MAC cannot be)
            record = json.loads((entry / RECORD).read_text())
            record["manifest"] = json.loads((other / "index.json").read_text()
                                            )["manifests"][0]["digest"]
            (entry / RECORD).write_text(json.dumps(record))
    elif tamper == "swap":  # bootstrap-base's kept entry, whole, record and all
        [theirs] = [e for e in entry.parent.iterdir() if e != entry]
        shutil.rmtree(entry)
        shutil.copytree(theirs, entry, symlinks=True)
    elif tamper == "fifo":
        (entry / RECORD).unlink()
        os.mkfifo(entry / RECORD)
    elif tamper == "image-link":
        shutil.copytree(other, host / "image")
        shutil.rmtree(image)
        image.symlink_to(host / "image")
    elif tamper == "blobs-link":
        shutil.copytree(image / "blobs", host / "blobs")
        shutil.rmtree(image / "blobs")
        (image / "blobs").symlink_to(host / "blobs")
    elif tamper == "entry-link":  # the entry, copied whole to the host, linked instead
        shutil.copytree(entry, host / "entry", symlinks=True)
        shutil.rmtree(entry)
        entry.symlink_to(host / "entry")
    elif tamper == "oci-layout":  # no digest or seal covers it: out/ would get it
        os.chmod(image / "oci-layout", 0o644)
        (image / "oci-layout").write_bytes(ESCAPES.encode() + b" not a layout")
    elif tamper == "index":  # a second manifest beside the verified one
        index = json.loads((image / "index.json").read_text())
        index["manifests"].append({**index["manifests"][0], "digest": "sha256:" + "0" * 64})
        (image / "index.json").write_text(json.dumps(index))
    elif tamper == "extra-file":  # a file the manifest does not name
        (image / "blobs" / "sha256" / ("0" * 64)).write_bytes(b"extra\n")
    else:  # a FIFO in place of index.json or of a blob: never opened to block on
        victim = image / "index.json" if tamper == "fifo-index" else max(
            (image / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
        victim.unlink()
        os.mkfifo(victim)
    shutil.rmtree(scene.base / "out-victim")  # out/ is written anew from what is used
    planted = _state(host)
    r = scene.build()
    assert r.returncode == 0, r.stderr
    assert _digest(r) == scene.digest
    assert [e["manifest_digest"] for e in _taken(r)] == [scene.digest]  # taken again
    # words: no refusal warning for people, and no traceback, in what the user sees
    assert NOT_TAKEN not in r.stderr and "Traceback" not in r.stderr
    assert _state(host) == planted  # nothing followed into the host, nothing removed
    assert not entry.is_symlink() and not image.is_symlink()
    assert not (image / "blobs").is_symlink() and (entry / RECORD).is_file()
    for name in ("oci-layout", "index.json"):
        assert (scene.base / "out-victim" / PACKAGE / name).read_bytes() == \
            (scene.layout / name).read_bytes()
    _no_leftovers(scene)
    scene.canaries.assert_unchanged()


def test_a_link_in_place_of_the_shared_area_is_never_followed(scene: Scene) -> None:
    """``<cache>/shared`` is a link to a copy of it elsewhere (valid records, valid
    images): nothing there is used or changed; the package is built step by step."""
    entry = _took(scene)
    host = scene.canaries.dir.parent / "planted"
    shutil.copytree(entry.parent, host, symlinks=True)
    shutil.rmtree(entry.parent)
    entry.parent.symlink_to(host)
    planted = _state(host)
    r = scene.build()
    assert r.returncode == 0, r.stderr
    assert _digest(r) == scene.digest and _taken(r) == []
    # words: the warning for people names the package, the service and the reason
    assert f"core-app: the image recorded on {scene.cluster.endpoint} {NOT_TAKEN}: " \
           f"{entry.parent} is a symbolic link" in r.stderr
    assert _state(host) == planted
    assert entry.parent.is_symlink()  # left as it is (never written through)
    _no_leftovers(scene)
    scene.canaries.assert_unchanged()


# -- builders at once, a builder killed mid-take, pruning ----------------------------------

def _argv(scene: Scene, cache: str) -> list[str]:
    return ["build", PACKAGE, "--remote", scene.cluster.endpoint, "--tree", str(scene.tree),
            "--cache-dir", str(scene.base / cache), "--out", str(scene.base / f"out-{cache}"),
            "--offline", "--json"]


def test_two_builders_taking_one_image_at_once(scene: Scene) -> None:
    r = scene.build("a")
    assert r.returncode == 0, r.stderr
    procs = [subprocess.Popen([sys.executable, "-m", "rootseed", *_argv(scene, "victim")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "Traceback" not in stderr, stderr
        assert {x["package"]: x["manifest_digest"] for x in json.loads(stdout)["results"]
                }[PACKAGE] == scene.digest
    assert [e.name for e in (scene.base / "victim" / AREA).iterdir()
            if not e.name.startswith(".")].count(ident_name(scene.ident)) == 1
    _no_leftovers(scene)
    scene.canaries.assert_unchanged()


#: ``rootseed ARGS`` that stops for good (until killed) at a point of a take
_STOPPING = """
import os, sys, time
from pathlib import Path
import rootseed.engine.shared as shared
from rootseed.remote.client import Remote
from rootseed.cli import main

def stop():
    Path(os.environ["STOPPED"]).touch()
    time.sleep(600)

if os.environ["STOP_AT"] == "fetch":  # the first file of the image written, in work/
    real_read = Remote.read_file
    def read_file(self, d, dest, mode, *, data=None):
        real_read(self, d, dest, mode, data=data)
        if "entry/image" in str(dest):
            stop()
    Remote.read_file = read_file
else:  # the entry in place, the take not returned yet (its result not made)
    shared.SharedImage = lambda *args, **kwargs: stop()
main(sys.argv[1:])
"""


@pytest.mark.parametrize("stop_at", ["fetch", "placed"])
def test_a_builder_killed_mid_take(scene: Scene, stop_at: str) -> None:
    """Killed (SIGKILL) while the image's files arrive, or with the entry in place before
    the take returns: no entry of half an image, nothing in out/; the next build takes the
    image (a whole kept entry is verified again in full) and sweeps the dead one's work."""
    r = scene.build("a")
    assert r.returncode == 0, r.stderr
    stopped = scene.base / "stopped"
    proc = subprocess.Popen([sys.executable, "-c", _STOPPING, *_argv(scene, "victim")],
                            env={**os.environ, "STOPPED": str(stopped), "STOP_AT": stop_at},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not stopped.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    area = scene.base / "victim" / AREA
    kept = [e for e in area.iterdir() if not e.name.startswith(".")] if area.exists() else []
    assert len(kept) == (0 if stop_at == "fetch" else 1)
    for e in kept:  # a whole image, with its record
        assert (e / RECORD).is_file() and (e / "image" / "index.json").is_file()
    out = scene.base / "out-victim"
    assert not out.exists() or [p.name for p in out.iterdir() if p.name.startswith(".")] == []
    r = scene.build()
    assert r.returncode == 0 and _digest(r) == scene.digest, r.stderr
    assert [e["manifest_digest"] for e in _taken(r)] == [scene.digest]
    _no_leftovers(scene)
    scene.canaries.assert_unchanged()


def test_cache_prune_removes_the_shared_area_and_never_follows_a_link(scene: Scene
                                                                      ) -> None:
    entry = _took(scene)
    cache = ["--cache-dir", str(scene.base / "victim")]
    du = rootseed("cache", "du", *cache, "--json")
    assert du.returncode == 0, du.stderr
    assert "shared" in du.stdout
    host = scene.canaries.dir.parent / "planted"
    shutil.copytree(entry.parent, host, symlinks=True)
    moved = scene.base / "shared-moved"
    entry.parent.rename(moved)
    entry.parent.symlink_to(host)
    planted = _state(host)
    r = rootseed("cache", "prune", "--keep-days", "0", *cache, "--json")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert _state(host) == planted
    entry.parent.unlink()
    moved.rename(entry.parent)
    r = rootseed("cache", "prune", "--keep-days", "0", *cache, "--json")
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(entry)
    scene.canaries.assert_unchanged()


# -- a valid image whose layer is hostile, for a package whose [outputs] unpack it ----------

def _layout(layer: bytes) -> dict[str, bytes]:
    """A valid OCI layout of one uncompressed layer (the bytes of its files)."""
    def desc(media: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media, "digest": f"sha256:{hashlib.sha256(data).hexdigest()}",
                "size": len(data)}
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [
                             f"sha256:{hashlib.sha256(layer).hexdigest()}"]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": desc("application/vnd.oci.image.config.v1+json", config),
        "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer)]}).encode()
    index = json.dumps({"schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [desc("application/vnd.oci.image.manifest.v1+json",
                                           manifest)]}).encode()
    return {"oci-layout": MARKER, "index.json": index,
            **{f"blobs/sha256/{hashlib.sha256(b).hexdigest()}": b
               for b in (config, manifest, layer)}}


@pytest.mark.parametrize("layer", ["hostile", "other-t"])
def test_a_forged_image_failing_the_pinned_outputs_is_built_instead(
        remote_cluster: Cluster, tmp_path: Path, layer: str) -> None:
    """A valid image recorded for a package whose ``[outputs]`` pin /t: one whose layer
    climbs out (``../``), links to the host and writes through the link, or one with
    another /t. It is unpacked into the cache (never onto the host), fails, and is
    refused like any other false record: the package is built step by step. (Before:
    the build failed, blaming *the build* for not being what package.toml pins.)"""
    scene = _scene(remote_cluster, tmp_path, pinned=True)
    host = scene.canaries.dir
    members = [reg("t", b"forged\n")]
    if layer == "hostile":
        members += [reg(f"../../../../../../..{host}/pwned", b"pwned\n"),
                    link("etc", str(host / "etc")), reg("etc/passwd", b"pwned\n"),
                    link("hard", str(host / "secret"), hard=True)]
    scene.forge_layout(_layout(tar_bytes(members)))
    _refused(scene, scene.build(), kept=True)
    # the record is the builder's own now; the forged image it kept is never used:
    # without the stage cache to answer first, the service's current record (the
    # builder's honest image) is what a take takes
    shutil.rmtree(scene.base / "victim" / "builds")
    shutil.rmtree(scene.base / "out-victim")
    r = scene.build()
    assert r.returncode == 0, r.stderr
    [taken] = _taken(r)
    assert taken["worker"].startswith("builder ") and taken["fetched"]
    # words: no refusal warning for people: the builder's honest record is taken
    assert _digest(r) == scene.digest and NOT_TAKEN not in r.stderr
    scene.canaries.assert_unchanged()


@pytest.mark.parametrize("where", ["index", "manifest", "layer-name"])
def test_megabytes_of_text_in_a_forged_layout_are_not_repeated_to_the_user(
        remote_cluster: Cluster, tmp_path: Path, where: str) -> None:
    """The reasons a layout or a layer is refused quote what they refuse: a digest of
    3 MB in index.json or in the manifest, a layer member named by 1 MB of path (for a
    package whose pins unpack it). The warning stays a line."""
    scene = _scene(remote_cluster, tmp_path, pinned=where == "layer-name")
    huge = "sha256:" + "x" * (3 << 20)
    if where == "layer-name":
        files = _layout(tar_bytes([reg("t", b"forged\n"), reg("../" + "a/" * (1 << 19), b"")]))
    else:
        files = scene.files()
        if where == "index":
            index = json.loads(files["index.json"])
            index["manifests"][0]["digest"] = huge
            files["index.json"] = json.dumps(index).encode()
        else:
            manifest_name = "blobs/sha256/" + scene.digest.removeprefix("sha256:")
            manifest = json.loads(files.pop(manifest_name))
            manifest["layers"][0]["digest"] = huge
            data = json.dumps(manifest).encode()
            files["blobs/sha256/" + hashlib.sha256(data).hexdigest()] = data
            index = json.loads(files["index.json"])
            index["manifests"][0].update(digest="sha256:" + hashlib.sha256(data).hexdigest(),
                                         size=len(data))
            files["index.json"] = json.dumps(index).encode()
    scene.forge_layout(files)
    r = scene.build()
    _refused(scene, r, kept=where == "layer-name")
    assert len(r.stderr_bytes) < 100_000


def _with_extra_file(layout: Path) -> dict[str, bytes]:
    """The image in ``layout`` again, its layer's files plus one (one uncompressed
    layer): every pinned output as it is, another image digest."""
    import gzip
    import io
    import tarfile

    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_bytes())
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for desc in manifest["layers"]:
        data = (blobs / desc["digest"][7:]).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar.getmembers():
                f = tar.extractfile(m) if m.isreg() else None
                members.append((m, f.read() if f else None))
    return _layout(tar_bytes([*members, reg("forged", b"a backdoor\n")]))


def test_bootstrap_remote_never_reports_a_forged_image_as_verified(
        remote_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bootstrap --demo --remote`` where the service holds a valid forged image for
    every package of the chain (served here, not stored: the shipped examples' records
    belong to every test), each with the pinned outputs and one more file: taken (a
    claim), but the bootstrap compares the recorded digests and fails; it never
    reports the forged chain as verified."""
    from rootseed.remote.images import RemoteImages

    canaries = Canaries(tmp_path)
    local = rootseed("bootstrap", "--demo", "--offline", "--json", "--cache-dir",
                     str(tmp_path / "local"), "--out", str(tmp_path / "out-local"),
                     timeout=600)
    assert local.returncode == 0, local.stderr
    served: list[str] = []

    def fetch(self: RemoteImages, ident: ImageIdent, dest: Path) -> dict[str, object]:
        served.append(ident.package)
        (dest / "blobs" / "sha256").mkdir(parents=True)
        for rel, data in _with_extra_file(tmp_path / "out-local" / ident.package).items():
            (dest / rel).write_bytes(data)
        return {"executor": "remote", "remote_cached": True, "image": True,
                "service": self.where, "worker": "forger", "record": "forged"}

    def record(self: RemoteImages, ident: ImageIdent) -> str:
        return "forged"

    def store(self: RemoteImages, ident: ImageIdent, layout: Path, files: list[str]) -> None:
        pass  # the shipped examples' records stay as they are

    monkeypatch.setattr(RemoteImages, "record", record)
    monkeypatch.setattr(RemoteImages, "fetch", fetch)
    monkeypatch.setattr(RemoteImages, "store", store)
    remote = rootseed("bootstrap", "--demo", "--offline", "--json", "--cache-dir",
                      str(tmp_path / "remote"), "--out", str(tmp_path / "out-remote"),
                      "--remote", remote_cluster.endpoint, timeout=600)
    assert served  # the forged records were asked for and taken
    assert remote.returncode != 0
    assert json.loads(remote.stdout)["error"]["kind"] == "digest-mismatch"
    assert "Traceback" not in remote.stderr
    canaries.assert_unchanged()


def test_a_disk_that_fills_during_a_take(scene: Scene, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    """The disk fills while the image's files arrive (a record may name any blobs the
    CAS has, up to MAX_FILES of them): a warning, and the package is built step by step
    (before: "internal error", exit 70), nothing half-written."""
    import errno

    r = scene.build("a")
    assert r.returncode == 0, r.stderr
    real = Remote.read_file

    def read_file(self: Remote, d: re_pb2.Digest, dest: Path, mode: int, *,
                  data: bytes | None = None) -> None:
        if "entry/image" in str(dest):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))
        real(self, d, dest, mode, data=data)

    monkeypatch.setattr(Remote, "read_file", read_file)
    r = scene.build()
    # words: not the internal-error text: a full disk is a warning, not a crash
    assert r.returncode == 0 and "internal error" not in r.stderr, r.stderr
    assert f"core-app: the image recorded on {scene.cluster.endpoint} {NOT_TAKEN}: [Errno " \
           f"{errno.ENOSPC}] {os.strerror(errno.ENOSPC)}" in r.stderr
    assert _digest(r) == scene.digest and _taken(r) == []  # built step by step
    assert not os.path.lexists(scene.entry())
    _no_leftovers(scene)
    scene.canaries.assert_unchanged()


def test_a_service_streaming_more_than_a_blob_has_is_cut_off(
        scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile service answers the read of a large blob (over the batch limit, so
    streamed) with far more bytes than its digest says: the client stops at the size it
    asked for, instead of writing all of it to disk before checking (an endless stream
    filled the disk)."""
    from rootseed.remote.client import BATCH_LIMIT, CHUNK

    size = BATCH_LIMIT + 1
    data = b"x" * size
    big = digest_of(data)
    files = [*_honest(scene), (f"blobs/sha256/{big.hash}", big)]
    result = re_pb2.ActionResult(exit_code=0)
    for rel, d in files:
        result.output_files.add(path=rel, digest=d)
    with Remote(scene.cluster.endpoint) as remote:
        remote.upload(_honest_blobs(scene))  # all but the big one, which the CAS lacks
    _serve(monkeypatch, scene, result)
    real = Remote._read_stream
    sent = [0]

    def endless(self: Remote, d: re_pb2.Digest) -> Iterator[bytes]:
        if d.hash != big.hash:
            yield from real(self, d)
            return
        while sent[0] < 1 << 30:  # 1 GiB: "endless" for the test
            sent[0] += CHUNK
            yield b"x" * CHUNK

    monkeypatch.setattr(Remote, "_read_stream", endless)
    r = scene.build()
    _refused(scene, r, served=True)
    # words: the client's mismatch words for people, which name the blob and its size
    assert f"blob {big.hash}/{size} read from the CAS hashes to" in r.stderr
    assert sent[0] <= size + CHUNK


def test_an_image_kept_from_one_service_is_not_taken_for_another(scene: Scene) -> None:
    """Taken from one service (here: the cluster as 127.0.0.1), then a build names
    another (the same cluster as localhost, as another service would be): the kept
    claim of the first is not used under the second's name (before: it was, with the
    message saying "taken from" the second); the image is taken from the one asked."""
    _took(scene)
    other = scene.cluster.endpoint.replace("127.0.0.1", "localhost")
    assert other != scene.cluster.endpoint
    r = rootseed("build", PACKAGE, "--remote", other, "--tree", str(scene.tree),
                 "--cache-dir", str(scene.base / "victim"), "--out",
                 str(scene.base / "out-other"), "--offline", "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    [event] = _taken(r)
    assert event["service"] == other and event["fetched"] is True
    [result] = [x for x in json.loads(r.stdout)["results"] if x["package"] == PACKAGE]
    assert result["shared"]["service"] == other
    scene.canaries.assert_unchanged()


def test_a_hostile_service_error_text_never_reaches_the_terminal(
        scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's own error details (gRPC status details, which the client quotes)
    with terminal escapes and megabytes of text, answering the record's lookup: one
    printable warning line, and the package is built step by step."""
    from rootseed.remote import RemoteError

    action, _ = record_action(scene.ident)
    wanted = digest_of(action.SerializeToString(deterministic=True))
    real = Remote.cached_result

    def cached_result(self: Remote, d: re_pb2.Digest) -> re_pb2.ActionResult | None:
        if d == wanted:  # as client._rpc_error words a status the service sent
            raise RemoteError("GetActionResult: the remote service answered INTERNAL: "
                              + ESCAPES + "\nerror: fake line\n" + "E" * (1 << 20))
        return real(self, d)

    monkeypatch.setattr(Remote, "cached_result", cached_result)
    r = scene.build()
    _refused(scene, r, served=True)
    # words: no escape and no made-up error line from the service reach the terminal
    assert "\x1b" not in r.stderr and "\nerror: fake line" not in r.stderr
    assert len(r.stderr_bytes) < 100_000
