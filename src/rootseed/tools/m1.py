"""M1: mescc-tools' macro assembler, M1 source in, hex2 source out.

Written from mescc-tools' documentation and behaviour (pinned commit 08d5a067, "M1
1.5.0"); the C was read only to settle details. The steps:

1. every ``-f`` file is read into one token list (:mod:`rootseed.tools.m1_lex`);
2. ``DEFINE NAME VALUE`` gives the text NAME the expression VALUE everywhere (before and
   after the definition; the last definition wins; a string VALUE is used without its
   quote) and is itself replaced by a line break;
3. every distinct text gets its expression (:mod:`rootseed.tools.m1_encode`);
4. tokens are printed with their expressions, separated by single spaces, one line of
   output per run of line breaks.

Undefined texts are an error ("Received invalid other"), reported with file and line.

Where the original would crash (an option without its argument) or corrupt its input (NUL
bytes), this one stops with a message and exit status 1; on every error it leaves no
output file (the original leaves a truncated one).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from rootseed.tools import _outfile
from rootseed.tools._numbers import ByteMode
from rootseed.tools._util import ToolError, option_argument, read_source
from rootseed.tools.m1_encode import ARCHITECTURES, Family, Target, hexify, immediate, passthrough
from rootseed.tools.m1_lex import NL, SourceFile, locate, tokenize

VERSION = "M1 1.5.0\n"
USAGE = ("Usage: {prog} --file FILENAME1 {{-f FILENAME2}} (--big-endian|--little-endian) "
         "[--architecture name]\nArchitectures: knight-native, knight-posix, x86, amd64, "
         "armv7, riscv32 and riscv64\nTo leverage octal or binary output: --octal, --binary\n")


class Assembler:
    """Collects source files, then renders them for one target."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.files: list[SourceFile] = []

    def add(self, name: str, data: bytes) -> None:
        text = data.decode("latin-1")
        self.files.append(SourceFile(name, text, len(self.tokens)))
        tokenize(name, text, self.tokens)

    def render(self, target: Target) -> bytes:
        if not self.tokens:
            raise ToolError("Either no input files were given or they were empty\n")
        kept, expressions = _apply_defines(self.tokens)
        out = [NL if self.tokens[i] == "DEFINE" else self.tokens[i] for i in kept]
        _evaluate(self.tokens, expressions, target)
        return _print(out, expressions, lambda k: locate(self.files, self.tokens, kept[k]))


def _apply_defines(tokens: list[str]) -> tuple[list[int], dict[str, str]]:
    """Indices of the tokens left after removing DEFINE's name and value, and the macros."""
    macros: dict[str, str] = {}
    kept: list[int] = []
    start = 0
    count = len(tokens)
    for at in (i for i, t in enumerate(tokens) if t == "DEFINE"):
        if at < start:  # this DEFINE was the name or value of the one before
            continue
        if at + 1 >= count:
            raise ToolError("Macro name must exist\n")
        if at + 2 >= count:
            raise ToolError("Macro value must exist\n")
        value = tokens[at + 2]
        macros[tokens[at + 1]] = value[1:] if value[0] in "'\"" else value
        kept.extend(range(start, at + 1))  # the DEFINE itself stays, as a line break
        start = at + 3
    kept.extend(range(start, count))
    return kept, macros


def _evaluate(tokens: list[str], expressions: dict[str, str], target: Target) -> None:
    """Give every distinct token text its expression, newest text first (as M1 does)."""
    texts = [t for t in dict.fromkeys(tokens) if t != NL]
    for text in texts:
        if text[0] == "'":
            expressions[text] = text[1:]
        elif text[0] == '"':
            expressions[text] = hexify(text, target)
    newest_first = texts[::-1]
    for text in newest_first:
        if text not in expressions and text[0] != "<":
            value = immediate(text, target)
            if value is not None:
                expressions[text] = value
    for text in newest_first:
        if text not in expressions:
            value = passthrough(text, target)
            if value is not None:
                expressions[text] = value


def _print(out: list[str], expressions: dict[str, str], where: Callable[[int], str]) -> bytes:
    last = len(out) - 1
    parts: list[str] = []
    append = parts.append
    for k, token in enumerate(out):
        following = out[k + 1] if k < last else NL
        if token == NL:
            if k == last or following != NL:
                append(NL)
            continue
        value = expressions.get(token)
        if value is None:
            raise ToolError(f"{where(k)}Received invalid other; {token}\n")
        append(value)
        if following != NL:
            append(" ")
    return "".join(parts).encode("latin-1")


def assemble(sources: Sequence[tuple[str, bytes]], architecture: str = "knight-native",
             big_endian: bool = True, byte_mode: ByteMode = ByteMode.HEX) -> bytes:
    """M1 on ``sources`` (name, contents) in order: the hex2 text it writes."""
    assembler = Assembler()
    for name, data in sources:
        assembler.add(name, data)
    return assembler.render(Target(ARCHITECTURES[architecture], big_endian, byte_mode))


def _run(argv: list[str], outputs: list[_outfile.PendingOutput]) -> int:
    family, big_endian, mode = Family.KNIGHT, True, ByteMode.HEX
    assembler = Assembler()
    output: _outfile.PendingOutput | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        step = 1
        if arg == "--big-endian":
            big_endian = True
        elif arg == "--little-endian":
            big_endian = False
        elif arg in ("-A", "--architecture"):
            name, step = option_argument("M1", argv, i), 2
            if name not in ARCHITECTURES:
                raise ToolError(f"Unknown architecture: {name} know values are: knight-native, "
                                "knight-posix, x86, amd64, armv7l, aarch64, ppc64le, riscv32 "
                                "and riscv64")
            family = ARCHITECTURES[name]
        elif arg in ("-b", "--binary"):
            mode = ByteMode.BINARY
        elif arg in ("-h", "--help"):
            sys.stderr.write(USAGE.format(prog="M1"))
            return 0
        elif arg in ("-f", "--file"):
            name, step = option_argument("M1", argv, i), 2
            assembler.add(name, read_source(name))
        elif arg in ("-o", "--output"):
            name, step = option_argument("M1", argv, i), 2
            output = _outfile.reserve(name)
            if output is None:
                raise ToolError(f"The file: {name} can not be opened!\n")
            outputs.append(output)
        elif arg in ("-O", "--octal"):
            mode = ByteMode.OCTAL
        elif arg in ("-V", "--version"):
            sys.stdout.write(VERSION)
            return 0
        else:
            raise ToolError("Unknown option\n")
        i += step
    data = assembler.render(Target(family, big_endian, mode))
    _outfile.emit(output, data)
    return 0


def main(argv: list[str]) -> int:
    return _outfile.guarded_main(_run, argv)
