"""Tests tell which error happened by its kind and fields, never by its English.

A test that checks an error's words breaks when a message is improved and passes when a
different error happens to use the same words. This test reads the tests with ``ast`` and
fails on two patterns unless the line (or a comment above it and the asserts between)
carries the marker ``# words:`` with the reason the words themselves are what is tested (a seed tool that
must print its upstream's message, a message for people that must name a path):

- ``pytest.raises(..., match=...)``;
- a comparison (``in``, ``not in``, ``==``, ``!=``) or ``startswith``/``endswith``/``count``
  on an error's text: ``stderr``, ``.message``, ``str(e)``, ``str(<info>.value)``.

Use :func:`kinds.raises_kind` in process and ``--json`` (:func:`kinds.cli_error`) for a
command.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MARKER = "# words:"
#: Words that are not a message: a traceback must never be shown, whatever the error.
NOT_WORDS = frozenset({"Traceback", ""})
_CALLS = frozenset({"startswith", "endswith", "count"})


def _is_error_text(node: ast.expr, tainted: frozenset[str] = frozenset()) -> bool:
    """``x.stderr``, ``x.message``, ``str(e)``, ``str(x.value)``, a name given one of them
    (``tainted``), or an expression over one (``" ".join(r.stderr.split())``)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Attribute) and sub.attr in ("stderr", "message"):
            return True
        if isinstance(sub, ast.Name) and (sub.id == "stderr" or sub.id in tainted):
            return True
        if (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)
                and sub.func.id == "str" and len(sub.args) == 1):
            arg = sub.args[0]
            if isinstance(arg, ast.Name) and arg.id in ("e", "exc", "err", "error"):
                return True
            if isinstance(arg, ast.Attribute) and arg.attr == "value":
                return True
    return False


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        return node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
    return None


def _tainted(tree: ast.AST) -> frozenset[str]:
    """Names that hold an error's text somewhere in the file: ``text = " ".join(
    r.stderr.split())``, ``code, out, err = result`` (``err``, ``stderr``)."""
    names: set[str] = set()
    while True:
        before = len(names)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target = node.targets[0]
            if isinstance(target, ast.Name) and _is_text_of(node.value, frozenset(names)):
                names.add(target.id)
            elif isinstance(target, ast.Tuple):
                names.update(e.id for e in target.elts
                             if isinstance(e, ast.Name) and e.id in ("err", "stderr"))
        if len(names) == before:
            return frozenset(names)


def _is_text_of(value: ast.expr, tainted: frozenset[str]) -> bool:
    """``value`` is an error's text itself, reshaped at most (joined, replaced, a line of
    it), not something computed from it (a list of lines, an event)."""
    if isinstance(value, (ast.Attribute, ast.Name)):
        return _is_error_text(value, tainted)
    if isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Name) and func.id == "str":
            return _is_error_text(value, tainted)
        if isinstance(func, ast.Attribute) and func.attr in (
                "join", "replace", "lower", "strip", "decode"):
            return _is_error_text(value, tainted)
    if isinstance(value, (ast.BinOp, ast.Subscript)):
        return _is_error_text(value, tainted)
    return False


def _words_compared(node: ast.Compare, tainted: frozenset[str]) -> bool:
    operands = [node.left, *node.comparators]
    if not any(_is_error_text(o, tainted) for o in operands):
        return False
    if not all(isinstance(op, (ast.In, ast.NotIn, ast.Eq, ast.NotEq)) for op in node.ops):
        return False
    others = [o for o in operands if not _is_error_text(o, tainted)]
    if any(_literal(o) in NOT_WORDS for o in others):
        return False
    return any(_words(o) for o in others)


def _words(node: ast.expr) -> bool:
    """Anything but a number (a return code, a length), an empty text or a tuple of those
    (``(r.returncode, r.stderr) == (0, "")``)."""
    if isinstance(node, ast.Tuple):
        return any(_words(e) for e in node.elts)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return False
    return _literal(node) not in NOT_WORDS


