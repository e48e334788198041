"""kaem-minimal (stage0-posix x86 ``kaem-minimal.hex0``): run a script, one command a line.

``kaem-minimal [SCRIPT]`` (default ``kaem.x86``). Tokens are separated by spaces and tabs;
a newline ends the command. ``"..."`` appends everything up to the next ``"`` to the
current token and then ends it; ``#`` starts a comment that ends the command; ``\\``
drops the next byte and ends the token (so ``\\`` before a newline continues the command).
Empty tokens vanish. Each command is echoed as `` +> tok1 tok2 \\n`` on stdout, then run
with ``tokens[0]`` as the program path (no PATH search) and the caller's environment. A
failing command prints ``Subprocess error\\nABORTING HARD\\n`` and stops with status 1.

Quirks kept from the original: the script ends at its end *or at a byte 0xFC* (its
EOF marker; inside a string or comment that is an error, after ``\\`` it is dropped); a
last command without a newline is not run; a string or comment still open at the end of
the script is an error (after the earlier commands ran).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator

from rootseed.tools._util import ToolError, fail, read_input

Runner = Callable[[list[str]], int]
DEFAULT_SCRIPT = "kaem.x86"
_EOF_BYTE = 0xFC  # the original compares each byte with its EOF value -4 as a byte
_STRING_END = re.compile(b'["\xfc]')
_COMMENT_END = re.compile(b"[\n\xfc]")


def commands(script: bytes) -> Iterator[list[bytes]]:
    """Yield the script's commands in order; raise :class:`ToolError` where it is broken."""
    pos, size = 0, len(script)
    tokens: list[bytes] = []
    token = bytearray()
    while pos < size:
        c = script[pos]
        pos += 1
        if c == _EOF_BYTE:
            return
        done = command_done = False
        if c in b" \t":
            done = True
        elif c == 0x0A:
            done = command_done = True
        elif c == 0x22:  # '"'
            m = _STRING_END.search(script, pos)
            if m is None or script[m.start()] == _EOF_BYTE:
                raise ToolError("unterminated string at the end of the script")
            close = m.start()
            token += script[pos:close]
            pos = close + 1
            done = True
        elif c == 0x23:  # '#'
            m = _COMMENT_END.search(script, pos)
            if m is None or script[m.start()] == _EOF_BYTE:
                raise ToolError("comment without a final newline at the end of the script")
            pos = m.end()
            done = command_done = True
        elif c == 0x5C:  # '\\'
            pos += 1
            done = True
        else:
            token.append(c)
        if done:
            if token:
                tokens.append(bytes(token))
                token.clear()
            if command_done and tokens:
                yield tokens
                tokens = []


def run_script(script: bytes, runner: Runner, echo: Callable[[str], None]) -> int:
    """Run every command of ``script`` through ``runner``; 0 if all succeeded, else 1."""
    try:
        for tokens in commands(script):
            argv = [os.fsdecode(t) for t in tokens]
            echo(" +> " + "".join(a + " " for a in argv) + "\n")
            if runner(argv) != 0:
                echo("Subprocess error\nABORTING HARD\n")
                return 1
    except ToolError as e:
        return fail("kaem-minimal", e)
    return 0


def subprocess_runner(argv: list[str]) -> int:
    """Run one command as the original does: ``execve(argv[0], argv, environ)``."""
    program = argv[0] if "/" in argv[0] else os.path.join(".", argv[0])
    try:
        return subprocess.run(argv, executable=program, check=False).returncode
    except OSError as e:
        print(f"kaem-minimal: cannot run {argv[0]}: {e.strerror or e}", file=sys.stderr)
        return 1


def _echo(text: str) -> None:
    sys.stdout.buffer.write(os.fsencode(text))
    sys.stdout.buffer.flush()


def main(argv: list[str]) -> int:
    path = argv[0] if argv else DEFAULT_SCRIPT
    try:
        script = read_input(path)
    except ToolError as e:
        return fail("kaem-minimal", e)
    return run_script(script, subprocess_runner, _echo)
