"""``rootseed build --remote``: RUN steps as REAPI actions on the run's BuildGrid cluster
(tests/remotecluster.py), giving exactly the images (and the per-action layers) a local
build gives, a shared action cache, and one clear error when the service is away."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from buildtree import BUSYBOX, app_package, make_tree
from clirun import rootseed
from kinds import cli_error
from remotecluster import Cluster
from rootseed import shipped
from rootseed.engine.digests import read_digests
from rootseed.errors import ErrorKind

pytestmark = pytest.mark.skipif(
    not BUSYBOX.is_file() or shutil.which("bwrap") is None,
    reason="needs a static busybox at /usr/bin/busybox and bubblewrap")

#: Every REAPI caveat a step can meet (remote/executor.py's docstring says how each is
#: handled): the hostname, modes with setuid, symlinks, empty directories, deletions, a file only
#: touched, an old mtime, /tmp, a working directory below the root, a new hardlink (run
#: locally), a #! heredoc (run locally) and a directory made again (opaque locally: run
#: locally).
CAVEATS = """\
FROM rs/bootstrap-base AS made
RUN mkdir -p /d/e /d/empty && echo a > /d/a && chmod 4755 /d/a && ln -s a /d/l \\
    && echo t > /tmp/t && touch -d @1000000 /d/old && echo gone > /d/gone \\
    && hostname > /d/hostname
WORKDIR /d/e
RUN rm /d/gone && echo b > b && touch /greeting && chmod 0700 /d/e && rmdir /d/empty \\
    && mkdir /d/empty2 && pwd > /d/pwd
RUN echo x > /d/x && ln /d/x /d/y
RUN <<EOF
#!/bin/sh
echo script > /d/script
EOF
RUN echo same > /d/s1 && cp /d/s1 /d/s2 && sleep 1 && echo same > /d/s3
RUN rm -rf /d/e && mkdir /d/e && echo n > /d/e/n
FROM scratch AS final
COPY --from=made /d /d
COPY --from=made /greeting /greeting
"""


def _build(tree: Path, cache: Path, out: Path, *args: str) -> tuple[dict[str, Any],
                                                                   list[dict[str, Any]]]:
    r = rootseed("build", *args, "--tree", str(tree), "--cache-dir", str(cache),
                 "--out", str(out), "--offline", "--json", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    events = [json.loads(line) for line in r.stderr.splitlines() if line.startswith("{")]
    return json.loads(r.stdout), events


def _digests(result: dict[str, Any]) -> dict[str, str]:
    return {r["package"]: r["manifest_digest"] for r in result["results"]}


def _runs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The RUN steps that ran (not local cache hits)."""
    return [e for e in events if e["event"] == "end" and e["instruction"].startswith("RUN")]


def _layers(cache: Path) -> dict[tuple[str, str, int], str | None]:
    """Every recorded action layer digest, by (stage entry, stage, step)."""
    found = {}
    for record in (cache / "builds").glob("*/stage.json"):
        for action in json.loads(record.read_text()).get("actions", []):
            found[(record.parent.name, str(action["stage"]), action["step"])] = \
                action["digest"]
    return found


