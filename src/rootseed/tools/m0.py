"""M0: stage0-posix-x86's minimal macro assembler (``M0 INPUT OUTPUT``).

Written from the comments of stage0-posix-x86's ``M0_x86.hex2`` (pinned commit a15adc72).
M0 reads one file of tokens: atoms end at a space, tab, newline or NUL; ``"`` and ``'``
strings run to the same quote (across lines); ``#`` and ``;`` at the start of a token begin
a comment to the end of the line (a NUL byte does too). Then:

* ``DEFINE NAME VALUE`` gives every *later* token spelled NAME the text VALUE (a later
  DEFINE of the same name takes over from there); the three tokens print nothing.
* ``'..'`` strings print their contents; ``".."`` strings print each byte as two hex
  digits, then ``00``.
* Any other token without an expression is read as ``<prefix><number>``: the number after
  the first character is decimal (``-`` allowed) or, when its second character is ``x``,
  hex in capitals. When it is non-zero, or is spelled with a ``0`` first, the token
  becomes the number's bytes in little-endian hex: 4 for ``%``, 2 for ``@``, and 1 for
  any other prefix. Everything else (labels ``:a``, references ``&a``/``%a``) is printed
  as is.
* Every token that prints, prints on its own line.

Inputs the original cannot handle (it loops forever, crashes or corrupts its memory) are
refused with a message and exit status 1: a token or comment cut off by the end of the
file, an empty input, a DEFINE without name and value or at the very end, and tokens
of 256 bytes or more. A 0xFC byte where a token may start ends the input, as in the
original (which compares only the low byte of its EOF marker).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rootseed.tools import _outfile
from rootseed.tools._util import ToolError

MAX_TOKEN = 255  # M0 keeps each token in a 256-byte buffer, NUL included
_EOF_BYTE = "\xfc"  # M0 marks end of file as -4 and compares only the low byte

_TOKEN = re.compile(
    r"""[;#\0][^\n]*\n?|"[^"]*"?|'[^']*'?|\xfc|[^\n\t ;#\0"'\xfc][^\n\t \0]*[\n\t \0]?""")


@dataclass
class _Token:
    text: str
    line: int
    is_string: bool = False
    is_macro: bool = False
    expression: str | None = field(default=None)


def _tokens(text: str, name: str) -> list[_Token]:
    tokens: list[_Token] = []
    line = 1
    for m in _TOKEN.finditer(text):
        tok = m.group()
        first = tok[0]
        if first == _EOF_BYTE:
            break  # where a token may start, M0 takes 0xFC for the end of the file
        if first in ";#\0":
            if not tok.endswith("\n"):
                raise ToolError(f"M0: {name}:{line}: comment not ended by a newline at the end "
                                "of the file (the original never stops)\n")
        else:
            is_string = first in "\"'"
            if is_string and (len(tok) == 1 or tok[-1] != first):
                raise ToolError(f"M0: {name}:{line}: unterminated string (the original never "
                                "stops)\n")
            if not is_string and tok[-1] not in "\n\t \0":
                raise ToolError(f"M0: {name}:{line}: the last token must be followed by a "
                                "newline or space (the original never stops)\n")
            tok = tok[:-1]
            if len(tok) > MAX_TOKEN:
                raise ToolError(f"M0: {name}:{line}: token of {len(tok)} bytes; the original "
                                f"holds at most {MAX_TOKEN}\n")
            # tokens are C strings: a NUL inside a string ends it
            tokens.append(_Token(tok.split("\0", 1)[0], line, is_string=is_string))
        line += m.group().count("\n")
    return tokens


def _number(text: str) -> int:
    """M0's numerate_string: decimal with optional ``-``, or hex when ``text[1]`` is ``x``;
    anything unexpected gives 0."""
    if text[1:2] == "x":
        value = 0
        for ch in text[2:]:
            digit = ord(ch) - 48
            if digit >= 10:
                digit -= 7
            if digit < 0 or digit > 15:
                return 0
            value = (value << 4 | digit) & 0xFFFFFFFF
        return value
    negative = text[:1] == "-"
    value = 0
    for ch in text[1:] if negative else text:
        digit = ord(ch) - 48
        if digit < 0 or digit > 9:
            return 0
        value = (value * 10 + digit) & 0xFFFFFFFF
    return -value & 0xFFFFFFFF if negative else value


def _express(value: int, prefix: str) -> str:
    size = 4 if prefix == "%" else 2 if prefix == "@" else 1
    return value.to_bytes(4, "little")[:size].hex().upper()


def _define(tokens: list[_Token]) -> list[_Token]:
    """Turn each DEFINE and its name and value into one macro token."""
    out: list[_Token] = []
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        if tok.text == "DEFINE" and not tok.is_string:
            if k + 2 >= len(tokens):
                raise ToolError(f"M0: line {tok.line}: DEFINE needs a name and a value, and "
                                "must not end the file (the original crashes)\n")
            out.append(_Token(tokens[k + 1].text, tok.line, is_macro=True,
                              expression=tokens[k + 2].text))
            k += 3
        else:
            out.append(tok)
            k += 1
    if out and out[-1].is_macro:
        raise ToolError(f"M0: line {out[-1].line}: a DEFINE must not end the file (the "
                        "original crashes)\n")
    return out


def assemble(source: bytes, name: str = "<input>") -> bytes:
    """M0 on the contents of one file: the hex2 text it writes."""
    tokens = _define(_tokens(source.decode("latin-1"), name))
    if not tokens:
        raise ToolError(f"M0: {name}: no tokens (the original crashes on empty input)\n")
    macros: dict[str, str] = {}
    for tok in tokens:
        if tok.is_macro:
            macros[tok.text] = tok.expression or ""
        elif tok.text in macros:
            tok.expression = macros[tok.text]
    for tok in tokens:
        if tok.is_macro:
            continue
        if tok.is_string:
            tok.expression = (tok.text[1:] if tok.text[0] == "'"
                              else tok.text[1:].encode("latin-1").hex().upper() + "00")
        elif tok.expression is None:
            value = _number(tok.text[1:])
            if value != 0 or tok.text[1:2] == "0":
                tok.expression = _express(value, tok.text[0])
    lines = [(tok.text if tok.expression is None else tok.expression) + "\n"
             for tok in tokens if not tok.is_macro]
    return "".join(lines).encode("latin-1")


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print("usage: M0 INPUT [OUTPUT]", file=sys.stderr)
        return 2
    src = Path(argv[0])
    try:
        data = src.read_bytes()
    except OSError as e:
        print(f"M0: cannot read {src}: {e.strerror}", file=sys.stderr)
        return 1
    output = _outfile.reserve(argv[1]) if len(argv) == 2 else None
    try:
        result = assemble(data, argv[0])
    except ToolError as e:
        if output is not None:
            output.discard()
        sys.stderr.write(e.message)
        return 1
    _outfile.emit(output, result, mode=0o600)  # M0 creates its output rw for the owner
    return 0
