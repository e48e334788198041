"""The Python cc_x86: its patterns on small programs, its refusals, and (opt-in, needs
ROOTSEED_MIRROR) the same M1 as the chain's own cc_x86, built from the seed in the
sandbox, on M2-0.c, variants of it, M2-Planet's test programs and a corpus written here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cc_x86_corpus import ACCEPTED, EARLY_STOP, REJECTED
from rootseed.tools import cc_x86
from rootseed.tools._util import ToolError
from rootseed.tools.cc_x86 import compile_c
from rootseed.tools.cc_x86_lex import BeyondCcX86

HEAD = "\n# Core program\n"
MIDDLE = "\n# Program global variables\n"
STRINGS = "\n# Program strings\n"
END = "\n:ELF_end\n"


def m1(source: str) -> str:
    return compile_c(source.encode()).decode("latin-1")


def core(source: str) -> str:
    out = m1(source)
    return out[len(HEAD):out.index(MIDDLE)]


# -- the patterns, checked by hand against cc_x86.M1 -------------------------------------
def test_empty_input_is_the_four_headers() -> None:
    assert m1("") == HEAD + MIDDLE + STRINGS + END


def test_globals_and_a_function_returning_a_sum() -> None:
    out = m1("int g;\nchar* s;\nint f(int a, int b) { return a + b; }\n")
    assert out == (HEAD + "# Defining function f\n:FUNCTION_f\n"
                   "lea_eax,[ebp+DWORD] %-4\nmov_eax,[eax]\n"
                   "push_eax\t#_common_recursion\n"
                   "lea_eax,[ebp+DWORD] %-8\nmov_eax,[eax]\n"
                   "pop_ebx\t# _common_recursion\nadd_eax,ebx\nret\n"
                   + MIDDLE + ":GLOBAL_g\nNULL\n:GLOBAL_s\nNULL\n" + STRINGS + END)


def test_locals_are_popped_and_main_starts_at_minus_20() -> None:
    assert core("int main() { int a; { int b; } }") == (
        "# Defining function main\n:FUNCTION_main\n"
        "# Defining local a\npush_eax\t#a\n"
        "# Defining local b\npush_eax\t#b\n"
        "pop_ebx\t# _recursive_statement_locals\n"
        "pop_ebx\t# _recursive_statement_locals\nret\n")
    assert "lea_eax,[ebp+DWORD] %-20\n" in core("int main() { int a; return a; }")
    assert "lea_eax,[ebp+DWORD] %-8\n" in core("int f() { int a; return a; }")
    assert "lea_eax,[ebp+DWORD] %-12\n" in core("int f(int x) { int a; return a; }")


def test_one_counter_names_ifs_loops_and_strings() -> None:
    out = m1('int f(int x) { if(x) { x = 1; } while(x) { "s"; } return x; }')
    assert ":ELSE_f_0\n" in out and ":WHILE_f_1\n" in out
    assert "mov_eax, &STRING_f_2\n" in out
    assert out.endswith(STRINGS + ':STRING_f_2\n"s"\n' + END)


def test_strings_m1_cannot_hold_are_written_as_hex_bytes() -> None:
    out = m1('int f() { "a\\"b"; "x :y"; "ok\\n"; "\\x41\\x00z"; }')
    strings = out[out.index(STRINGS) + len(STRINGS):-len(END)]
    assert strings == (":STRING_f_0\n' 61 22 62 00'\n"  # a quote
                       ":STRING_f_1\n' 78 20 3A 79 00'\n"  # a space before ':'
                       ':STRING_f_2\n"ok\n"\n'
                       ':STRING_f_3\n"A')  # cc_x86 prints its strings up to a NUL


def test_operators_of_one_level_chain_without_precedence() -> None:
    # a + b * c is (a + b) * c: '*' is on the '+' level
    out = core("int f(int a, int b, int c) { return a + b * c; }")
    assert out.index("add_eax,ebx") < out.index("mul_ebx")


def test_promote_type_finds_the_type_by_name_pointer() -> None:
    # char* + char* promotes to char (whose pointer type is char*): no byte store after
    out = core("int f(char* a, char* b) { a[0] = b[0]; }")
    assert "mov_[ebx],al\n" in out
    out = core("int f(char** a) { a[0] = a[1]; }")
    assert "mov_[ebx],eax\n" in out


def test_constants_and_function_pointers() -> None:
    out = core("// CONSTANT SIX 6\nint f(FUNCTION g) { return g(SIX); }")
    assert "mov_eax, %6\n" in out
    assert "lea_eax,[ebp+DWORD] %-4\nmov_eax,[eax]\nmov_ebp,edi\ncall_eax\n" in out


def test_struct_members_offsets_and_sizes() -> None:
    out = core("struct s { char c; int n; char name[10]; int last; };\n"
               "int f(struct s* p) { return p->last + sizeof(struct s); }")
    assert "# -> offset calculation\nmov_ebx, %15\nadd_eax,ebx\nmov_eax,[eax]\n" in out
    assert "mov_eax, %19\n" in out


def test_an_unknown_top_level_line_ends_the_compile_successfully() -> None:
    assert MIDDLE + ":GLOBAL_a\nNULL\n" + STRINGS in m1("int a;\nint b = 1;\nint c;\n")


@pytest.mark.parametrize(("source", "message"), [
    ("int f() { return y; }", "y is not a defined symbol\n"),
    ("uint8_t x;", "Unknown type uint8_t\n"),
    ("int f() { break; }", "Not inside of a loop or case statement"),
    ("int f() { return *p; }", "Received * in primary_expr\n"),
    ("int f() { int x = 1 return x; }", "ERROR in collect_local\nMissing ;\n"),
])
def test_cc_x86s_errors_are_its_messages(source: str, message: str) -> None:
    with pytest.raises(ToolError) as e:
        m1(source)
    # words: a seed tool's message is its output (as the upstream tool prints it)
    assert e.value.message == message


@pytest.mark.parametrize(("source", "what"), [
    ("int f() { /* never closed", "a /* comment"),
    ('int f() { "never closed', "a string or character literal"),
    ("#define X", "a '#' line"),
    ("int f() { return 1;", "it would crash"),
    ("int", "it would crash"),
    ("int a;\0", "NUL byte"),
    ("int " + "x" * 256 + ";", "a token of 256 bytes"),
    ('int f() { "' + "y" * 253 + '"; }', "a string of 253 bytes"),
    ("int f() { return " + "(" * 3000 + "1" + ")" * 3000 + "; }", "nests too deeply"),
])
def test_where_cc_x86_hangs_or_crashes_this_one_stops(source: str, what: str) -> None:
    with pytest.raises(ToolError) as e:
        m1(source)
    # words: a seed tool's only interface is its message and exit status (no --json)
    assert what in e.value.message


def test_a_0xfc_byte_ends_the_input() -> None:
    assert compile_c(b"int a;\xfcint b;") == compile_c(b"int a;")


def test_main_writes_the_output_0600_and_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "in.c").write_text("int g;\n")
    assert cc_x86.main([str(tmp_path / "in.c"), str(tmp_path / "out.M1")]) == 0
    assert (tmp_path / "out.M1").read_text().startswith(HEAD)
    assert (tmp_path / "out.M1").stat().st_mode & 0o777 == 0o600 & ~_umask()
    (tmp_path / "bad.c").write_text("int f() { return y; }")
    assert cc_x86.main([str(tmp_path / "bad.c"), str(tmp_path / "bad.M1")]) == 1
    assert not (tmp_path / "bad.M1").exists()
    assert cc_x86.main([str(tmp_path / "none.c"), str(tmp_path / "x.M1")]) == 1
    assert cc_x86.main([]) == 2


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_rootseed_tool_runs_it(tmp_path: Path) -> None:
    (tmp_path / "in.c").write_text("int main() { return 0; }\n")
    r = subprocess.run([sys.executable, "-m", "rootseed", "tool", "cc_x86", "in.c", "out.M1"],
                       cwd=tmp_path, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert ":FUNCTION_main\n" in (tmp_path / "out.M1").read_text()


# -- against the chain's cc_x86 (opt-in) -------------------------------------------------
ART = "stage0/x86/artifact"


@pytest.fixture(scope="module")
def m2_stage(stage0_built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of bootstrap-stage0's ``m2`` stage (cc_x86, M2-0.c, M2-0.M1, the sources)
    from the session's build from the seed."""
    from rootseed import shipped
    from rootseed.engine.engine import Builder, BuildOptions
    from rootseed.engine.fsops import copy_tree
    from rootseed.fetch import Fetcher
    from rootseed.tree import Tree

    mirror = os.environ["ROOTSEED_MIRROR"]  # stage0_built skipped without it
    work = tmp_path_factory.mktemp("m2-stage")
    tree = Tree.load(shipped.packages())
    fetcher = Fetcher(stage0_built, (Path(mirror),), offline=True, progress=False,
                      base_dir=tree.root)
    try:
        builder = Builder(tree, cache_dir=stage0_built, out=work / "out", fetcher=fetcher)
        entry = builder.stage("bootstrap-stage0", "m2", BuildOptions(progress=False))
        root = work / "root"
        copy_tree(entry.rootfs, root)  # a real copy: the entry may be an overlay view
    finally:
        fetcher.close()
    assert (root / ART / "cc_x86").is_file()
    return root


