"""Docker's variable expansion for one word: BuildKit's shell lexer, ported.

The rules are those of BuildKit's ``frontend/dockerfile/shell/lex.go``
(``shellWord.processStopOn``, ``processDollar``, ``processSingleQuote``,
``processDoubleQuote``), written here in Python; no command is ever executed:

* ``$NAME`` and ``${NAME}``: the value, or nothing when unset;
* ``${NAME:-word}`` / ``${NAME-word}``: ``word`` when unset or empty / unset;
* ``${NAME:+word}`` / ``${NAME+word}``: ``word`` when set and non-empty / set;
* ``${NAME:?msg}`` / ``${NAME?msg}``: an error when unset or empty / unset;
* ``${NAME#pat}`` / ``${NAME##pat}``: remove the shortest / longest prefix matching the
  shell pattern ``pat`` (``*``, ``?``, ``\\`` escapes); ``${NAME%pat}`` / ``${NAME%%pat}``:
  the same for a suffix;
* ``${NAME/pat/repl}`` / ``${NAME//pat/repl}``: replace the first / every match;
* quotes: ``'...'`` is literal, ``"..."`` expands variables; both are removed;
* the escape character ``\\``: outside quotes it makes the next character literal and
  disappears; inside double quotes it escapes only ``"``, ``$`` and ``\\``.

``quotes=False`` is BuildKit's ``SkipProcessQuotes`` (used for COPY/ADD heredoc bodies):
quote characters are ordinary text; escapes still apply.

:func:`expand_word` also returns the names that were referenced but had no value
(BuildKit's "unmatched" names, which its linter reports as undefined variables).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

ESCAPE = "\\"
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
#: The most ``${...}`` a word may nest (BuildKit has no limit but Go's large stacks; real
#: Containerfiles nest two or three deep). Deeper input is refused, not a RecursionError.
MAX_NESTING = 100
#: The longest text one word may expand to (characters). An ``ARG`` "billion laughs"
#: (``ARG B=$A$A$A…``, ``ARG C=$B$B$B…``) otherwise grows tenfold per line; Linux takes at
#: most 128 KiB per environment string anyway.
MAX_EXPANDED = 1 << 20


@functools.cache
def _ordinary(stop: str, quotes: bool) -> re.Pattern[str]:
    """A run of characters that :meth:`_Lexer.stop_on` copies as they are (none it acts
    on: ``stop``, ``$``, ``<``, the escape, and quotes when they are processed)."""
    special = "$<" + ESCAPE + ("'\"" if quotes else "") + stop
    return re.compile(f"[^{re.escape(special)}]+")


def shown(word: str) -> str:
    """``word`` quoted for a message, cut short when long (a message stays readable)."""
    return repr(word) if len(word) <= 80 else f"{word[:60]!r}... ({len(word)} characters)"


class ExpansionError(ValueError):
    """A word that cannot be expanded (bad substitution, unmatched quote, ``${X:?}``)."""


@dataclass(frozen=True)
class Expansion:
    text: str
    unmatched: frozenset[str]  # names referenced without a value (expanded to "")
    matched: frozenset[str]  # names referenced that had one


def expand(word: str, env: Mapping[str, str], *, quotes: bool = True) -> str:
    """Expand ``word`` with ``env`` as Docker does (see the module docs)."""
    return expand_word(word, env, quotes=quotes).text


def expand_word(word: str, env: Mapping[str, str], *, quotes: bool = True) -> Expansion:
    """Expand ``word``; also say which names had no value (see the module docs)."""
    lexer = _Lexer(word, env, quotes)
    text = lexer.run()
    return Expansion(text, frozenset(lexer.unmatched), frozenset(lexer.matched))


class _Lexer:
    def __init__(self, word: str, env: Mapping[str, str], quotes: bool) -> None:
        self.word = word
        self.env = env
        self.quotes = quotes
        self.pos = 0
        self.raw_escapes = False
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()
        self.depth = 0
        self.shown = shown(word)

    def bounded(self, out: list[str], size: int, piece: str) -> int:
        """Append ``piece`` to ``out``; the new size, or an ExpansionError past the bound."""
        size += len(piece)
        if size > MAX_EXPANDED:
            raise ExpansionError(f"{self.shown} expands to more than {MAX_EXPANDED} "
                                 "characters (variables that repeat each other?)")
        out.append(piece)
        return size

    # -- scanner ---------------------------------------------------------------------------
    def peek(self) -> str:
        return self.word[self.pos] if self.pos < len(self.word) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def get(self, name: str) -> str | None:
        value = self.env.get(name)
        (self.matched if value is not None else self.unmatched).add(name)
        return value

    def run(self) -> str:
        return self.stop_on("", False)

    # -- lex.go: processStopOn -------------------------------------------------------------
    def stop_on(self, stop: str, raw_escapes: bool) -> str:
        """Characters up to ``stop`` (consumed; "" = the end). A missing ``stop`` is an
        :class:`_Unterminated` error."""
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            out: list[str] = []
            size = 0
            while self.pos < len(self.word):
                ch = self.peek()
                if stop and ch == stop:
                    self.pos += 1
                    return "".join(out)
                if ch == "$":
                    size = self.bounded(out, size, self.dollar())
                elif ch == "<":
                    out.append(self.possible_heredoc())
                elif self.quotes and ch == "'":
                    out.append(self.single_quoted())
                elif self.quotes and ch == '"':
                    size = self.bounded(out, size, self.double_quoted())
                elif ch != ESCAPE:  # ordinary text: up to the next character above, at once
                    run = _ordinary(stop, self.quotes).match(self.word, self.pos)
                    assert run is not None  # ch itself is ordinary
                    out.append(run.group())
                    self.pos = run.end()
                else:
                    self.pos += 1
                    if ch == ESCAPE:
                        if self.raw_escapes:
                            out.append(ch)
                        if self.pos >= len(self.word):
                            break  # a lone trailing escape disappears
                        ch = self.next()
                    out.append(ch)
            if stop:
                raise _Unterminated(f"unexpected end of text while looking for matching {stop}")
            return "".join(out)
        finally:
            self.raw_escapes = saved

    def possible_heredoc(self) -> str:
        self.pos += 1
        if self.peek() != "<":
            return "<"
        self.pos += 1
        start = self.pos
        while self.peek() in ("\t", "\r", " ") and self.peek():
            self.pos += 1
        return "<<" + self.word[start:self.pos]

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
        size = 0
        while True:
            if self.pos >= len(self.word):
                raise ExpansionError('unexpected end of text while looking for the matching "')
            ch = self.peek()
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "$":
                size = self.bounded(out, size, self.dollar())
                continue
            self.pos += 1
            if ch == ESCAPE:
                if self.raw_escapes:
                    out.append(ch)
                following = self.peek()
                if following == "":
                    continue
                if following in ('"', "$", ESCAPE):
                    ch = self.next()
            out.append(ch)

    # -- lex.go: processName / processDollar -----------------------------------------------
    def name(self) -> str:
        start = self.pos
        ch = self.peek()
        if ch.isdecimal():
            while self.peek().isdecimal() and self.peek():
                self.pos += 1
            return self.word[start:self.pos]
        if ch and ch in _SPECIAL_PARAMS:
            self.pos += 1
            return ch
        while (ch := self.peek()) and (ch.isalpha() or ch.isdecimal() or ch == "_"):
            self.pos += 1
        return self.word[start:self.pos]

    def dollar(self) -> str:
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise ExpansionError(f"{self.shown} nests ${{...}} more than {MAX_NESTING} "
                                     "deep")
            return self._dollar()
        finally:
            self.depth -= 1

    def _dollar(self) -> str:
        self.pos += 1  # the '$'
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.get(name) or ""
        self.pos += 1  # the '{'
        ch = self.peek()
        if ch == "":
            raise ExpansionError(f"missing '}}' in {self.shown}")
        if ch in "{}:":
            raise ExpansionError(f"bad substitution in {self.shown}")
        name = self.name()
        op = self.next()
        if op == "}":
            return self.get(name) or ""
        if op == "/":
            return self.replace(name)
        shown = op
        null_is_unset = op == ":"
        if null_is_unset:
            op = self.next()
            shown += op
        if op not in ("+", "-", "?", "#", "%") and not null_is_unset:
            raise ExpansionError(f"unsupported modifier ({shown}) in substitution "
                                 f"in {self.shown}")
        pattern_op = op in ("#", "%")
        if null_is_unset and pattern_op:
            raise ExpansionError(f"unsupported modifier ({shown}) in substitution "
                                 f"in {self.shown}")
        try:
            word = self.stop_on("}", pattern_op)
        except _Unterminated:
            raise ExpansionError(f"missing '}}' in {self.shown}") from None
        value = self.get(name)
        unset = value is None or (null_is_unset and value == "")
        if op == "-":
            return word if unset or value is None else value
        if op == "+":
            return "" if unset else word
        if op == "?":
            if value is None:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if unset:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if op in ("#", "%"):
            greedy = word.startswith(op)
            if greedy:
                word = word[1:]
            text = value or ""
            if op == "#":
                return _trim_prefix(word, text, greedy)
            return _trim_prefix(_reverse_pattern(word), text[::-1], greedy)[::-1]
        raise ExpansionError(f"unsupported modifier ({shown}) in substitution in {self.shown}")

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.pos += 1
        try:
            pattern = self.stop_on("/", True)
        except _Unterminated:
            raise ExpansionError(f"missing '/' in ${{}} in {self.shown}") from None
        try:
            replacement = self.stop_on("}", True)
        except _Unterminated:
            raise ExpansionError(f"missing '}}' in {self.shown}") from None
        value = self.get(name) or ""
        regex = _pattern_regex(pattern, greedy=True, anchored=False)
        repl = _go_template(replacement)
        size = len(value)

        def bounded(m: re.Match[str]) -> str:
            nonlocal size
            text = m.expand(repl)
            size += len(text) - len(m.group(0))
            if size > MAX_EXPANDED:
                raise ExpansionError(f"{self.shown} expands to more than {MAX_EXPANDED} "
                                     "characters")
            return text

        return regex.sub(bounded, value, count=0 if replace_all else 1)


class _Unterminated(ExpansionError):
    """A stop character that never came (turned into a specific message by the caller)."""


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell pattern (``*``, ``?``, ``\\`` escapes; no brackets) as a regex, as
    lex.go's ``convertShellPatternToRegex`` builds it."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
        elif tok == "?":
            out.append(".")
        elif tok == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue  # the escape was for ${}, not the pattern
            if nxt not in ("*", "?", "\\"):
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution: "
                                     f"invalid escape '\\{nxt}'")
            out.append(re.escape(nxt))
            i += 1
        else:
            out.append(re.escape(tok))
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    match = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end():] if match is not None else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern keeping each ``\\x`` escape in front of its character."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _go_template(replacement: str) -> str:
    """Go's ``Regexp.ReplaceAllString`` template (``$$`` → ``$``, ``$0``/``${0}`` → the
    match, other ``$name`` → nothing: these patterns have no groups) as a Python one."""
    out: list[str] = []
    i = 0
    while i < len(replacement):
        ch = replacement[i]
        if ch != "$":
            out.append(ch.replace("\\", "\\\\"))
            i += 1
            continue
        rest = replacement[i + 1:]
        if rest.startswith("$"):
            out.append("$")
            i += 2
            continue
        braced = re.match(r"\{([A-Za-z0-9_]+)\}", rest)
        bare = re.match(r"[A-Za-z0-9_]+", rest)
        found = braced or bare
        if found is None:
            out.append("$")  # Go keeps a '$' that starts no name
            i += 1
            continue
        name = braced.group(1) if braced else found.group(0)
        if name == "0":
            out.append(r"\g<0>")
        i += 1 + found.end()
    return "".join(out)
