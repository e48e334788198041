"""hex2: mescc-tools' linker (pinned commit 08d5a06, which calls itself ``hex2 1.5.0``).

``hex2 --architecture ARCH [--little-endian|--big-endian] [--base-address ADDR]
--file FILE [--file FILE...] [--output FILE] [--non-executable] [--octal|--binary]``

Labels ``:name``; pointers ``!`` (1 byte), ``@`` (2), ``~`` (3) and ``%`` (4) relative,
``$`` (2) and ``&`` (4) absolute; ``%a>b`` measures from label ``b``. ARM, AArch64 and
PowerPC have their own relative rules and ``^`` (word-aligned) / ``<`` (pad) marks; RISC-V
is linked word by word (see :mod:`rootseed.tools.hex2_word`). Defaults as upstream:
knight-native, big-endian, base address 0, output to stdout, executable output file.

On purpose unlike upstream: an unknown architecture is an error (upstream prints a
warning and links for the previous architecture, usually knight), an option missing its
value is an error (upstream crashes), and a failed link leaves no partial output file.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rootseed.tools import hex2_bytes, hex2_word
from rootseed.tools._util import ToolError, fail, read_input, write_output
from rootseed.tools.hex2_core import (
    ARCH_NAMES,
    LITTLE_ENDIAN,
    WORD_MODE,
    Arch,
    Options,
    strtoint,
)

VERSION = "hex2 1.5.0"
_USAGE = ("Usage: hex2 --file FILENAME1 {-f FILENAME2} (--big-endian|--little-endian)"
          " [--base-address 0x12345] [--architecture name]\nArchitecture:"
          " knight-native, knight-posix, x86, amd64, armv7l, aarch64, riscv32 and riscv64\n"
          "To leverage octal or binary input: --octal, --binary\n")
_WARN = ">> WARNING <<\n>> WARNING <<\n>> WARNING <<\n"


def link(files: Sequence[tuple[str, bytes]], opts: Options) -> bytes:
    """Link the named inputs, in order, into one image."""
    if opts.arch in WORD_MODE:
        return hex2_word.link(files, opts)
    return hex2_bytes.link(files, opts)


def warnings(opts: Options) -> str:
    """The warnings upstream prints for a likely mistake (stderr text, maybe empty)."""
    text = ""
    if opts.arch is not Arch.KNIGHT and opts.base_address == 0:
        text += _WARN + "If you are not generating a ROM image this binary will likely not work\n"
    if opts.big_endian and opts.arch in LITTLE_ENDIAN:
        text += (_WARN + "You have specified big endian output on likely a little endian "
                 "processor\nif this is a mistake please pass --little-endian next time\n")
    return text


def _parse(argv: list[str]) -> tuple[Options, list[str], str | None, bool] | int:
    arch, big, base, radix = Arch.KNIGHT, True, 0, 16
    files: list[str] = []
    output: str | None = None
    executable = True
    i = 0
    while i < len(argv):
        arg = argv[i]
        takes_value = arg in ("-A", "--architecture", "-B", "--base-address", "-f", "--file",
                              "-o", "--output")
        if takes_value and i + 1 >= len(argv):
            raise ToolError(f"option {arg} needs a value")
        value = argv[i + 1] if takes_value else ""
        if arg == "--big-endian":
            big = True
        elif arg == "--little-endian":
            big = False
        elif arg == "--non-executable":
            executable = False
        elif arg in ("-A", "--architecture"):
            if value not in ARCH_NAMES:
                raise ToolError(f"unknown architecture {value!r}; known values are: "
                                + ", ".join(ARCH_NAMES))
            arch = ARCH_NAMES[value]
        elif arg in ("-b", "--binary"):
            radix = 2
        elif arg in ("-O", "--octal"):
            radix = 8
        elif arg in ("-B", "--base-address"):
            base = strtoint(value)
        elif arg in ("-h", "--help"):
            sys.stderr.write(_USAGE)
            return 0
        elif arg in ("-f", "--file"):
            files.append(value)
        elif arg in ("-o", "--output"):
            output = value
        elif arg in ("-V", "--version"):
            print(VERSION)
            return 0
        else:
            raise ToolError(f"unknown option {arg!r} (see hex2 --help)")
        i += 2 if takes_value else 1
    return Options(arch, big, base, radix), files, output, executable


def main(argv: list[str]) -> int:
    try:
        parsed = _parse(argv)
        if isinstance(parsed, int):
            return parsed
        opts, files, output, executable = parsed
        sys.stderr.write(warnings(opts))
        if not files:
            raise ToolError("no input files (give them with --file FILE)")
        image = link([(name, read_input(name)) for name in files], opts)
        if output is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(image)
            sys.stdout.buffer.flush()
        else:
            write_output(output, image, create_mode=0o666,
                         force_mode=0o750 if executable else None)
    except ToolError as e:
        return fail("hex2", e)
    return 0
