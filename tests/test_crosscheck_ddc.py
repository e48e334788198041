"""Diverse double-compiling in crosscheck, on fixtures written here.

The fixture "M2-Planet" is a tiny C program (not upstream's) that concatenates its
``-f`` files into ``-o``: enough to exercise reading the recipe from the pinned archive,
building with a host compiler in the sandbox, redoing a compile step and comparing.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rootseed.crosscheck import Status
from rootseed.crosscheck.compilers import Compiler, find_compilers, version_of
from rootseed.crosscheck.ddc import (
    Diverse,
    Outcome,
    compare_preprocessed,
    layout_free,
    summarize,
)
from rootseed.crosscheck.ddc_sources import scan
from rootseed.crosscheck.model import ArtifactCheck, Report
from rootseed.crosscheck.recipe import RecipeError, parse_makefile
from rootseed.crosscheck.steps import Step, command_step, ddc_compile
from rootseed.engine.api import StageTree

MAKEFILE = """\
# a makefile shaped like M2-Planet's (written for this test)
CC?=gcc
CFLAGS:=$(CFLAGS) -D_GNU_SOURCE -O0 -std=c99 -ggdb -Wall -Wextra -pedantic

all: bin/M2-Planet
bin/M2-Planet: bin cc.c cc.h | bin
\t$(CC) $(CFLAGS) \\
\tM2libc/bootstrappable.c \\
\tcc.c \\
\tcc.h \\
\t-o $@

M2-Mesoplanet: bin cc.c
\t$(CC) $(CFLAGS) cc.c -o bin/M2-Mesoplanet

