from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from rootseed.fetch import Fetcher, FetchError
from rootseed.tree import Source, Tree
from treegen import sha, write_package

GOOD = b"the pinned bytes\n" * 1000
GOOD_SHA = sha(GOOD)


class Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, bytes, int | None]]] = {}
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        status, body, claimed = self.routes.get(self.path, (404, b"no", None))
        self.send_response(status)
        self.send_header("Content-Length", str(claimed if claimed is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    Handler.routes = {
        "/good.tar": (200, GOOD, None),
        "/bad.tar": (200, b"tampered" + GOOD, None),
        "/truncated.tar": (200, GOOD[:100], len(GOOD)),
        "/error.tar": (500, b"oops", None),
    }
    Handler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def dead_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/good.tar"


def source(*mirrors: str, digest: str = GOOD_SHA, file: str = "good.tar") -> Source:
    return Source(id="s", hash=digest, version="1", file=file, mirrors=tuple(mirrors))


def cache_names(cache: Path) -> list[str]:
    d = cache / "sources" / "sha256"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_good_file(server: str, tmp_path: Path) -> None:
    path = Fetcher(tmp_path, progress=False).fetch(source(f"{server}/good.tar"))
    assert path.read_bytes() == GOOD
    assert path == tmp_path / "sources" / "sha256" / GOOD_SHA


def test_fallback_in_order_past_bad_hash_404_truncated_refused(server: str,
                                                               tmp_path: Path) -> None:
    src = source(f"{server}/bad.tar", f"{server}/missing.tar", f"{server}/truncated.tar",
                 dead_url(), f"{server}/error.tar", f"{server}/good.tar")
    assert Fetcher(tmp_path, progress=False).fetch(src).read_bytes() == GOOD
    assert Handler.hits == ["/bad.tar", "/missing.tar", "/truncated.tar", "/error.tar",
                            "/good.tar"]
    assert cache_names(tmp_path) == [GOOD_SHA]


def test_all_fail_lists_every_mirror_and_leaves_nothing(server: str, tmp_path: Path) -> None:
    dead = dead_url()
    src = source(f"{server}/bad.tar", f"{server}/missing.tar", f"{server}/truncated.tar", dead)
    with pytest.raises(FetchError) as e:
        Fetcher(tmp_path, progress=False).fetch(src)
    text = e.value.message
    # words: the one FetchError lists each mirror tried and why, for people
    assert f"{server}/bad.tar: sha256 mismatch for good.tar: expected {GOOD_SHA}, got " \
           f"{sha(b'tampered' + GOOD)}" in text
    assert f"{server}/missing.tar: HTTP 404" in text
    assert f"{server}/truncated.tar:" in text and "truncated" in text
    assert f"{dead}: cannot connect" in text
    assert cache_names(tmp_path) == []  # no temp files, no unverified entries


def test_local_mirror_first_and_corrupt_copy_named(server: str, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "good.tar").write_bytes(GOOD)
    f = Fetcher(tmp_path / "c1", [mirror], progress=False)
    assert f.fetch(source(f"{server}/good.tar")).read_bytes() == GOOD
    assert Handler.hits == []  # never touched the network
    (mirror / "good.tar").write_bytes(GOOD[:-1] + b"X")
    with pytest.raises(FetchError) as e:
        Fetcher(tmp_path / "c2", [mirror], offline=True, progress=False).fetch(
            source(f"{server}/good.tar"))
    # words: the one FetchError lists each mirror tried and why, for people
    assert str(mirror / "good.tar") in e.value.message
    # a local file's own hash is never shown (package.toml chooses which file is read)
    assert f"the file does not match the pinned sha256 {GOOD_SHA}" in e.value.message
    assert sha(GOOD[:-1] + b"X") not in e.value.message
    assert "skipped (--offline)" in e.value.message
    assert Handler.hits == []


def test_offline_uses_cache(server: str, tmp_path: Path) -> None:
    Fetcher(tmp_path, progress=False).fetch(source(f"{server}/good.tar"))
    Handler.hits.clear()
    assert Fetcher(tmp_path, offline=True, progress=False).fetch(
        source(f"{server}/good.tar")).read_bytes() == GOOD
    assert Handler.hits == []


def test_tampered_cache_entry_is_dropped_and_refetched(server: str, tmp_path: Path) -> None:
    path = Fetcher(tmp_path, progress=False).fetch(source(f"{server}/good.tar"))
    path.chmod(0o644)
    path.write_bytes(b"evil")
    assert Fetcher(tmp_path, progress=False).fetch(
        source(f"{server}/good.tar")).read_bytes() == GOOD


def test_file_urls_absolute_and_tree_relative(tmp_path: Path) -> None:
    (tmp_path / "tree" / "mirror").mkdir(parents=True)
    (tmp_path / "tree" / "mirror" / "good.tar").write_bytes(GOOD)
    abs_url = (tmp_path / "tree" / "mirror" / "good.tar").as_uri()
    assert Fetcher(tmp_path / "c1", progress=False).fetch(source(abs_url)).read_bytes() == GOOD
    f = Fetcher(tmp_path / "c2", progress=False, base_dir=tmp_path / "tree")
    assert f.fetch(source("file:mirror/good.tar")).read_bytes() == GOOD


def test_file_urls_of_a_tree_stay_inside_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "mirror").mkdir(parents=True)
    (tree / "mirror" / "good.tar").write_bytes(GOOD)
    (tmp_path / "outside.tar").write_bytes(GOOD)
    (tree / "mirror" / "link.tar").symlink_to(tmp_path / "outside.tar")
    f = Fetcher(tmp_path / "c", progress=False, base_dir=tree)
    for url in ((tmp_path / "outside.tar").as_uri(), "file:../outside.tar",
                "file:mirror/link.tar"):
        with pytest.raises(FetchError) as e:
            f.fetch(source(url))
        # words: the mirror's line says why it was not read, for people
        assert "a file: mirror must name a file inside the tree" in e.value.message
        assert str(tmp_path) not in e.value.message.replace(url, "")  # no resolved path
    assert cache_names(tmp_path / "c") == []
    # an absolute URL of a file in the tree is fine
    assert f.fetch(source((tree / "mirror" / "good.tar").as_uri())).read_bytes() == GOOD


def test_size_limit_for_downloads_and_local_files(server: str, tmp_path: Path) -> None:
    (tmp_path / "good.tar").write_bytes(GOOD)
    f = Fetcher(tmp_path / "c", progress=False, max_bytes=len(GOOD) - 1)
    with pytest.raises(FetchError) as e:
        f.fetch(source(f"{server}/good.tar", (tmp_path / "good.tar").as_uri()))
    # words: each mirror's line says why it was not used, for people
    assert e.value.message.count(f"larger ({len(GOOD)} bytes) than the {len(GOOD) - 1} "
                                 "bytes a source may have") == 2
    assert cache_names(tmp_path / "c") == []
    assert Fetcher(tmp_path / "c", progress=False, max_bytes=len(GOOD)).fetch(
        source(f"{server}/good.tar")).read_bytes() == GOOD


def test_fetch_package_reports_all_missing(tmp_path: Path) -> None:
    write_package(tmp_path / "t", "a", "x", f'''
[package]
name = "x"
version = "1"
description = "d"
license = "MIT"
[sources.one]
hash = "{GOOD_SHA}"
mirrors = ["file:nowhere/one.tar"]
[sources.two]
hash = "{"e" * 64}"
mirrors = ["file:nowhere/two.tar"]
''', "FROM scratch\n")
    tree = Tree.load(tmp_path / "t")
    with pytest.raises(FetchError) as e:
        Fetcher(tmp_path / "c", offline=True, base_dir=tree.root).fetch_package(tree.get("a-x"))
    # words: the one FetchError names every source that failed, for people
    assert "2 of 2 sources of a-x" in e.value.message
    assert "one.tar" in e.value.message and "two.tar" in e.value.message
    assert e.value.hint is not None and "--mirror" in e.value.hint


CONCURRENT = """
import sys
from pathlib import Path
from rootseed.fetch import Fetcher
from rootseed.tree import Source
src = Source(id="s", hash=sys.argv[2], version="1", file="good.tar", mirrors=(sys.argv[3],))
print(Fetcher(Path(sys.argv[1]), progress=False).fetch(src).read_bytes() == Path(sys.argv[4]).read_bytes())
"""


def test_two_concurrent_processes_share_one_cache(tmp_path: Path) -> None:
    big = tmp_path / "big.tar"
    big.write_bytes(GOOD * 200)
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path / "cache"),
                               sha(big.read_bytes()), big.as_uri(), str(big)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate()[0].strip() for p in procs]
    assert outs == ["True"] * 4
    assert cache_names(tmp_path / "cache") == [sha(big.read_bytes())]


def test_each_mirror_tried_is_said_as_it_is_tried(tmp_path: Path, server: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``build --stage`` tries hundreds of URLs: each attempt and why it failed is a plain
    line on stderr as it happens (not only at the end)."""
    dead = dead_url()
    path = Fetcher(tmp_path, progress=True).fetch(
        source(dead, f"{server}/error.tar", f"{server}/good.tar"))
    assert path.read_bytes() == GOOD
    err = capsys.readouterr().err
    assert f"fetching good.tar from {dead}\n" in err
    assert f"  {server}/error.tar: HTTP 500\n" in err
    assert err.index(f"from {server}/error.tar") < err.index(f"from {server}/good.tar")
