"""catm (differential against Debian's), sha256sum and kaem-minimal."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clirun import rootseed as run_cli
from rootseed.tools import catm, kaem_minimal, sha256sum
from rootseed.tools._util import ToolError

DEBIAN_CATM = shutil.which("catm", path="/usr/bin")


def tool(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    r = run_cli("tool", *argv, cwd=cwd)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout_bytes, r.stderr_bytes)


# --- catm ------------------------------------------------------------------------------

@pytest.mark.skipif(DEBIAN_CATM is None, reason="Debian's mescc-tools catm not installed")
@settings(max_examples=40, deadline=None)
@given(contents=st.lists(st.binary(max_size=9000), max_size=4), missing=st.booleans(),
       self_at=st.integers(-1, 4))
def test_catm_differential(contents: list[bytes], missing: bool, self_at: int) -> None:
    assert DEBIAN_CATM is not None
    with tempfile.TemporaryDirectory() as tmp:
        names = []
        for i, data in enumerate(contents):
            Path(tmp, f"in{i}").write_bytes(data)
            names.append(f"in{i}")
        if missing:
            names.append("missing")
        results = []
        for who in ("theirs", "ours"):
            Path(tmp, who).write_bytes(b"old contents")
            ins = list(names)
            if 0 <= self_at <= len(ins):
                ins.insert(self_at, who)  # the output as an input: reads what is written
            if who == "theirs":
                code = subprocess.run([DEBIAN_CATM, who, *ins], cwd=tmp, timeout=20,
                                      capture_output=True).returncode
            else:
                cwd = os.getcwd()
                os.chdir(tmp)
                try:
                    code = catm.main([who, *ins])
                except ToolError:
                    code = -1
                finally:
                    os.chdir(cwd)
            results.append((code, Path(tmp, who).read_bytes()))
        (their_code, theirs), (our_code, ours) = results
        if their_code == 0:
            assert (our_code, ours) == (0, theirs)
        elif our_code == 1 and sum(map(len, contents)) < 4096:
            assert their_code == 1


def test_catm_cli(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"A")
    (tmp_path / "b").write_bytes(b"B")
    assert tool("catm", "out", "a", "b", "a", cwd=tmp_path).returncode == 0
    assert (tmp_path / "out").read_bytes() == b"ABA"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o600 & ~umask
    r = tool("catm", "out2", "a", "nope", cwd=tmp_path)
    # words: a seed tool's only interface is its message and exit status (no --json)
    assert r.returncode == 1 and b"nope" in r.stderr and b"Traceback" not in r.stderr
    assert not (tmp_path / "out2").exists()
    assert tool("catm", cwd=tmp_path).returncode == 1


# --- sha256sum -------------------------------------------------------------------------

def test_sha256sum_lines(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"hello")
    r = tool("sha256sum", "x", cwd=tmp_path)
    assert r.returncode == 0
    assert r.stdout == f"{hashlib.sha256(b'hello').hexdigest()}  x\n".encode()
    r = tool("sha256sum", "x", "nope", "x", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout.endswith(b"  x\nnope: No such file or directory\n")
    assert tool("sha256sum", "-o", "sums", "x", cwd=tmp_path).returncode == 0
    assert (tmp_path / "sums").read_bytes().endswith(b"  x\n")


def _check(tmp_path: Path, lines: bytes) -> subprocess.CompletedProcess[bytes]:
    (tmp_path / "sums").write_bytes(lines)
    return tool("sha256sum", "-c", "sums", cwd=tmp_path)


def test_sha256sum_check(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b"hello")
    (tmp_path / "y").write_bytes(b"other")
    good = hashlib.sha256(b"hello").hexdigest()
    r = _check(tmp_path, f"{good}  x\n{good}  y\n".encode())
    assert r.returncode == 1
    assert r.stdout == (f"x: OK\ny: FAILED\nWanted:   {good}\nReceived: "
                        f"{hashlib.sha256(b'other').hexdigest()}\n").encode()
    assert _check(tmp_path, f"{good}  x\n".encode()).stdout == b"x: OK\n"
    # upstream accepts only lowercase digits and the capital F
    upper = good.upper()
    r = _check(tmp_path, f"{upper}  x\n".encode())
    assert set(upper) & set("ABCDE")
    assert r.returncode == 1
    assert r.stdout == b"sums: no properly formatted SHA256 checksum lines found\n"
    # an empty line is malformed, after the good lines are reported
    r = _check(tmp_path, f"{good}  x\n\n".encode())
    assert r.returncode == 1 and r.stdout.startswith(b"x: OK\nsums: no properly")
    r = _check(tmp_path, f"{good}  gone\n".encode())
    assert r.returncode == 1 and r.stdout == b"gone: No such file or directory\n"
    assert b"Traceback" not in r.stderr


def test_sha256sum_check_capital_f(tmp_path: Path) -> None:
    data = b"hello"
    (tmp_path / "x").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest().replace("f", "F")
    assert _check(tmp_path, f"{digest}  x\n".encode()).stdout == b"x: OK\n"


def test_sha256sum_unit() -> None:
    text, code = sha256sum.digest_lines([("a", b""), ("b", None), ("c", b"")])
    assert code == 1 and text.count("\n") == 2


# --- kaem-minimal ----------------------------------------------------------------------

def run_kaem(script: bytes, fail_on: str = "") -> tuple[int, list[list[str]], str]:
    ran: list[list[str]] = []
    echoed: list[str] = []

    def runner(argv: list[str]) -> int:
        ran.append(argv)
        return 1 if argv[0] == fail_on else 0

    return kaem_minimal.run_script(script, runner, echoed.append), ran, "".join(echoed)


def test_kaem_tokens() -> None:
    code, ran, echoed = run_kaem(
        b'# comment\n./a b\t"c d"e  \\\n  f # tail\n\n./g "" x\\yz\n')
    assert code == 0
    assert ran == [["./a", "b", "c d", "e", "f"], ["./g", "x", "z"]]
    assert echoed == " +> ./a b c d e f \n +> ./g x z \n"


def test_kaem_last_line_without_newline_is_not_run() -> None:
    assert run_kaem(b"./a\n./b")[1] == [["./a"]]


def test_kaem_stops_at_first_failure() -> None:
    code, ran, echoed = run_kaem(b"./a\n./bad x\n./c\n", fail_on="./bad")
    assert code == 1 and ran == [["./a"], ["./bad", "x"]]
    assert echoed.endswith("Subprocess error\nABORTING HARD\n")


def test_kaem_eof_byte_and_open_ends(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_kaem(b"./a\n./b\xfc\n./c\n")[1:] == ([["./a"]], " +> ./a \n")
    assert run_kaem(b"./a\\\xfc\n")[1] == [["./a"]]  # an escaped 0xFC is just dropped
    code, ran, _ = run_kaem(b'./a\n./b "open\n')
    assert code == 1 and ran == [["./a"]]
    assert run_kaem(b"./a\n# no newline")[0] == 1
    assert "unterminated" in capsys.readouterr().err


def test_kaem_main_runs_programs(tmp_path: Path) -> None:
    (tmp_path / "script").write_bytes(b"/bin/true\n/bin/sh -c \"exit 3\"\n/bin/true\n")
    r = tool("kaem-minimal", "script", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == (b" +> /bin/true \n +> /bin/sh -c exit 3 \n"
                        b"Subprocess error\nABORTING HARD\n")
    (tmp_path / "kaem.x86").write_bytes(b"true\n")  # no PATH search: ./true is missing
    r = tool("kaem-minimal", cwd=tmp_path)
    assert r.returncode == 1 and b"Traceback" not in r.stderr
    r = tool("kaem-minimal", "missing-script", cwd=tmp_path)
    # words: a seed tool's only interface is its message and exit status (no --json)
    assert r.returncode == 1 and b"cannot read" in r.stderr
