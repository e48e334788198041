"""Reading M1 source into tokens (the lexical half of M1).

A token is an *atom* (a run of characters up to a space, tab or newline), a *string*
(``"..."`` or ``'...'``; a string may span lines and is kept with its opening quote but
without its closing one), or a line break. ``#`` and ``;`` at the start of a token begin a
comment to the end of the line (a comment also ends at a carriage return). Line breaks
never repeat: a run of them is one :data:`NL` token, and the list never starts with one.

Atoms and strings of 4096 characters or more are refused, as M1 refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rootseed.tools._util import ToolError

NL = "\n"
MAX_STRING = 4096

_TOKEN = re.compile(r"""\n|[;#][^\n\r]*[\n\r]?|"[^"]*"|'[^']*'|["']|[^ \t\n"';#][^ \t\n]*""")


@dataclass(frozen=True)
class SourceFile:
    """One input file: its name as given, its text, and where its tokens start."""

    name: str
    text: str
    first_token: int


def tokenize(name: str, text: str, tokens: list[str]) -> None:
    """Append the tokens of ``text`` (from file ``name``) to ``tokens``."""
    if "\0" in text:
        raise ToolError(
            f"M1: {name}:{text.count(NL, 0, text.index(chr(0))) + 1}: NUL byte in input\n"
            "(the original reads C strings and silently corrupts such input; not supported)\n")
    append = tokens.append
    for tok in _TOKEN.findall(text):
        first = tok[0]
        if first == NL or first == ";" or first == "#":
            if tokens and tokens[-1] != NL:
                append(NL)
        elif first == '"' or first == "'":
            if len(tok) == 1 or len(tok) > MAX_STRING:
                _raise_exact(name, text)
            append(tok[:-1])
        else:
            if len(tok) >= MAX_STRING:
                _raise_exact(name, text)
            append(tok)
    if tokens and tokens[-1] != NL:
        append(NL)


def _line_error(name: str, line: int) -> str:
    return f"{name}:{line} :"


def scan(name: str, text: str) -> Iterator[tuple[str, int]]:
    """Every non-newline token of ``text`` with the line M1 reports for it.

    The slow path: used to find the exact error and line when something went wrong.
    """
    line = 1
    for m in _TOKEN.finditer(text):
        tok = m.group()
        first = tok[0]
        if first == NL or first == ";" or first == "#":
            line += 1
        elif first == '"' or first == "'":
            start = m.start()
            if len(tok) == 1 or len(tok) > MAX_STRING:
                if len(tok) > MAX_STRING or len(text) - start > MAX_STRING:
                    head = text[start:start + MAX_STRING]
                    raise ToolError(
                        f"{_line_error(name, line + head.count(NL))}String: {head}"
                        " exceeds max string size\n")
                raise ToolError('Unmatched "!\n')
            yield tok[:-1], line
            line += tok.count(NL)
        else:
            if len(tok) >= MAX_STRING:
                raise ToolError("storing atom of size larger than max_string\n"
                                f"{_line_error(name, line)}\n")
            yield tok, line


def _raise_exact(name: str, text: str) -> None:
    for _ in scan(name, text):
        pass
    raise AssertionError("scan() found no error where tokenize() did")  # pragma: no cover


def locate(files: list[SourceFile], tokens: list[str], index: int) -> str:
    """``file:line :`` for the token at ``index`` of ``tokens``, as M1 prints it."""
    source = [f for f in files if f.first_token <= index][-1]
    nth = sum(1 for t in tokens[source.first_token:index] if t != NL)
    for k, (_, line) in enumerate(scan(source.name, source.text)):
        if k == nth:
            return _line_error(source.name, line)
    return _line_error(source.name, 0)  # pragma: no cover - index always names a token
