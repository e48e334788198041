"""cc_x86's type records and symbol records, and its number formatting.

Types are compared two ways in cc_x86, and both matter for its output: by name *text*
(``lookup_type``, "is this ``char*``?") and by name *pointer* (``promote_type``, which
only finds a type whose name is the very same string). :attr:`Type.name_id` stands for
that pointer: every built-in type has its own, and a struct's two records (the struct and
its pointer) share the struct's.
"""

from __future__ import annotations

import itertools


class Type:
    __slots__ = ("indirect", "members", "name", "name_id", "next", "offset", "size", "type")

    def __init__(self, name: str, size: int, name_id: object | None = None) -> None:
        self.next: Type | None = None
        self.size = size
        self.offset = 0
        self.indirect: Type = self
        self.members: Type | None = None
        self.type: Type | None = self
        self.name = name
        self.name_id: object = name_id if name_id is not None else object()


class Sym:
    """One ``token_list`` record used as a symbol: a function, variable, argument or
    constant (cc_x86 keeps them all in singly linked lists, newest first)."""

    __slots__ = ("args", "depth", "locals", "next", "s", "type", "value")

    def __init__(self, s: str, type_: Type | None, next_: Sym | None) -> None:
        self.next = next_
        self.s = s
        self.type = type_
        self.depth = 0
        self.locals: Sym | None = None
        self.args: Sym | None = None
        self.value = ""  # a CONSTANT's token


def builtin_types() -> tuple[Type, Type]:
    """Fresh built-in types: (the list head ``void``, ``char*``), linked as cc_x86 links
    them: void, int, char, FILE, FUNCTION, unsigned, long; ``char*`` and ``char**`` are
    reached only through ``char``'s pointer type."""
    void, int_, char = Type("void", 4), Type("int", 4), Type("char", 1)
    char_p, char_pp = Type("char*", 4), Type("char**", 4)
    file, function = Type("FILE", 4), Type("FUNCTION", 4)
    unsigned, long = Type("unsigned", 4), Type("long", 4)
    chain = [void, int_, char, file, function, unsigned, long]
    for a, b in itertools.pairwise(chain):
        a.next = b
    char.indirect = char_p
    char_p.next = char_pp.next = file
    char_p.indirect = char_pp
    char_pp.indirect = char_pp
    char_pp.type = char_p
    return void, char_p


def lookup_type(name: str, start: Type | None) -> Type | None:
    i = start
    while i is not None and i.name != name:
        i = i.next
    return i


def lookup_sym(name: str, start: Sym | None) -> Sym | None:
    i = start
    while i is not None and i.s != name:
        i = i.next
    return i


def promote_type(a: Type | None, b: Type | None, types: Type | None) -> Type | None:
    """cc_x86's promote_type: the first listed type named (by pointer) as ``a`` or ``b``,
    or whose pointer type is; not necessarily ``a`` or ``b`` themselves."""
    if b is None:
        return a
    if a is None:
        return b
    ka, kb = a.name_id, b.name_id
    i = types
    while i is not None:
        if i.name_id is ka or i.name_id is kb:
            return i
        k = i.indirect.name_id
        if k is ka or k is kb:
            return i
        i = i.next
    return None


def s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def number(v: int) -> str:
    """cc_x86's numerate_number: a 32-bit signed integer in decimal."""
    return str(s32(v))


def parse_number(s: str) -> int:
    """cc_x86's numerate_string: decimal (``-`` allowed) or ``0x`` hex in capitals; 0 for
    anything it cannot read."""
    value = 0
    if len(s) > 1 and s[1] == "x":
        for ch in s[2:]:
            d = ord(ch) - 48
            if d >= 10:
                d -= 7
            if not 0 <= d <= 15:
                return 0
            value = (value << 4) + d
        return s32(value)
    negative = s.startswith("-")
    for ch in s[1:] if negative else s:
        d = ord(ch) - 48
        if not 0 <= d <= 9:
            return 0
        value = value * 10 + d
    return s32(-value if negative else value)


def ceil_log2(a: int) -> int:
    result = -1 if (a & (a - 1)) & 0xFFFFFFFF == 0 else 0
    a = s32(a)
    while a > 0:
        result += 1
        a >>= 1
    return result