def findings(path: Path) -> list[tuple[int, str]]:
    """``(line, what)`` for each unmarked check of an error's words in ``path``."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()

    def marked(lineno: int, end: int) -> bool:
        """The node's lines carry the marker, or a marker comment stands above it and the
        asserts (and comments) between them."""
        if any(MARKER in line for line in lines[lineno - 1:end]):
            return True
        start = lines[lineno - 1]
        indent = len(start) - len(start.lstrip())
        for line in reversed(lines[:lineno - 1]):
            text = line.strip()
            if MARKER in line:
                return True
            deeper = len(line) - len(line.lstrip()) > indent
            if not (text.startswith(("assert ", "#")) or (deeper and text)):
                return False
        return False

    found = []
    for top in ast.parse(source).body:  # names are followed within one function
        tainted = _tainted(top)
        found += [(getattr(n, "lineno", 0), what) for n in ast.walk(top)
                  if (what := _check(n, tainted))
                  and not marked(getattr(n, "lineno", 0), getattr(n, "end_lineno", 0))]
    return sorted(found)


def _check(node: ast.AST, tainted: frozenset[str]) -> str | None:
    """What is wrong with ``node``, if it checks an error's words."""
    if isinstance(node, ast.Call):
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "raises"
                and any(k.arg == "match" for k in node.keywords)):
            return "pytest.raises(match=)"
        if (isinstance(func, ast.Attribute) and func.attr in _CALLS
                and _is_error_text(func.value, tainted)):
            return f"{func.attr} on an error's text"
    if isinstance(node, ast.Compare) and _words_compared(node, tainted):
        return "a comparison with an error's text"
    return None


#: Files with checks not converted yet, and how many: the number may only go down.
KNOWN: dict[str, int] = {}


def all_findings() -> list[str]:
    return [f"{path.relative_to(TESTS)}:{line}: {what}"
            for path in sorted(TESTS.rglob("*.py")) if path.name != Path(__file__).name
            for line, what in findings(path)]


def test_no_test_identifies_an_error_by_its_words() -> None:
    found = all_findings()
    per_file: dict[str, list[str]] = {}
    for finding in found:
        per_file.setdefault(finding.split(":", 1)[0], []).append(finding)
    new = [f for name, fs in per_file.items() if len(fs) > KNOWN.get(name, 0) for f in fs]
    assert not new, ("check the error's kind and fields (kinds.raises_kind, "
                     "kinds.cli_error), or mark the line '# words: why':\n" + "\n".join(new))
    stale = {name: n for name, n in KNOWN.items() if len(per_file.get(name, [])) < n}
    assert not stale, f"fewer unconverted checks than KNOWN says: lower it {stale}"


def test_the_check_sees_each_pattern(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "def test_x(r, e, info):\n"
        "    with pytest.raises(E, match='boom'):\n"
        "        pass\n"
        "    assert 'boom' in r.stderr\n"
        "    assert r.returncode == 1 and 'no such' in r.stderr\n"
        "    assert e.value.message.startswith('pkg:')\n"
        "    assert 'x' in str(info.value)\n"
        "    assert r.returncode == 0, r.stderr\n"
        "    assert (r.returncode, r.stderr) == (0, '')\n"
        "    assert 'Traceback' not in r.stderr\n"
        "    assert 'boom' in r.stderr  # words: the tool's upstream prints it\n"
        "    # words: the message names the file for people\n"
        "    assert 'a.toml' in e.message\n"
        "    assert 'b.toml' in e.message\n"
        "    x = 1\n"
        "    assert 'c.toml' in e.message\n"
        "    text = ' '.join(r.stderr.split())\n"
        "    assert 'd.toml' in text\n", encoding="utf-8")
    assert [line for line, _ in findings(sample)] == [2, 4, 5, 6, 7, 16, 18]