def theirs(stage: Path, source: bytes, timeout: float = 600) -> tuple[int, bytes, str]:
    """The chain's cc_x86 on ``source``: (status, M1 when it succeeded, stderr)."""
    with tempfile.TemporaryDirectory(prefix="rootseed-cc_x86-") as d:
        Path(d, "in.c").write_bytes(source)
        try:
            r = subprocess.run([str(stage / ART / "cc_x86"), "in.c", "out.M1"], cwd=d,
                               capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return -1, b"", "timed out"
        out = Path(d, "out.M1")
        data = out.read_bytes() if r.returncode == 0 and out.is_file() else b""
        return r.returncode, data, r.stderr.decode("latin-1")


def ours(source: bytes) -> tuple[int, bytes, str]:
    """(0, M1, ""), (1, b"", cc_x86's message) or (2, b"", why cc_x86 cannot do it)."""
    try:
        return 0, compile_c(source), ""
    except BeyondCcX86 as e:
        return 2, b"", e.message
    except ToolError as e:
        return 1, b"", e.message


def same_as_the_chain(stage: Path, source: bytes) -> int:
    """Assert both compile ``source`` alike (same M1, or both refuse); the chain's status."""
    status, data, said = theirs(stage, source)
    mine, produced, message = ours(source)
    if status == 0:
        assert mine == 0, f"the chain's cc_x86 compiles it, the Python one says: {message}"
        assert produced == data
    else:
        assert mine != 0, f"the chain's cc_x86 fails ({status}: {said.strip()}), " \
                          "the Python one compiles it"
        if mine == 1:  # one of cc_x86's own messages: the same words
            assert message == said
    return status


@pytest.mark.mirror
def test_m2_0_is_byte_identical(m2_stage: Path) -> None:
    source = (m2_stage / ART / "M2-0.c").read_bytes()
    assert compile_c(source) == (m2_stage / ART / "M2-0.M1").read_bytes()


@pytest.mark.mirror
@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_corpus(m2_stage: Path, name: str) -> None:
    assert same_as_the_chain(m2_stage, ACCEPTED[name].encode()) == 0


@pytest.mark.mirror
@pytest.mark.parametrize("name", sorted(EARLY_STOP))
def test_early_stop_corpus(m2_stage: Path, name: str) -> None:
    assert same_as_the_chain(m2_stage, EARLY_STOP[name].encode()) == 0


@pytest.mark.mirror
@pytest.mark.parametrize("name", sorted(REJECTED))
def test_rejected_corpus(m2_stage: Path, name: str) -> None:
    assert same_as_the_chain(m2_stage, REJECTED[name].encode()) != 0


@pytest.mark.mirror
def test_m2_planet_test_programs(m2_stage: Path) -> None:
    """M2-Planet's own test programs: most use more C than cc_x86 has (both refuse them
    alike), some compile (the same M1)."""
    tests = sorted((m2_stage / "stage0/M2-Planet/test").rglob("*.c"))
    assert len(tests) > 30
    statuses = [same_as_the_chain(m2_stage, p.read_bytes()) for p in tests]
    assert statuses.count(0) >= 3 and len(statuses) - statuses.count(0) >= 20


def _m2_sources(stage: Path, order: list[str]) -> bytes:
    return b"".join((stage / "stage0" / name).read_bytes() for name in order)


@pytest.mark.mirror
def test_m2_0_variants(m2_stage: Path) -> None:
    """M2-0.c cut after a third of its functions, and its compiler sources after the
    globals in reverse order (cc.h's prototypes keep every call defined)."""
    source = (m2_stage / ART / "M2-0.c").read_bytes()
    ends = [m.end() for m in re.finditer(rb"\n}\n", source)]
    prefix = source[:ends[len(ends) // 3]]
    assert same_as_the_chain(m2_stage, prefix) == 0
    head = ["M2libc/x86/linux/bootstrap.c", "M2-Planet/cc.h", "M2libc/bootstrappable.c"]
    rest = ["M2-Planet/cc_globals.c", "M2-Planet/cc_reader.c", "M2-Planet/cc_strings.c",
            "M2-Planet/cc_types.c", "M2-Planet/cc_core.c", "M2-Planet/cc_macro.c",
            "M2-Planet/cc.c"]
    assert _m2_sources(m2_stage, head + rest) == source  # how the chain made M2-0.c
    reordered = head + rest[:1] + rest[:0:-1]
    assert same_as_the_chain(m2_stage, _m2_sources(m2_stage, reordered)) == 0


# -- generated programs (opt-in) ---------------------------------------------------------
_OPS = ["+", "-", "*", "/", "%", "<<", ">>", "<", "<=", ">=", ">", "==", "!=", "&", "&&",
        "|", "||", "^"]
_ATOMS = st.sampled_from(["a", "x", "g", "0", "7", "0x1F", "'c'", "'\\n'", "'\\x41'",
                          '"str"', '"a b :c"', '"q\\"t"', "b[1]", "p->n", "p->next->n",
                          "s->c", "sizeof(int)", "sizeof(struct s)", "TEN", "k(1, b)",
                          "h", "f0"])
_EXPRS = st.recursive(_ATOMS, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(_OPS), inner).map(" ".join),
    inner.map(lambda e: f"({e})"), inner.map(lambda e: f"-{e}"),
    inner.map(lambda e: f"!{e}"), inner.map(lambda e: f"~{e}"),
    inner.map(lambda e: f"b[{e}]"), inner.map(lambda e: f"k({e}, b)")), max_leaves=6)
_TARGETS = st.sampled_from(["x", "g", "a", "b[2]", "p->n", "s->c", "p->next->n", "b[x]"])


def _statements(depth: int) -> st.SearchStrategy[str]:
    simple = st.one_of(
        st.tuples(_TARGETS, _EXPRS).map(lambda t: f"{t[0]} = {t[1]};"),
        _EXPRS.map(lambda e: f"return {e};"), _EXPRS.map(lambda e: f"{e};"),
        st.just("int y = 3;"), st.just("char* t = b;"))
    if depth == 0:
        return simple
    body = st.lists(_statements(depth - 1), max_size=3).map(" ".join)
    return st.one_of(
        simple,
        st.tuples(_EXPRS, body, body).map(lambda t: f"if({t[0]}) {{ {t[1]} }} else {{ {t[2]} }}"),
        st.tuples(_EXPRS, body).map(lambda t: f"while({t[0]}) {{ {t[1]} break; }}"),
        st.tuples(_EXPRS, body).map(lambda t: f"for(x = 0; {t[0]}; x = x + 1) {{ {t[1]} }}"),
        st.tuples(body, _EXPRS).map(lambda t: f"do {{ {t[0]} continue; }} while({t[1]});"),
        body.map(lambda b: f"{{ int z; {b} }}"))


_PRELUDE = """// CONSTANT TEN 10
struct s { int n; char c; char* name; struct s* next; char tag[4]; };
int g;
char* h;
int k(int v, char* w);
"""


@pytest.mark.mirror
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=st.lists(st.lists(_statements(2), max_size=5).map(" ".join), min_size=1,
                       max_size=3))
def test_generated_programs_against_the_chain(m2_stage: Path, bodies: list[str]) -> None:
    functions = "".join(
        f"int f{n}(int a, char* b, struct s* p) {{ int x; struct s* s = p; {body} }}\n"
        for n, body in enumerate(bodies))
    status = same_as_the_chain(m2_stage, (_PRELUDE + functions).encode())
    event("compiled" if status == 0 else "refused by both")
