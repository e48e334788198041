"""Docker's variable expansion for one word (BuildKit's shell lexer rules, no execution).

Supported, as Docker does:

* ``$NAME`` and ``${NAME}``: the value, or nothing when unset;
* ``${NAME:-word}`` / ``${NAME-word}``: ``word`` when unset or empty / unset;
* ``${NAME:+word}`` / ``${NAME+word}``: ``word`` when set and non-empty / set;
* ``${NAME:?msg}`` / ``${NAME?msg}``: an error when unset or empty / unset;
* quotes: ``'...'`` is literal, ``"..."`` expands variables; both are removed;
* the escape character ``\\``: outside quotes it makes the next character literal and
  disappears; inside double quotes it escapes only ``"``, ``$`` and ``\\``.

``quotes=False`` is the mode Docker uses for ``COPY``/``ADD`` heredoc bodies: quote
characters are ordinary text (kept, and ``'$X'`` still expands); escapes still apply.
Which instructions expand and how ARG/ENV are scoped lives in :mod:`.scope`.
"""

from __future__ import annotations

from collections.abc import Mapping

ESCAPE = "\\"
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ExpansionError(ValueError):
    """A word that cannot be expanded (bad substitution, unmatched quote, ``${X:?}``)."""


def expand(word: str, env: Mapping[str, str], *, quotes: bool = True) -> str:
    """Expand ``word`` with ``env`` as Docker does (see the module docs)."""
    return _Lexer(word, env, quotes).run()


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], quotes: bool) -> None:
        self.word = word
        self.env = env
        self.quotes = quotes
        self.pos = 0

    def peek(self) -> str:
        return self.word[self.pos] if self.pos < len(self.word) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def run(self) -> str:
        text, _ = self.until("")
        return text

    def until(self, stop: str) -> tuple[str, bool]:
        """Process characters up to ``stop`` (consumed); return (text, found stop)."""
        out: list[str] = []
        while self.pos < len(self.word):
            ch = self.peek()
            if stop and ch == stop:
                self.pos += 1
                return "".join(out), True
            if ch == "$":
                out.append(self.dollar())
            elif self.quotes and ch == "'":
                out.append(self.single_quoted())
            elif self.quotes and ch == '"':
                out.append(self.double_quoted())
            else:
                self.pos += 1
                if ch == ESCAPE:
                    if self.pos >= len(self.word):
                        break  # a lone trailing escape disappears
                    ch = self.next()
                out.append(ch)
        return "".join(out), False

    def single_quoted(self) -> str:
        self.pos += 1
        end = self.word.find("'", self.pos)
        if end < 0:
            raise ExpansionError("unexpected end of text while looking for the matching '")
        text = self.word[self.pos:end]
        self.pos = end + 1
        return text

    def double_quoted(self) -> str:
        self.pos += 1
        out: list[str] = []
        while True:
            if self.pos >= len(self.word):
                raise ExpansionError('unexpected end of text while looking for the matching "')
            ch = self.peek()
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            self.pos += 1
            if ch == ESCAPE:
                following = self.peek()
                if following == "":
                    continue
                if following in ('"', "$", ESCAPE):
                    ch = self.next()
            out.append(ch)

    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdigit():
            while self.peek().isdigit():
                self.pos += 1
            return self.word[start:self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            self.pos += 1
            return ch
        while (ch := self.peek()) and (ch.isalnum() or ch == "_"):
            self.pos += 1
        return self.word[start:self.pos]

    def dollar(self) -> str:
        self.pos += 1  # the '$'
        if self.peek() != "{":
            name = self.name()
            return self.env.get(name, "") if name else "$"
        self.pos += 1  # the '{'
        name = self.name()
        if not name:
            raise ExpansionError(f"bad substitution in {self.word!r}")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if ch == "":
            raise ExpansionError(f"missing '}}' in {self.word!r}")
        colon = ch == ":"
        op = self.next() if colon else ch
        if op not in ("-", "+", "?"):
            shown = (":" if colon else "") + op
            raise ExpansionError(
                f"unsupported substitution '${{{name}{shown}...}}' in {self.word!r} "
                "(supported: ${X}, ${X:-d}, ${X-d}, ${X:+d}, ${X+d}, ${X:?m}, ${X?m})")
        word, found = self.until("}")
        if not found:
            raise ExpansionError(f"missing '}}' in {self.word!r}")
        value = self.env.get(name)
        present = value is not None and (value != "" or not colon)
        if op == "-":
            return value if present and value is not None else word
        if op == "+":
            return word if present else ""
        if not present:
            raise ExpansionError(f"{name}: {word or 'is not set'}")
        return value or ""
