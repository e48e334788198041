"""``rootseed check``: each problem named once with file:line, typed, exit 1 on errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from clirun import Result, rootseed
from rootseed.tree import ProblemKind, Severity, Tree
from rootseed.tree.check import check_tree
from treegen import write_package

H = "a" * 64


def pkg(name: str, extra: str = "", version: str = 'version = "1.0"\n') -> str:
    return f'[package]\nname = "{name}"\n{version}{extra}'


def broken_tree(root: Path) -> Path:
    write_package(root, "a", "base", pkg("base"), "FROM scratch\nCOPY file.txt /\n")
    (root / "a" / "base" / "file.txt").write_text("x\n")
    write_package(root, "a", "ctx", pkg("ctx"),
                  "FROM stagex/a-base\nCOPY missing.txt /\nCOPY ../base/file.txt /\n"
                  "COPY *.patch /\n")
    write_package(root, "a", "src", pkg("src", f'''
[sources.s]
version = "2"
hash = "{H}"
mirrors = ["https://e.org/s-{{version}}.tar"]
[sources.s2]
hash = "{H}"
mirrors = ["https://e.org/s2-{{version}}.tar"]
'''), "FROM scratch\nARG S_SOURCE\nADD fetch/${S_SOURCE} .\nADD fetch/other.tar .\n"
          "ARG T_SOURCE\nCOPY --from=fetch ${T_SOURCE} /t\nARG S2_SOURCE\n"
          "COPY --from=fetch s2-1.0.tar /ok\nCOPY --from=fetch . /all\n")
    write_package(root, "a", "nover", pkg("nover", version=""),
                  "FROM scratch\nARG VERSION\nWORKDIR /src-${VERSION}\n")
    write_package(root, "a", "img", pkg("img"), "FROM alpine:3\n")
    write_package(root, "a", "sub", pkg("sub", 'subpackages = ["sub", "sub-dev"]\n'),
                  "FROM scratch AS package-sub\n")
    write_package(root, "a", "undecl", pkg("undecl"), "FROM scratch\nENV X=$NOPE\n")
    write_package(root, "a", "plan", pkg("plan"), "ARG B=x\nFROM scratch\nCOPY --from=${B} / /\n")
    write_package(root, "a", "syntax", pkg("syntax"), "FROM scratch\nBOGUS x\n")
    write_package(root, "a", "hash", pkg("hash", '[sources.s]\nhash = "abc"\n'
                                                 'mirrors = ["https://e.org/s"]\n'),
                  "FROM scratch\n")
    write_package(root, "a", "c1", pkg("c1"), "FROM stagex/a-c2\n")
    write_package(root, "a", "c2", pkg("c2"), "FROM scratch\nCOPY --from=stagex/a-c1 / /\n")
    write_package(root, "a", "user", pkg("user"), "FROM stagex/a-hash\n")  # blocked only
    (root / "a" / "mesa").mkdir()
    (root / "a" / "mesa" / "Containerfile").write_text("FROM scratch\n")
    return root


EXPECTED = {  # (kind, package, line) → a piece of the message
    (ProblemKind.MISSING_CONTEXT_FILE, "a-ctx", 2): "'missing.txt' is not in the package",
    # BuildKit cleans a context path inside the context: ../base/file.txt is base/file.txt
    (ProblemKind.MISSING_CONTEXT_FILE, "a-ctx", 3): "'base/file.txt' is not in the package",
    (ProblemKind.UNKNOWN_SOURCE, "a-src", 4): "fetch/other.tar is not a declared source",
    (ProblemKind.UNKNOWN_SOURCE, "a-src", 5): "T_SOURCE names no declared source",
    (ProblemKind.UNKNOWN_SOURCE, "a-src", 7): "source 's2' has no version of its own",
    (ProblemKind.NO_VERSION, "a-nover", 2): "VERSION has no value",
    (ProblemKind.UNKNOWN_IMAGE, "a-img", 1): "image 'alpine:3' is not built by this tree",
    (ProblemKind.NO_SUBPACKAGE_STAGE, "a-sub", None): "no stage 'package-sub-dev'",
    (ProblemKind.UNDECLARED_VARIABLE, "a-undecl", 2): "${NOPE} has no value",
    (ProblemKind.PLAN, "a-plan", None): "--from",
    (ProblemKind.CONTAINERFILE, "a-syntax", None): "BOGUS",
    (ProblemKind.BAD_HASH, "a-hash", None): "must be 64 lowercase hex",
    (ProblemKind.CYCLE, "a-c1", None): "dependency cycle: a-c1 -> a-c2 -> a-c1",
    (ProblemKind.NO_PACKAGE_TOML, "a-mesa", None): "Containerfile without a package.toml",
}


def test_every_problem_is_named_once(tmp_path: Path) -> None:
    tree = Tree.load(broken_tree(tmp_path / "t"))
    report = check_tree(tree)
    found = {(p.kind, p.package, p.line): p for p in report.problems}
    for key, needle in EXPECTED.items():
        assert key in found, f"{key} not reported; got {sorted(map(str, found))}"
        # words: the kind, package and line are the key; the message says what, for people
        assert needle in found[key].message, (key, found[key].message)
    assert len(report.problems) == len(EXPECTED), [p.describe() for p in report.problems]
    # the line points into the file named
    assert found[(ProblemKind.UNKNOWN_SOURCE, "a-src", 4)].where(tmp_path) == (
        "t/a/src/Containerfile:4")
    assert found[(ProblemKind.BAD_HASH, "a-hash", None)].where(tmp_path) == (
        "t/a/hash/package.toml: [sources.s] hash")
    assert {p.severity for p in report.warnings} == {Severity.WARNING}
    assert {p.kind for p in report.warnings} == {ProblemKind.UNDECLARED_VARIABLE,
                                                 ProblemKind.NO_PACKAGE_TOML}
    # a-user is blocked by a-hash: not a problem of its own, and not buildable
    assert tree.blocker("a-user") == ("a-hash", tree.broken["a-hash"])


def test_check_named_packages_only(tmp_path: Path) -> None:
    tree = Tree.load(broken_tree(tmp_path / "t"))
    report = check_tree(tree, ["a-src"])
    assert {p.package for p in report.problems} == {"a-src"}
    assert report.packages == ("a-src",)


def cli(*args: str) -> Result:
    return rootseed(*args)


def test_cli_lines_summary_json_and_exit_codes(tmp_path: Path) -> None:
    root = broken_tree(tmp_path / "t")
    r = cli("check", "--tree", str(root))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stdout.splitlines()
    assert "t/a/src/Containerfile:4: error: fetch/other.tar is not a declared source file " \
           "[unknown-source]" in lines
    assert lines[-1].endswith(f"{len(EXPECTED) - 2} errors, 2 warnings")
    r = cli("check", "--tree", str(root), "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["errors"] == len(EXPECTED) - 2 and data["warnings"] == 2
    assert {(p["kind"], p["package"], p["line"]) for p in data["problems"]} == {
        (k.value, pk, line) for k, pk, line in EXPECTED}
    # warnings alone exit 0
    r = cli("check", "a-undecl", "a-base", "--tree", str(root))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith(": 0 errors, 1 warning")


STAGEX = os.environ.get("ROOTSEED_STAGEX_TREE")


@pytest.mark.stagex_checkout
@pytest.mark.skipif(not STAGEX, reason="set ROOTSEED_STAGEX_TREE=<StageX checkout> to check "
                    "the real tree and a broken copy of it")
def test_stagex_tree_and_a_broken_copy(tmp_path: Path) -> None:
    assert STAGEX is not None
    tree = Tree.load(Path(STAGEX))
    clean = check_tree(tree)
    assert clean.errors == ()  # no false problems
    assert {p.kind for p in clean.warnings} <= {ProblemKind.NO_PACKAGE_TOML}
    assert len(clean.packages) == len(tree.packages)
    directories = {p.directory_name for p in tree.packages.values()}
    assert clean.planned == len(directories)

    copy = tmp_path / "stagex" / "packages"
    shutil.copytree(tree.root, copy)
    plain = sorted(n for n, p in tree.packages.items() if p.origin is None and p.deps)
    adders = [n for n in plain if "ADD fetch/" in tree.packages[n].containerfile.read_text()]
    hashed = next(n for n in plain if tree.packages[n].sources and n not in adders[:1])
    victims = [n for n in plain if n not in (adders[0], hashed)][:4]

    def path(name: str, file: str) -> Path:
        p = tree.packages[name]
        return copy / p.stage / p.directory.name / file

    # 1: a fetch/ name no source declares
    cf = path(adders[0], "Containerfile")
    text = cf.read_text()
    cf.write_text(text.replace("ADD fetch/", "ADD fetch/missing-", 1))
    add_line = text[:text.index("ADD fetch/")].count("\n") + 1
    # 2: a bad hash
    toml = path(hashed, "package.toml")
    source = tree.packages[hashed].sources[0]
    toml.write_text(toml.read_text().replace(source.hash, "sha256:" + source.hash[:10], 1))
    # 3-5: an image no package builds, a missing context file, an unknown <ID>_SOURCE
    appended = {}
    for victim, text_ in zip(victims, ("COPY --from=stagex/core-does-not-exist . /\n",
                                       "COPY not-in-the-package.txt /\n",
                                       "ARG NOPE_SOURCE\nCOPY --from=fetch ${NOPE_SOURCE} /\n"),
                             strict=False):
        cf = path(victim, "Containerfile")
        body = cf.read_text()
        body += "" if body.endswith("\n") else "\n"
        cf.write_text(body + text_)
        appended[victim] = body.count("\n") + text_.count("\n")
    # 6: a cycle: the last victim's dependency needs it back
    last = victims[3]
    dep = tree.packages[last].deps[0]
    dep_cf = path(dep, "Containerfile")
    body = dep_cf.read_text()
    dep_cf.write_text(body + ("" if body.endswith("\n") else "\n")
                      + f"COPY --from=stagex/{last} / /\n")

    broken = Tree.load(copy)
    report = check_tree(broken)
    kinds = {(p.kind, p.package, p.line) for p in report.errors}
    assert (ProblemKind.UNKNOWN_SOURCE, tree.packages[adders[0]].directory_name,
            add_line) in kinds
    assert any(k == ProblemKind.BAD_HASH and pk == hashed for k, pk, _ in kinds)
    assert (ProblemKind.UNKNOWN_IMAGE, victims[0], appended[victims[0]]) in kinds
    assert (ProblemKind.MISSING_CONTEXT_FILE, victims[1], appended[victims[1]]) in kinds
    # named at its ARG line (the line before the COPY that uses it)
    assert (ProblemKind.UNKNOWN_SOURCE, victims[2], appended[victims[2]] - 1) in kinds
    assert any(k == ProblemKind.CYCLE for k, _, _ in kinds)
    assert len(report.errors) == 6, [p.describe() for p in report.errors]
    # everything else still planned
    assert report.planned >= len(directories) - 10
