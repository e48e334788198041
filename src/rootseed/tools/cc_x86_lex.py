"""cc_x86's reader: source bytes to tokens, and its string and character encodings.

Written from stage0-posix-x86's ``cc_x86.M1`` (and the GAS listing beside it, pinned
commit a15adc72). The reader has no lines or types, only these rules, applied from the
current character:

* spaces, tabs and newlines are skipped; ``#`` skips to the end of the line (so
  ``#include`` and ``#define`` lines vanish);
* a run of ``[0-9A-Za-z_]`` is one token; when a ``:`` follows it, the token becomes
  ``:NAME`` (a goto label) and the ``:`` itself is dropped;
* a run of ``<=>|&!-`` is one token (so ``=-`` is one token, as in the original);
* ``"`` and ``'`` start a literal that runs to the same unescaped quote; the token keeps
  the opening quote and the raw text, not the closing quote;
* ``/*`` starts a comment that ends at the first ``/`` seen right after a ``*`` or right
  at its start (``/*/`` is a whole comment); ``//`` drops itself and the next character
  only, which is how ``// CONSTANT NAME VALUE`` lines reach the compiler;
* any other character is a token of its own.

Where the original cannot go on (it loops forever at an unterminated comment, literal or
``#`` line, or writes past a 256-byte token buffer) these functions raise
:class:`~rootseed.tools._util.ToolError` instead. A 0xFC byte ends the input, as there
(cc_x86 marks end of file as -4 and compares after a one-byte read), and NUL bytes are
refused (cc_x86 would cut the token short at them).
"""

from __future__ import annotations

from rootseed.tools._util import ToolError


class BeyondCcX86(ToolError):
    """An input the original cc_x86 does not handle at all (it would crash, loop forever
    or overrun a buffer): refused here, where cc_x86 has no message of its own."""


MAX_TOKEN = 255  # each token lives in a 256-byte buffer, its NUL included
_ALPHAS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz")
_SYMBOLS = frozenset("<=>|&!-")
_WHITE = frozenset(" \n\t")
#: the characters a "..." string may hold and still be written as an M1 "..." string
_PLAIN = frozenset("\t\n !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`"
                   "abcdefghijklmnopqrstuvwxyz{|}~")
_SPACES = frozenset("\t\n\r ")


def tokenize(source: bytes) -> list[str]:
    """The token texts of ``source``, in order (latin-1 text, one char per byte)."""
    end = source.find(b"\xfc")
    if end >= 0:
        source = source[:end]
    if b"\0" in source:
        raise BeyondCcX86("the input holds a NUL byte, which cc_x86 cannot read as C")
    text = source.decode("latin-1")
    n = len(text)
    tokens: list[str] = []
    i = 0  # index of the next unread character
    c = text[0] if n else None  # the current character; None is the end of input
    i = 1

    def unterminated(what: str) -> ToolError:
        return BeyondCcX86(f"{what} runs to the end of the input (cc_x86 never stops there)")

    while c is not None:
        # one get_token: reset until something is kept
        while True:
            while c in _WHITE:
                c = text[i] if i < n else None
                i += 1
            if c is None:
                return tokens
            if c == "#":
                j = text.find("\n", i)
                if j < 0:
                    raise unterminated("a '#' line")
                i = j + 1
                c = "\n"
                continue
            start = i - 1
            if c in _ALPHAS:
                while c in _ALPHAS:
                    c = text[i] if i < n else None
                    i += 1
                word = text[start:i - 1]
                if c == ":":
                    word = ":" + word
                    c = " "
                _add(tokens, word)
                break
            if c in _SYMBOLS:
                while c in _SYMBOLS:
                    c = text[i] if i < n else None
                    i += 1
                _add(tokens, text[start:i - 1])
                break
            if c == '"' or c == "'":
                quote, escape = c, False
                while True:
                    if escape:
                        escape = False
                    elif c == "\\":
                        escape = True
                    if i >= n:
                        raise unterminated("a string or character literal")
                    c = text[i]
                    i += 1
                    if not escape and c == quote:
                        break
                _add(tokens, text[start:i - 1])
                c = text[i] if i < n else None
                i += 1
                break
            if c == "/":
                c = text[i] if i < n else None
                i += 1
                if c == "*":
                    c = text[i] if i < n else None
                    i += 1
                    while c != "/":
                        while c != "*":
                            if c is None:
                                raise unterminated("a /* comment")
                            c = text[i] if i < n else None
                            i += 1
                        c = text[i] if i < n else None
                        i += 1
                    c = text[i] if i < n else None
                    i += 1
                    continue
                if c == "/":
                    c = text[i] if i < n else None
                    i += 1
                    continue
                tokens.append("/")
                break
            tokens.append(c)
            c = text[i] if i < n else None
            i += 1
            break
    return tokens


