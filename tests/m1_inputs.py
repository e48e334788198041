"""Shared helpers for the M0/M1/blood-elf tests: hypothesis strategies for M1-like source
and a way to run a real tool binary on a generated input."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import strategies as st

NAMES = st.sampled_from(["mov", "add_eax,", "jmp", "x", "LOAD", "a.b", "_f", "ret", "F0"])
LABELS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
HEX_BYTES = st.lists(st.sampled_from(["00", "0F", "85", "B8", "FF", "CD80", "89C3"]),
                     min_size=1, max_size=3).map(lambda b: "".join(b))
SAFE_CHARS = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E,
                                   exclude_characters="\"'"), max_size=12)


def _number(low: int, high: int) -> st.SearchStrategy[str]:
    def spell(value: int, style: str) -> str:
        if style == "hex" and value >= 0:
            return f"0x{value:X}"
        if style == "hex":
            return f"0x-{-value:x}"
        if style == "oct" and value >= 0:
            return f"0{value:o}"
        if style == "bin" and value >= 0:
            return f"0b{value:b}"
        return str(value)

    return st.builds(spell, st.integers(low, high), st.sampled_from(["dec", "hex", "oct", "bin"]))


def immediates(common: bool) -> st.SearchStrategy[str]:
    """Prefixed numbers. ``common``: only values mescc-tools 1.4.0 and the pinned M1 agree on
    (1.4.0 never refuses a number as out of range and does not evaluate ``$``/``&``
    numbers)."""
    if common:
        ranges = {"!": (-128, 255), "@": (-32768, 32767), "~": (-8388608, 8388608),
                  "%": (-(2**31), 2**32 - 1)}
    else:
        ranges = {"!": (-140, 270), "@": (-32780, 32780), "~": (-8388620, 8388620),
                  "%": (-(2**31), 2**32 - 1), "$": (-32780, 65540), "&": (-5, 2**32 - 1)}
    return st.one_of(*[st.builds(lambda p, n: p + n, st.just(p), _number(lo, hi))
                       for p, (lo, hi) in ranges.items()])


def m1_source(*, common: bool, knight: bool = False) -> st.SearchStrategy[str]:
    """M1 source: DEFINEs, macro uses, immediates, labels, strings, comments, padding."""
    define_value = HEX_BYTES if common else st.one_of(
        HEX_BYTES, SAFE_CHARS.map(lambda s: f'"{s}"'), SAFE_CHARS.map(lambda s: f"'{s}'"))
    bare = _number(-32768, 65535) if knight else immediates(common)
    token = st.one_of(
        NAMES,
        bare,
        LABELS.map(lambda s: ":" + s),
        st.builds(lambda p, s: p + s, st.sampled_from(["&", "%", "^", "@", "!", "$", "~"]),
                  LABELS.filter(lambda s: not s[0].isdigit())),
        SAFE_CHARS.map(lambda s: f'"{s}"'),
        HEX_BYTES.map(lambda s: f"'{s}'"),
        st.integers(0, 5).map(lambda n: f"<{n}"),
    )
    define = st.builds(lambda n, v: f"DEFINE {n} {v}", NAMES, define_value)
    comment = st.builds(lambda c, s: c + s, st.sampled_from(["#", ";"]), SAFE_CHARS)
    sep = st.sampled_from([" ", "\t", "  "])
    line = st.one_of(
        define,
        st.builds(lambda toks, seps: "".join(t + s for t, s in zip(toks, seps, strict=False)),
                  st.lists(token, min_size=1, max_size=6), st.lists(sep, min_size=6, max_size=6)),
        comment,
        st.just(""),
    )
    ending = st.sampled_from(["\n", "\n", " # trailing\n", "\r\n"])
    return st.builds(lambda lines, ends: "".join(a + b for a, b in zip(lines, ends,
                                                                        strict=False)),
                     st.lists(line, min_size=1, max_size=12),
                     st.lists(ending, min_size=12, max_size=12))


def defined_names_only(source: str) -> str:
    """Prefix ``source`` with DEFINEs for every name NAMES can produce, so that most
    examples assemble instead of stopping at an undefined name."""
    header = "".join(f"DEFINE {n} 90\n" for n in
                     ["mov", "add_eax,", "jmp", "x", "LOAD", "a.b", "_f", "ret", "F0"])
    return header + source


def run_tool(argv: Sequence[str], files: dict[str, bytes],
             timeout: float = 30) -> tuple[int, bytes, str]:
    """Run a real tool in a fresh directory holding ``files``: (status, stdout, stderr)."""
    with tempfile.TemporaryDirectory(prefix="rootseed-m1-") as d:
        for name, data in files.items():
            Path(d, name).write_bytes(data)
        r = subprocess.run(list(argv), cwd=d, capture_output=True, timeout=timeout, check=False)
        return r.returncode, r.stdout, r.stderr.decode("latin-1")
