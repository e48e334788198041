"""blood-elf: the ELF section headers, string and symbol tables, as M1 source.

Written from mescc-tools' documentation and behaviour (pinned commit 08d5a067,
"blood-elf 2.0.1"). Every ``:label`` in the input files becomes a FUNC symbol, in file
order, after the ``--entry`` names. A label starts right after any ``:`` outside a comment
(``#`` or ``;`` to the end of the line) or a ``"..."`` string, takes the next character
whatever it is, and runs to a space, tab, newline or ``>``. Names starting with ``_`` are
marked hidden, except the last ``--entry`` name. ``--64`` writes ELF64 layouts.

Where the original would crash (an option without its argument), this one stops with a
message and exit status 1; it never leaves a partial output file.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rootseed.tools import _outfile
from rootseed.tools._numbers import ByteMode, render
from rootseed.tools._util import ToolError, option_argument, read_source

VERSION = "blood-elf 2.0.1\n(Basically Launches Odd Object Dump ExecutabLe Files\n"
USAGE = "Usage: {prog} --file FILENAME1 {{--file FILENAME2}} --output FILENAME\n"
MAX_STRING = 4096

# A label (its first character is taken whatever it is), a comment, a string, or a ":" at
# the very end of the input (which blood-elf refuses).
_SCAN = re.compile(r':(.[^ \t\n>]*)|[#;][^\n\r]*|"[^"]*"?|(:)\Z', re.S)


def labels(text: str) -> list[str]:
    """The labels blood-elf finds in ``text``, in order."""
    found: list[str] = []
    for m in _SCAN.finditer(text):
        name, at_end = m.group(1), m.group(2)
        if at_end:
            raise ToolError("Can not have an EOF token\n")
        if name is not None:
            if len(name) >= MAX_STRING:
                raise ToolError("Token exceeds token length restriction\n")
            found.append(name.split("\0", 1)[0])  # names are C strings
    return found


@dataclass(frozen=True)
class _Words:
    """The quoted constants of one byte mode and byte order, e.g. ``'01000000'``."""

    mode: ByteMode
    big_endian: bool

    def __call__(self, value: int, nbytes: int) -> str:
        return "'" + render(value, nbytes, self.mode, self.big_endian) + "'"


def footer(names: Sequence[str], *, bits64: bool = False, big_endian: bool = False,
           mode: ByteMode = ByteMode.HEX, entry: str = "") -> str:
    """The M1 text blood-elf writes for symbol ``names`` (``--entry`` names first)."""
    w = _Words(mode, big_endian)
    z8, z32, one16, one32, two8 = w(0, 1), w(0, 4), w(1, 2), w(1, 4), w(2, 1)

    def reg(value: str) -> str:
        """Address-sized fields: 64-bit ones get four more zero bytes (little-endian)."""
        return f"{value} {z32}" if bits64 else value

    out: list[str] = []
    put = out.append

    def section(label: str, name: str, kind: str, flags: str, addr: str, offset: str,
                size: str, link: str, info: str, entsize: str) -> None:
        put(f"\n{label}\n{name}\t#sh_name\n{kind}\t#sh_type\n{reg(flags)}\t#sh_flags\n"
            f"{reg(addr)}\t#sh_addr\n{reg(offset)}\t#sh_offset\n{reg(size)}\t#sh_size\n"
            f"{link}\t#sh_link\n{info}\t#sh_info\n{reg(one32)}\t#sh_addralign\n"
            f"{reg(entsize)}\t#sh_entsize\n")

    put(f"# Generated sections\n:ELF_shstr\n{z8}\t# NULL\n")
    put(':ELF_shstr__text\n".text"\n:ELF_shstr__shstr\n".shstrtab"\n'
        ':ELF_shstr__sym\n".symtab"\n:ELF_shstr__str\n".strtab"\n')
    section(":ELF_section_headers", *[z32] * 9)
    section(":ELF_section_header_text", "%ELF_shstr__text>ELF_shstr", one32, w(6, 4),
            "&ELF_text", "%ELF_text>ELF_base", "%ELF_data>ELF_text", z32, z32, z32)
    section(":ELF_section_header_shstr", "%ELF_shstr__shstr>ELF_shstr", w(3, 4), z32,
            "&ELF_shstr", "%ELF_shstr>ELF_base", "%ELF_section_headers>ELF_shstr",
            z32, z32, z32)
    section(":ELF_section_header_str", "%ELF_shstr__str>ELF_shstr", w(3, 4), z32,
            "&ELF_str", "%ELF_str>ELF_base", "%ELF_sym>ELF_str", z32, z32, z32)
    section(":ELF_section_header_sym", "%ELF_shstr__sym>ELF_shstr", w(2, 4), z32,
            "&ELF_sym", "%ELF_sym>ELF_base", "%ELF_end>ELF_sym", w(3, 4),
            w(len(names) + 1, 4), w(24 if bits64 else 16, 4))

    put(f"\n# Generated string table\n:ELF_str\n{z8}\t# NULL string\n")
    for name in names:
        put(f':ELF_str_{name}\t"{name}"\n')
    put("# END Generated string table\n\n")

    put("\n# Generated symbol table\n:ELF_sym\n# Required NULL symbol entry\n")
    if bits64:
        put(f"{z32}\t# st_name\n{z8}\t# st_info\n{z8}\t# st_other\n{one16}\t# st_shndx\n"
            f"{z32} {z32}\t# st_value\n{z32} {z32}\t# st_size\n\n")
    else:
        put(f"{z32}\t# st_name\n{z32}\t# st_value\n{z32}\t# st_size\n{z8}\t# st_info\n"
            f"{z8}\t# st_other\n{one16}\t# st_shndx\n\n")
    for name in names:
        hidden = name.startswith("_") and name != entry
        put(f"%ELF_str_{name}>ELF_str\t# st_name\n")
        if bits64:
            other = f"{two8}\t# st_other (hidden)\n" if hidden else f"{z8}\t# st_other (other)\n"
            put(f"{two8}\t# st_info (FUNC)\n{other}{one16}\t# st_shndx\n"
                f"&{name} {z32}\t# st_value\n{z32} {z32}\t# st_size (unknown size)\n\n")
        else:
            other = (f"{two8}\t# st_other (hidden)\n" if hidden
                     else f"{z8}\t# st_other (default)\n")
            put(f"&{name}\t#st_value\n{z32}\t# st_size (unknown size)\n"
                f"{two8}\t# st_info (FUNC)\n{other}{one16}\t# st_shndx\n\n")
    put("# END Generated symbol table\n\n:ELF_end\n")
    return "".join(out)


def generate(sources: Sequence[bytes], *, bits64: bool = False, big_endian: bool = False,
             mode: ByteMode = ByteMode.HEX, entries: Sequence[str] = ()) -> bytes:
    """blood-elf on the contents of the input files: the footer it writes."""
    names = list(entries)
    for data in sources:
        names.extend(labels(data.decode("latin-1")))
    entry = entries[-1] if entries else ""
    text = footer(names, bits64=bits64, big_endian=big_endian, mode=mode, entry=entry)
    return text.encode("latin-1")


def _run(argv: list[str], outputs: list[_outfile.PendingOutput]) -> int:
    bits64, big_endian, endian_set, mode = False, True, False, ByteMode.HEX
    files: list[str] = []
    entries: list[str] = []
    output: _outfile.PendingOutput | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        step = 1
        if arg in ("-h", "--help"):
            sys.stderr.write(USAGE.format(prog="blood-elf"))
            return 0
        elif arg == "--64":
            bits64 = True
        elif arg in ("-f", "--file"):
            files.append(option_argument("blood-elf", argv, i))
            step = 2
        elif arg in ("-o", "--output"):
            name, step = option_argument("blood-elf", argv, i), 2
            output = _outfile.reserve(name)
            if output is None:
                # sic: the original names the last input file here, not the output
                shown = files[-1] if files else name
                raise ToolError(f"The file: {shown} can not be opened!\n")
            outputs.append(output)
        elif arg in ("-b", "--binary"):
            mode = ByteMode.BINARY
        elif arg in ("-O", "--octal"):
            mode = ByteMode.OCTAL
        elif arg in ("-X", "--hex"):
            mode = ByteMode.HEX
        elif arg in ("--big-endian", "--little-endian"):
            big_endian, endian_set = arg == "--big-endian", True
        elif arg in ("-V", "--version"):
            sys.stdout.write(VERSION)
            return 0
        elif arg == "--entry":
            entries.append(option_argument("blood-elf", argv, i))
            step = 2
        else:
            raise ToolError("Unknown option\n")
        i += step
    if not files:
        return 1  # the original exits quietly with status 1
    if not endian_set:
        raise ToolError("either --little-endian or --big-endian MUST be set\n")
    names = list(entries)
    for name in files:  # read and scanned one after the other, as the original does
        names.extend(labels(read_source(name).decode("latin-1")))
    text = footer(names, bits64=bits64, big_endian=big_endian, mode=mode,
                  entry=entries[-1] if entries else "")
    data = text.encode("latin-1")
    _outfile.emit(output, data)
    return 0


def main(argv: list[str]) -> int:
    return _outfile.guarded_main(_run, argv)