def _add(tokens: list[str], word: str) -> None:
    if len(word) > MAX_TOKEN:
        raise BeyondCcX86(f"a token of {len(word)} bytes (cc_x86 keeps at most {MAX_TOKEN}): "
                        f"{word[:40]}...")
    tokens.append(word)


def _at(s: str, i: int) -> int:
    """``s[i]`` as cc_x86 reads it: the byte, or 0 past the end (its buffers are zeroed)."""
    return ord(s[i]) if i < len(s) else 0


def _char2hex(c: int) -> int:
    v = c - 48
    if v < 10:
        return v  # anything below '0' comes back negative, unchecked
    v = (v & 0xDF) - 7
    if 10 <= v < 16:
        return v
    raise ToolError("Tried to print non-hex number\n")


def escape_value(s: str, i: int) -> int:
    """The value of the character (or ``\\`` escape) at ``s[i]`` (cc_x86's escape_lookup)."""
    c = _at(s, i)
    if c != 92:
        return c
    e = _at(s, i + 1)
    if e == 120:  # \xHH
        return (_char2hex(_at(s, i + 2)) << 4) + _char2hex(_at(s, i + 3))
    if e == 110:
        return 10
    if e == 116:
        return 9
    if e in (92, 39, 34):
        return e
    if e == 114:
        return 13
    raise ToolError(f"Unknown escape received: {s[i:]} Unable to process\n")


def _needs_hex(s: str) -> bool:
    """cc_x86's ``weird``: must the "..." token ``s`` be written as hex bytes?"""
    i = 1
    while True:
        c = _at(s, i)
        if c == 0:
            return False
        if c == 92:
            c = escape_value(s, i)
            i += 1
            if _at(s, i) == 120:
                i += 2
        if not _in_set(c, _PLAIN):
            return True
        i += 1
        if _in_set(c, _SPACES) and _at(s, i) == 58:
            return True  # whitespace then ':' would read as an M1 label


def _in_set(c: int, chars: frozenset[str]) -> bool:
    # cc_x86's In_Set also answers yes for 0 (it meets the set's terminating NUL)
    return c == 0 or (0 < c < 256 and chr(c) in chars)


def string_literal(s: str) -> str:
    """The M1 text (with its newline) for the "..." token ``s`` (cc_x86's parse_string)."""
    if _needs_hex(s):
        return _hex_string(s)
    out = ['"']
    i = 1
    n = len(s)
    while i < n:
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        out.append(chr(escape_value(s, i) & 0xFF))
        i += 3 if _at(s, i + 1) == 120 else 1
        i += 1
    body = "".join(out)
    if len(body) + 2 > MAX_TOKEN:  # the copy lives in a 256-byte buffer
        raise BeyondCcX86(f"a string of {len(body) - 1} bytes (cc_x86 keeps at most "
                        f"{MAX_TOKEN - 3}): {s[:40]}...")
    # cc_x86 prints its strings up to their first NUL: a "\x00" cuts the literal short
    return (body + '"\n').split("\0", 1)[0]


def _hex_string(s: str) -> str:
    out = ["'"]
    i = 1
    while _at(s, i) != 0:
        v = escape_value(s, i) & 0xFFFFFFFF
        out.append(f" {(v >> 4) & 0xF:X}{v & 0xF:X}")
        c = _at(s, i)
        i += 1
        if c == 92:
            c = _at(s, i)
            i += 1
            if c == 120:
                i += 2
    text = "".join(out) + " 00'\n"
    if len(text) > 511:  # the copy lives in a 512-byte buffer
        raise BeyondCcX86(f"a string of {len(out) - 1} bytes written as hex (cc_x86 keeps "
                        f"at most 168): {s[:40]}...")
    return text
