"""Errors carry a kind and fields (package, file, line, step), keep their type when a layer
adds where they happened, and ``--json`` prints them; tests check kinds, not sentences."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from clirun import rootseed
from kinds import cli_error
from rootseed.engine.engine import Builder, BuildOptions
from rootseed.engine.extract import ArchiveError
from rootseed.errors import ErrorKind, RootseedError
from rootseed.fetch import FetchError
from rootseed.plan.planner import PlanError
from rootseed.tree import Tree
from treegen import write_package

TOML = '[package]\nname = "{name}"\nversion = "1"\ndescription = "d"\nlicense = "MIT"\n'


def test_each_error_class_has_its_kind() -> None:
    assert RootseedError("x").kind is ErrorKind.ERROR
    assert RootseedError("x", kind=ErrorKind.USAGE).kind is ErrorKind.USAGE
    assert FetchError("x").kind is ErrorKind.FETCH
    assert PlanError("x").kind is ErrorKind.PLAN
    assert ArchiveError("x").kind is ErrorKind.ARCHIVE


def test_at_keeps_the_object_and_fills_only_unknown_fields() -> None:
    error = ArchiveError("member '../x' leads outside", hint="h")
    error.line = 7
    try:
        try:
            raise error
        except RootseedError as e:
            raise e.at("pkg: f/Containerfile:3: ADD", package="pkg", file="f/Containerfile",
                       line=3, step="ADD") from None
    except RootseedError as e:
        caught = e
    assert caught is error and type(caught) is ArchiveError
    # words: what is tested is how .at() composes the message
    assert caught.message == "pkg: f/Containerfile:3: ADD: member '../x' leads outside"
    assert str(caught).startswith(caught.message) and caught.args == (caught.message,)
    assert caught.as_json() == {"kind": "archive", "message": caught.message, "hint": "h",
                                "exit_code": 1, "package": "pkg", "file": "f/Containerfile",
                                "line": 7, "step": "ADD"}  # the raiser's line is kept


def _tree(tmp_path: Path, containerfile: str, files: dict[str, bytes] | None = None) -> Path:
    root = tmp_path / "tree"
    d = write_package(root, "test", "e", TOML.format(name="e"), containerfile)
    for name, data in (files or {}).items():
        (d / name).write_bytes(data)
    return root


def _build_error(tmp_path: Path, root: Path) -> RootseedError:
    builder = Builder(Tree.load(root), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    with pytest.raises(RootseedError) as info:
        builder.build(["test-e"], BuildOptions(progress=False))
    return info.value


def test_an_archive_error_in_a_build_keeps_its_type_and_gains_the_step(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    root = _tree(tmp_path, "FROM scratch\nWORKDIR /w\nADD evil.tar /w/\n",
                 {"evil.tar": buf.getvalue()})
    error = _build_error(tmp_path, root)
    assert isinstance(error, ArchiveError) and error.kind is ErrorKind.ARCHIVE
    assert (error.package, error.file, error.line, error.step) == (
        "test-e", "tree/test/e/Containerfile", 3, "ADD")


def test_a_missing_copy_source_is_a_step_error_with_its_fields(tmp_path: Path) -> None:
    root = _tree(tmp_path, "FROM scratch\nCOPY not-there /x\n")
    error = _build_error(tmp_path, root)
    assert error.kind is ErrorKind.STEP
    assert (error.package, error.line, error.step) == ("test-e", 2, "COPY")


def test_json_error_output_names_the_kind(tmp_path: Path) -> None:
    root = _tree(tmp_path, "FROM scratch\nCOPY not-there /x\n")
    common = ("--tree", root, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "out")
    r = rootseed("build", "no-such", *common, "--json")
    assert r.returncode == 1
    error = json.loads(r.stdout)["error"]
    assert (error["kind"], error["package"]) == ("usage", "no-such")
    assert error["message"] in " ".join(r.stderr.split())  # words: people read it on stderr
    r = rootseed("build", "test-e", *common, "--json")
    assert r.returncode == 1
    error = json.loads(r.stdout)["error"]
    assert (error["kind"], error["line"], error["step"]) == ("step", 2, "COPY")
    r = rootseed("build", "--no-such-option", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["kind"] == "usage"
    r = rootseed("build", "no-such", *common)  # without --json: stdout stays empty
    assert r.returncode == 1 and r.stdout == ""


def test_json_stays_one_document_when_the_command_wrote_its_result(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that printed its --json result and then fails (bootstrap whose crosscheck
    differs) leaves that result alone: no error object after it."""
    import rootseed.cli.bootstrap as cli_bootstrap
    from rootseed.bootstrap import BootstrapReport

    def fake(settings: object, **_: object) -> BootstrapReport:
        report = BootstrapReport("p", True, "t", "sha256:0", True, 0.0, {}, [], [], [], None)
        report.checks = [{"identical": False, "summary": "M1 differs at offset 3"}]
        return report

    monkeypatch.setattr(cli_bootstrap, "bootstrap", fake)
    r = rootseed("bootstrap", "--demo", "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)  # one document: the command's own
    assert "error" not in data and data["package"] == "p"


def test_export_of_a_missing_image_keeps_the_layout_error(tmp_path: Path) -> None:
    """``export`` adds the package and its hint to the LayoutError instead of wrapping it
    in a plain error (which lost the kind)."""
    (tmp_path / "out").mkdir()
    r = rootseed("export", "nope", "--oci-archive", tmp_path / "x.tar", "--out",
                 tmp_path / "out", "--json")
    cli_error(r, ErrorKind.LAYOUT, exit_code=1, package="nope")
    assert not (tmp_path / "x.tar").exists()


def test_a_wrapped_plan_error_keeps_its_fields(tmp_path: Path) -> None:
    """The engine names the package of a PlanError by ``at()``: its type and file stay."""
    root = _tree(tmp_path, "FROM scratch AS a\nCOPY f /f\n", {"f": b"f\n"})
    builder = Builder(Tree.load(root), cache_dir=tmp_path / "cache", out=tmp_path / "out")
    with pytest.raises(PlanError) as info:
        builder.build(["test-e"], BuildOptions(progress=False, target="nope"))
    error = info.value
    assert (error.kind, error.package, error.file) == (
        ErrorKind.PLAN, "test-e", "tree/test/e/Containerfile")
    assert error.message.startswith("test-e: ")  # words: at() put the package first