bin:
\tmkdir -p bin
"""

CC_C = r"""
/* stands in for M2-Planet: writes the -f files, in order, to -o */
#include <stdio.h>
#include "cc.h"
int main(int argc, char** argv)
{
	FILE* out = NULL;
	int i;
	for(i = 1; i + 1 < argc; i = i + 1) if(match(argv[i], "-o")) out = fopen(argv[i + 1], "w");
	if(NULL == out) return 1;
	for(i = 1; i + 1 < argc; i = i + 1)
	{
		if(!match(argv[i], "-f")) continue;
		FILE* f = fopen(argv[i + 1], "r");
		if(NULL == f) return 2;
		int c;
		while(EOF != (c = fgetc(f))) fputc(c, out);
		fclose(f);
	}
	fclose(out);
	return 0;
}
"""
CC_H = "int match(char* a, char* b);\n"
BOOTSTRAPPABLE_C = r"""
#include <string.h>
int match(char* a, char* b) { return 0 == strcmp(a, b); }
"""


def _tar(path: Path, top: str, files: dict[str, str], dirs: tuple[str, ...] = ()) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for d in (top, *(f"{top}/{x}" for x in dirs)):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def archives(tmp: Path) -> list[Path]:
    return [
        _tar(tmp / "M2-Planet-1.tar.gz", "M2-Planet-1",
             {"makefile": MAKEFILE, "cc.c": CC_C, "cc.h": CC_H}, dirs=("M2libc",)),
        _tar(tmp / "M2libc-2.tar.gz", "M2libc-2",
             {"bootstrappable.c": BOOTSTRAPPABLE_C, "stdlib.c": "/* */\n"}),
        _tar(tmp / "other-3.tar.gz", "other-3", {"README": "nothing to build\n"}),
    ]


# -- the recipe, from the makefile ---------------------------------------------------------
def test_recipe_is_the_makefile_rule_without_headers_and_diagnostics() -> None:
    r = parse_makefile(MAKEFILE, "M2-Planet")
    assert r.sources == ("M2libc/bootstrappable.c", "cc.c")
    assert r.cflags == ("-D_GNU_SOURCE", "-O0", "-std=c99")
    assert r.uses_m2libc
    m = parse_makefile(MAKEFILE, "M2-Mesoplanet")
    assert m.sources == ("cc.c",) and not m.uses_m2libc


@pytest.mark.parametrize("text", [
    "bin/M2-Planet: x\n\t$(CC) cc.c -o bin/other\n",
    "bin/M2-Planet: x\n\techo $(CC) cc.c -o $@\n",
    "bin/M2-Planet: x\n\t$(CC) ../../etc/passwd.c -o $@\n",
    "bin/M2-Planet: x\n\t$(CC) /etc/x.c -o $@\n",
])
def test_recipe_refuses_what_is_not_a_plain_compile(text: str) -> None:
    with pytest.raises(RecipeError):
        parse_makefile(text, "M2-Planet")


def test_scan_recognises_the_projects_by_content(tmp_path: Path) -> None:
    found = scan(archives(tmp_path))
    assert set(found.projects) == {"M2-Planet", "M2-Mesoplanet"}
    assert found.projects["M2-Planet"].top == "M2-Planet-1"
    assert found.m2libc is not None and found.m2libc[1] == "M2libc-2"


# -- compilers ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "want"), [
    ("gcc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright", "12.2.0"),
    ("Debian clang version 14.0.6\nTarget: x86_64", "14.0.6"),
    ("tcc version 0.9.27 (x86_64 Linux)\n", "0.9.27"),
    ("", None),
])
def test_version_of(text: str, want: str | None) -> None:
    assert version_of(text) == want


def test_a_missing_compiler_is_named_not_faked(tmp_path: Path) -> None:
    found, missing = find_compilers(("gcc", "clang", "tcc", "cc9"), search=str(tmp_path))
    assert found == []
    assert [m.name for m in missing] == ["gcc", "clang", "tcc", "cc9"]
    assert "not installed" in missing[0].reason and "unknown" in missing[3].reason


# -- summarizing outcomes (pure) -------------------------------------------------------------
GCC = Compiler("gcc", Path("/usr/bin/gcc"), "12.2.0", ("-static",))
CLANG = Compiler("clang", Path("/usr/bin/clang"), "14.0.6", ("-static",))
STEP = command_step("cc", 7, ["./M2", "-f", "a.c", "-o", "a.M1"], "/src")


def _flags(c: Compiler) -> tuple[str, ...]:
    return ("-O0", *c.flags)


def test_step_is_a_ddc_compile() -> None:
    assert ddc_compile(STEP) and STEP.output == "/src/a.M1"
    assert not ddc_compile(command_step("cc", 1, ["./cc_x86", "a.c", "a.M1"], "/"))


def test_summarize_identical_names_every_compiler() -> None:
    c = summarize(STEP, "/src/a.M1", b"abc", [Outcome(GCC, b"abc"), Outcome(CLANG, b"abc")],
                  ["tcc: not installed"], _flags, "M2-Planet")
    assert c.status is Status.IDENTICAL
    assert c.reproduced_by == ("DDC: gcc 12.2.0", "DDC: clang 14.0.6")
    assert "-O0 -static" in c.detail and "tcc: not installed" in c.detail


def test_summarize_one_compiler_disagreeing_is_a_difference() -> None:
    c = summarize(STEP, "/src/a.M1", b"abc", [Outcome(GCC, b"abc"), Outcome(CLANG, b"abd")],
                  [], _flags, "M2-Planet")
    assert c.status is Status.DIFFERENT and c.offset == 2
    assert "clang 14.0.6: differs at offset 2" in c.detail


def test_summarize_failure_and_nothing_available() -> None:
    c = summarize(STEP, "/src/a.M1", b"abc", [Outcome(GCC, None, "exit 1")], [], _flags, "x")
    assert c.status is Status.ERROR and "exit 1" in c.detail
    c = summarize(STEP, "/src/a.M1", b"abc", [], ["gcc: not installed"], _flags, "x")
    assert c.status is Status.NOT_COVERED and "gcc: not installed" in c.detail


def test_preprocessed_sources_differing_in_layout_only_is_a_note() -> None:
    chain = b"// #FILENAME <a.h> 1\nint a;\n\n// #FILENAME <b.c> 3\nint b;\n"
    ddc = b"// #FILENAME <a.h> 1\nint a;\n\n\n\n// #FILENAME <b.c> 2\nint b;\n"
    assert layout_free(chain) == layout_free(ddc)
    diffs, notes = compare_preprocessed(chain, ddc, "DDC: gcc 12.2.0")
    assert diffs == () and "blank lines" in notes[0]
    diffs, notes = compare_preprocessed(chain, ddc.replace(b"int b", b"int c"), "x")
    assert diffs and not notes
    assert compare_preprocessed(chain, chain, "x") == ((), ())


def test_headline_names_the_compilers_that_reproduced_m2_planet() -> None:
    report = Report("p", checks=[
        ArtifactCheck("cc", 1, "/x/artifact/M2-1.M1", "DDC", Status.IDENTICAL,
                      reproduced_by=("DDC: gcc 12.2.0", "DDC: clang 14.0.6")),
        ArtifactCheck("m2", 2, "/x/bin/M2-Planet", "hex2", Status.IDENTICAL, chain_size=9,
                      reproduced_by=("Python hex2",)),
    ])
    headline = report.headline()
    assert headline is not None
    assert "/x/bin/M2-Planet" in headline and "gcc 12.2.0, clang 14.0.6" in headline
    assert report.bootstrap_lines()[0]["summary"] == headline


# -- the real thing: build with gcc in the sandbox, redo a step, compare ---------------------
def _stage(tmp: Path) -> tuple[Path, Step]:
    root = tmp / "stage"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.c").write_text("int a;\n")
    (root / "src" / "b.c").write_text("int b;\n")
    (root / "src" / "x.M1").write_text("int a;\nint b;\n")
    argv = ["./M2", "--architecture", "x86", "-f", "a.c", "-f", "b.c", "--debug",
            "-o", "x.M1"]
    return root, command_step("cc-x", 3, argv, "/src")


def test_ddc_reproduces_a_step_and_catches_a_planted_byte(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    found, missing = find_compilers(("gcc",))
    if not found:
        pytest.skip("needs gcc in /usr/bin")
    stage, step = _stage(tmp_path)
    (tmp_path / "work").mkdir()
    with ThreadPoolExecutor(max_workers=1) as pool:
        diverse = Diverse(pool, archives(tmp_path), found, missing, tmp_path / "work",
                          tmp_path / "logs")
        toolset = diverse.toolset
        assert [c.name for c, _ in toolset.programs("M2-Planet")] == ["gcc"], toolset
        (check,) = diverse.m2_step(step, StageTree(stage))
        assert check.status is Status.IDENTICAL, check.detail
        assert check.reproduced_by == (found[0].label,)
        assert "-D_GNU_SOURCE -O0 -std=c99 -static" in check.detail
        # one planted byte in the chain's intermediate file is a difference at this step
        data = bytearray((stage / "src" / "x.M1").read_bytes())
        data[5] ^= 1
        (stage / "src" / "x.M1").write_bytes(bytes(data))
        (check,) = diverse.m2_step(step, StageTree(stage))
        assert check.status is Status.DIFFERENT and check.offset == 5
        assert (check.stage, check.line, check.artifact) == ("cc-x", 3, "/src/x.M1")
    assert toolset.as_dict()["recipes"]["M2-Planet"]["sources"] == [  # type: ignore[index]
        "M2libc/bootstrappable.c", "cc.c"]