def test_remote_build_makes_the_local_images_and_layers(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    app_package(tree, CAVEATS)
    local, _ = _build(tree, tmp_path / "local", tmp_path / "out-local", "core-app")
    remote, events = _build(tree, tmp_path / "remote", tmp_path / "out-remote", "core-app",
                            "--remote", remote_cluster.endpoint, "--remote-no-images")
    assert _digests(remote) == _digests(local)
    # every action's layer too (the BuildKit exporter writes one layer per action)
    assert _layers(tmp_path / "remote") == _layers(tmp_path / "local")
    runs = _runs(events)
    by_line = {e["line"]: e for e in runs if e["package"] == "core-app"}
    assert by_line[8]["executor"] == "local" and "hardlink" in by_line[8]["reason"]
    assert by_line[9]["executor"] == "local" and "heredoc" in by_line[9]["reason"]
    assert by_line[14]["executor"] == "local" and "lost all its files" in by_line[14]["reason"]
    # cp within one clock tick can look like a link: local; the others ran remotely
    remote_runs = [e for e in runs if e["executor"] == "remote"]
    assert len(remote_runs) >= len(runs) - 4
    for e in remote_runs:
        assert e["worker"] and isinstance(e["remote_cached"], bool)
        if remote_cluster.workers:
            assert e["worker"] in remote_cluster.workers
    # the stage entry records who made each remote layer
    origins = [a.get("origin") for record in (tmp_path / "remote" / "builds").glob(
        "*/stage.json") for a in json.loads(record.read_text())["actions"]]
    assert any(o and o["executor"] == "remote" and o["worker"] for o in origins)
    # a local build on the remote build's cache: every action is a hit
    again, events = _build(tree, tmp_path / "remote", tmp_path / "out-again", "core-app")
    assert _digests(again) == _digests(local)
    assert _runs(events) == []


def test_examples_remote_then_second_builders_get_whole_images_or_every_action(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """A second builder takes each package's image whole, as the first one recorded it
    (remote/images.py): no step at all; with --remote-no-images, a third one is served
    every RUN step from the action cache instead. The same digests each time."""
    examples = shipped.examples()
    golden = read_digests(shipped.digests())
    first, events = _build(examples, tmp_path / "a", tmp_path / "out-a", "--all",
                           "--remote", remote_cluster.endpoint)
    built = {r["package"]: r["manifest_digest"].removeprefix("sha256:")
             for r in first["results"]}
    assert built == {name: golden[name] for name in built} and len(built) == 2
    if not [e for e in events if e["event"] == "image"]:  # (a reused service has them)
        assert _runs(events) and all(e["executor"] == "remote" for e in _runs(events))
        assert {r["outcome"] for r in first["results"]} == {"built"}
        assert not any("shared" in r for r in first["results"])

    second, events = _build(examples, tmp_path / "b", tmp_path / "out-b", "--all",
                            "--remote", remote_cluster.endpoint)
    assert _digests(second) == _digests(first)
    assert {r["outcome"] for r in second["results"]} == {"cached"}
    assert [e for e in events if e["event"] in ("start", "end", "cached")] == []
    taken = [e for e in events if e["event"] == "image"]
    assert sorted(e["package"] for e in taken) == sorted(built)
    for e in taken:
        assert e["executor"] == "remote" and e["remote_cached"] and e["image"]
        assert e["fetched"]
        assert e["service"] == remote_cluster.endpoint and e["worker"].startswith("builder ")
    assert all(r["shared"]["service"] == remote_cluster.endpoint for r in second["results"])
    for name in built:  # the same image and provenance in out/
        for f in ("index.json", "provenance.json"):
            assert (tmp_path / "out-b" / name / f).read_bytes() == \
                (tmp_path / "out-a" / name / f).read_bytes()

    third, events = _build(examples, tmp_path / "c", tmp_path / "out-c", "--all",
                           "--remote", remote_cluster.endpoint, "--remote-no-images")
    assert _digests(third) == _digests(first)
    assert not [e for e in events if e["event"] == "image"]
    runs = _runs(events)
    assert runs and all(e["executor"] == "remote" and e["remote_cached"] for e in runs)


def test_an_unreachable_service_is_one_error_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept").write_text("untouched\n")
    r = rootseed("build", "--all", "--tree", str(shipped.examples()), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(out), "--offline", "--remote",
                 "grpc://127.0.0.1:1", "--json", timeout=120)
    error = cli_error(r, ErrorKind.REMOTE, exit_code=1)
    assert "127.0.0.1:1" in error["message"]  # words: names the endpoint, for people
    assert sorted(os.listdir(out)) == ["kept"]
    assert (out / "kept").read_text() == "untouched\n"
    assert not list((tmp_path / "cache").glob("actions/*"))
    assert not list((tmp_path / "cache").glob("builds/*"))


def test_remote_needs_a_grpc_endpoint(tmp_path: Path) -> None:
    r = rootseed("build", "--all", "--tree", str(shipped.examples()), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--remote",
                 "127.0.0.1:50051", "--json")
    error = cli_error(r, ErrorKind.USAGE, exit_code=2)
    assert "grpc://HOST:PORT" in error["message"]  # words: says what to write, for people


@pytest.mark.mirror
@pytest.mark.start_first
def test_stage0_from_the_seed_remotely_is_the_recorded_digest(
        remote_cluster: Cluster, tmp_path: Path) -> None:
    """The real chain, every RUN step remote: the recorded bootstrap digest; then a second
    builder (--remote-no-images) is served every action by the service's cache, and a
    third takes the image the first recorded, whole. It needs none of the run's own
    builds, so it starts first (start_first), beside the local stage0 build."""
    mirror = os.environ["ROOTSEED_MIRROR"]
    recorded = read_digests(shipped.digests())["bootstrap-stage0"]
    taken: dict[str, list[dict[str, Any]]] = {}
    for cache, extra in (("a", ()), ("b", ("--remote-no-images",)), ("c", ())):
        result, events = _build(shipped.packages(), tmp_path / cache, tmp_path / f"o{cache}",
                                "bootstrap-stage0", "--mirror", mirror,
                                "--remote", remote_cluster.endpoint, *extra)
        assert _digests(result)["bootstrap-stage0"] == f"sha256:{recorded}"
        runs = _runs(events)
        taken[cache] = [e for e in events if e["event"] == "image"]
        if not taken[cache]:
            assert runs and all(e["executor"] == "remote" for e in runs)
        if cache == "b":  # every step looked up: all served by the action cache
            assert all(e["remote_cached"] for e in runs)
    # the image the first builder recorded (a reused service: an earlier one): taken
    # whole, no step run or looked up
    assert not taken["b"]
    assert [e["package"] for e in taken["c"]] == ["bootstrap-stage0"]
    assert _runs(events) == []
    assert (tmp_path / "oc" / "bootstrap-stage0" / "provenance.json").read_bytes() == \
        (tmp_path / "oa" / "bootstrap-stage0" / "provenance.json").read_bytes()


def test_challenge_remote_executes_the_rebuild_again(remote_cluster: Cluster,
                                                     tmp_path: Path) -> None:
    """The recorded build ran remotely, so the service's action cache holds its noise; an
    independent rebuild must not be answered from there: it differs."""
    tree = make_tree(tmp_path)
    app_package(tree, "FROM rs/bootstrap-base\nRUN head -c 16 /dev/urandom > /stamp\n")
    _build(tree, tmp_path / "cache", tmp_path / "out", "core-app",
           "--remote", remote_cluster.endpoint)
    r = rootseed("challenge", "core-app", "--tree", str(tree), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--offline",
                 "--json", "--remote", remote_cluster.endpoint, cwd=tmp_path, timeout=900)
    result = json.loads(r.stdout)
    assert r.returncode == 2, result
    assert result["verdict"] == "differs"
    assert [d["path"] for d in result["differences"]] == ["stamp"]
    assert f"remote={remote_cluster.endpoint}" in result["conditions"]


def test_bootstrap_demo_remote(remote_cluster: Cluster, tmp_path: Path) -> None:
    local = rootseed("bootstrap", "--demo", "--offline", "--json", "--cache-dir",
                     str(tmp_path / "local"), "--out", str(tmp_path / "out-local"))
    remote = rootseed("bootstrap", "--demo", "--offline", "--json", "--cache-dir",
                      str(tmp_path / "remote"), "--out", str(tmp_path / "out-remote"),
                      "--remote", remote_cluster.endpoint, timeout=600)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    ours, theirs = json.loads(local.stdout), json.loads(remote.stdout)
    assert theirs["manifest_digest"] == ours["manifest_digest"]
    assert theirs["tools"] == ours["tools"] and theirs["verified"] == ours["verified"]


def test_a_service_lost_mid_build_is_one_error_and_the_rerun_resumes(
        remote_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rootseed.remote import RemoteError
    from rootseed.remote.client import Remote

    tree = make_tree(tmp_path)
    app_package(tree, "FROM rs/bootstrap-base\nRUN echo one > /one\nRUN echo two > /two\n")
    real = Remote.execute
    calls: list[int] = []

    def flaky(self: Remote, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 4:  # the base's two RUN steps (its image is not taken whole: no
            # --remote-no-images), app's first: then the service is gone
            raise RemoteError("Execute: the remote service answered UNAVAILABLE")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Remote, "execute", flaky)
    r = rootseed("build", "core-app", "--tree", str(tree), "--cache-dir",
                 str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--offline",
                 "--remote", remote_cluster.endpoint, "--remote-no-images", "--json",
                 timeout=600)
    cli_error(r, ErrorKind.REMOTE, exit_code=1, package="core-app", line=3, step="RUN")
    assert not (tmp_path / "out" / "core-app").exists()
    monkeypatch.setattr(Remote, "execute", real)
    _, events = _build(tree, tmp_path / "cache", tmp_path / "out", "core-app",
                       "--remote", remote_cluster.endpoint, "--remote-no-images")
    app = [e for e in events if e["package"] == "core-app" and e["event"] in ("cached", "end")]
    assert [(e["line"], e["event"]) for e in app] == [(2, "cached"), (3, "end")]
