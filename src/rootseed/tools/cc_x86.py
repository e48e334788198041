"""cc_x86: stage0-posix-x86's C-subset compiler (``cc_x86 INPUT OUTPUT``), in Python.

Written from stage0-posix-x86's ``cc_x86.M1`` and its GAS listing (pinned commit a15adc72),
to check the one stage0 step no C compiler can re-derive: cc_x86 is written in assembly,
so diverse double-compiling cannot reach the M1 it writes for ``M2-0.c``.

cc_x86 is a single-pass recursive-descent compiler over a token list (see
:mod:`rootseed.tools.cc_x86_lex`) with no preprocessor, no declarations after the top
level but ``TYPE NAME;`` globals, ``TYPE NAME(...)`` functions and prototypes,
``struct`` definitions and ``// CONSTANT NAME VALUE`` lines. Its rules, kept here as it
has them, quirks included:

* Every expression leaves its value in ``eax``; a binary operator pushes the left side
  (``push_eax\\t#_common_recursion``), evaluates the right and pops it into ``ebx``. All
  binary operators of one level chain to the right with no precedence among them (levels:
  postfix, ``+ - * / % << >>``, comparisons, ``& && | || ^``, then ``=``).
* Locals and arguments live at fixed ``ebp`` offsets: the first argument at -4, each next
  one 4 lower; the first local at -8 (or 8 below the last argument; in ``main``, at -20),
  each next one 4 lower. Blocks pop their locals unless the block ends in ``ret``.
* Labels are ``FUNCTION_name``, ``GLOBAL_name``, and per function ``KIND_function_N``
  with one counter for ifs, loops and string literals, reset for each function.
* The result is the code, then ``:GLOBAL_x`` / ``NULL`` for each global, then the
  ``:STRING_`` literals, each after its header comment, then ``:ELF_end``.
* A top-level line it does not understand (say ``int x = 1;``) ends the compile there,
  successfully, with what it has so far.

Where cc_x86 reports an error it stops with its message and exit status 1, as here. Where
it would crash or never stop (symbols it cannot resolve on the way, the input ending
inside a construct, unterminated comments), this module stops with a message instead;
unlike cc_x86 it then leaves no empty OUTPUT behind, an unreadable INPUT is an error
(cc_x86 reads it as an empty file), and so is an OUTPUT it cannot create (cc_x86 then
writes to standard output).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from rootseed.tools._util import ToolError, fail, read_input, write_output
from rootseed.tools.cc_x86_lex import BeyondCcX86, escape_value, string_literal, tokenize
from rootseed.tools.cc_x86_types import (
    Sym,
    Type,
    builtin_types,
    ceil_log2,
    lookup_sym,
    lookup_type,
    number,
    parse_number,
    promote_type,
)

_POP_BLOCK = "pop_ebx\t# _recursive_statement_locals\n"
_POP_RETURN = "pop_ebx\t# _return_result_locals\n"
_POP_BREAK = "pop_ebx\t# break_cleanup_locals\n"
_POP_ARG = "pop_ebx\t# _process_expression_locals\n"


class _Crash(Exception):
    """Where cc_x86 would follow a NULL pointer (and die of SIGSEGV)."""


def compile_c(source: bytes) -> bytes:
    """The M1 text cc_x86 writes for ``source``."""
    compiler = _Compiler(tokenize(source))
    try:
        compiler.program()
    except (_Crash, IndexError, AttributeError) as e:
        where = compiler.where()
        raise BeyondCcX86(f"cc_x86 cannot compile this input (it would crash near {where})"
                          ) from e
    except RecursionError as e:
        # Python's own limit (M2-0.c needs a depth under 200); never raised here, as the
        # limit is the whole process's and other threads parse hostile data under it
        raise BeyondCcX86("the input nests too deeply for this compiler (cc_x86's own "
                          f"limit is its stack) near {compiler.where()}") from e
    parts = ["\n# Core program\n", *compiler.out, "\n# Program global variables\n",
             *compiler.globals_out, "\n# Program strings\n", *compiler.strings_out,
             "\n:ELF_end\n"]
    return "".join(parts).encode("latin-1")


class _Compiler:
    """One compile: cc_x86's globals as attributes, its functions as methods."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0  # global_token, as an index (len(tokens) is NULL)
        self.out: list[str] = []
        self.globals_out: list[str] = []
        self.strings_out: list[str] = []
        self.prim_types, self.char_p = builtin_types()
        self.types: Type | None = self.prim_types
        self.constants: Sym | None = None
        self.functions: Sym | None = None
        self.symbols: Sym | None = None
        self.function = Sym("", None, None)
        self.current_count = 0
        self.current_target: Type | None = None
        self.break_head: str | None = None
        self.break_func = ""
        self.break_num = ""
        self.break_frame: Sym | None = None

    # -- tokens ------------------------------------------------------------------------
    @property
    def s(self) -> str:
        return self.tokens[self.i]  # IndexError past the end: cc_x86 reads NULL->s

    def prev(self) -> str:
        if self.i == 0:
            raise _Crash
        return self.tokens[self.i - 1]

    def where(self) -> str:
        if self.i >= len(self.tokens):
            return "the end of the input"
        return f"token {self.i + 1} {self.tokens[self.i]!r}"

    def advance(self) -> None:
        self.i += 1

    def require(self, text: str, message: str) -> None:
        if self.i >= len(self.tokens):
            raise _Crash
        if self.tokens[self.i] != text:
            raise ToolError(message)
        self.i += 1

    def emit(self, text: str) -> None:
        self.out.append(text)

    def unique(self, prefix: str, num: str) -> None:
        self.out += (prefix, self.function.s, "_", num, "\n")

    def last_is_ret(self) -> bool:
        return bool(self.out) and self.out[-1] == "ret\n"

    # -- top level ---------------------------------------------------------------------
    def program(self) -> None:
        while self.i < len(self.tokens):
            if self.s == "CONSTANT":
                self.advance()
                self.constants = Sym(self.s, None, self.constants)
                self.advance()
                self.constants.value = self.s
                self.advance()
                continue
            type_size = self.type_name()
            if type_size is None:
                continue  # a struct definition
            self.symbols = Sym(self.s, type_size, self.symbols)
            self.advance()
            if self.s == ";":
                self.globals_out += (":GLOBAL_", self.prev(), "\nNULL\n")
                self.advance()
            elif self.s == "(":
                self.declare_function()
            else:
                return  # cc_x86 stops here, keeping what it has

    def declare_function(self) -> None:
        self.current_count = 0
        self.function = self.functions = Sym(self.prev(), None, self.functions)
        self.collect_arguments()
        if self.s == ";":
            self.advance()  # a prototype
            return
        name = self.function.s
        self.out += ("# Defining function ", name, "\n:FUNCTION_", name, "\n")
        self.statement()
        if not self.last_is_ret():
            self.emit("ret\n")

    def collect_arguments(self) -> None:
        self.advance()
        while self.s != ")":
            type_size = self.type_name()
            if self.s != ")" and self.s != ",":
                a = Sym(self.s, type_size, self.function.args)
                first = self.function.args
                a.depth = -4 if first is None else first.depth - 4
                self.advance()
                self.function.args = a
            if self.s == ",":
                self.advance()
        self.advance()

    # -- types -------------------------------------------------------------------------
    def type_name(self) -> Type | None:
        ret: Type | None
        if self.s == "struct":
            self.advance()
            ret = lookup_type(self.s, self.types)
            if ret is None:
                self.create_struct()
                return None
        else:
            ret = lookup_type(self.s, self.types)
            if ret is None:
                raise ToolError(f"Unknown type {self.s}\n")
        self.advance()
        while self.s[0] == "*":
            ret = ret.indirect
            self.advance()
        return ret

    def create_struct(self) -> None:
        key = object()
        head = Type(self.s, 0, key)
        ptr = Type(self.s, 4, key)
        head.indirect, ptr.indirect = ptr, head
        head.type = ptr.type = None
        head.next = self.types
        self.types = head
        self.advance()
        self.require("{", "ERROR in create_struct\n Missing {\n")
        offset = 0
        last: Type | None = None
        member_size = 0
        while self.s[0] != "}":
            if self.s == "union":
                last, member_size = self.build_union(last, offset, member_size)
            else:
                last, member_size = self.build_member(last, offset)
            offset += member_size
            self.require(";", "ERROR in create_struct\n Missing ;\n")
        self.advance()
        self.require(";", "ERROR in create_struct\n Missing ;\n")
        head.size = offset
        head.members = ptr.members = last

    def build_member(self, last: Type | None, offset: int) -> tuple[Type, int]:
        member_type = self.type_name()
        if member_type is None:
            raise _Crash
        i = Type(self.s, 0)
        i.members, i.offset, i.type = last, offset, member_type
        self.advance()
        if self.s == "[":
            self.advance()
            if member_type.type is None:
                raise _Crash
            i.size = member_type.type.size * parse_number(self.s)
            self.advance()
            self.require("]", "Struct only supports [num] form\n")
        else:
            i.size = member_type.size
        return i, i.size

    def build_union(self, last: Type | None, offset: int, member_size: int
                    ) -> tuple[Type | None, int]:
        size = 0
        self.advance()
        self.require("{", "ERROR in build_union\nMissing {\n")
        while self.s[0] != "}":
            last, member_size = self.build_member(last, offset)
            if not size > member_size:
                size = member_size
            self.require(";", "ERROR in build_union\nMissing ;\n")
        self.advance()
        return last, size

    # -- statements --------------------------------------------------------------------
    def statement(self) -> None:
        s = self.s
        if s == "{":
            self.recursive_statement()
        elif s[0] == ":":
            self.out += (s, "\t#C goto label\n")
            self.advance()
        elif lookup_type(s, self.prim_types) is not None or s == "struct":
            self.collect_local()
        elif s == "if":
            self.process_if()
        elif s == "do":
            self.process_do()
        elif s == "while":
            self.process_while()
        elif s == "for":
            self.process_for()
        elif s == "asm":
            self.process_asm()
        elif s == "goto":
            self.emit("jmp %")
            self.advance()
            self.out += (self.s, "\n")
            self.advance()
            self.require(";", "ERROR in statement\nMissing ;\n")
        elif s == "return":
            self.return_result()
        elif s == "break":
            self.process_break()
        elif s == "continue":
            self.advance()
            self.emit("\n#continue statement\n")
            self.require(";", "ERROR in statement\nMissing ;\n")
        else:
            self.expression()
            self.require(";", "ERROR in statement\nMissing ;\n")

    def recursive_statement(self) -> None:
        self.advance()
        frame = self.function.locals
        while self.s != "}":
            self.statement()
        self.advance()
        if not self.last_is_ret():
            i = self.function.locals
            while i is not frame:
                if i is None:
                    raise _Crash
                self.emit(_POP_BLOCK)
                i = i.next
        self.function.locals = frame

    def return_result(self) -> None:
        self.advance()
        if self.s[0] != ";":
            self.expression()
        self.require(";", "ERROR in return_result\nMISSING ;\n")
        i = self.function.locals
        while i is not None:
            self.emit(_POP_RETURN)
            i = i.next
        self.emit("ret\n")

    def collect_local(self) -> None:
        type_size = self.type_name()
        f = self.function
        a = Sym(self.s, type_size, f.locals)
        if f.s == "main" and f.locals is None:
            a.depth = -20
        elif f.args is None and f.locals is None:
            a.depth = -8
        elif f.locals is None:
            assert f.args is not None
            a.depth = f.args.depth - 8
        else:
            a.depth = f.locals.depth - 4
        f.locals = a
        self.out += ("# Defining local ", self.s, "\n")
        self.advance()
        if self.s == "=":
            self.advance()
            self.expression()
        self.require(";", "ERROR in collect_local\nMissing ;\n")
        self.out += ("push_eax\t#", a.s, "\n")

    def process_asm(self) -> None:
        self.advance()
        self.require("(", "ERROR in process_asm\nMISSING (\n")
        while self.s[0] == '"':
            self.out += (self.s[1:], "\n")
            self.advance()
        self.require(")", "ERROR in process_asm\nMISSING )\n")
        self.require(";", "ERROR in process_asm\nMISSING ;\n")

    def _next_number(self) -> str:
        num = number(self.current_count)
        self.current_count += 1
        return num

    def process_if(self) -> None:
        num = self._next_number()
        self.unique("# IF_", num)
        self.advance()
        self.require("(", "ERROR in process_if\nMISSING (\n")
        self.expression()
        self.unique("test_eax,eax\nje %ELSE_", num)
        self.require(")", "ERROR in process_if\nMISSING )\n")
        self.statement()
        self.unique("jmp %_END_IF_", num)
        self.unique(":ELSE_", num)
        if self.s == "else":
            self.advance()
            self.statement()
        self.unique(":_END_IF_", num)

    def _loop(self, head: str, num: str, body: Callable[[], None]) -> None:
        saved = (self.break_frame, self.break_head, self.break_func, self.break_num)
        self.break_head, self.break_num = head, num
        self.break_frame = self.function.locals
        self.break_func = self.function.s
        body()
        self.break_frame, self.break_head, self.break_func, self.break_num = saved

    def process_do(self) -> None:
        num = self._next_number()

        def body() -> None:
            self.unique(":DO_", num)
            self.advance()
            self.statement()
            self.require("while", "ERROR in process_do\nMISSING while\n")
            self.require("(", "ERROR in process_do\nMISSING (\n")
            self.expression()
            self.require(")", "ERROR in process_do\nMISSING )\n")
            self.require(";", "ERROR in process_do\nMISSING ;\n")
            self.unique("test_eax,eax\njne %DO_", num)
            self.unique(":DO_END_", num)

        self._loop("DO_END_", num, body)

    def process_while(self) -> None:
        num = self._next_number()

        def body() -> None:
            self.unique(":WHILE_", num)
            self.advance()
            self.require("(", "ERROR in process_while\nMISSING (\n")
            self.expression()
            self.unique("test_eax,eax\nje %END_WHILE_", num)
            self.unique("# THEN_while_", num)
            self.require(")", "ERROR in process_while\nMISSING )\n")
            self.statement()
            self.unique("jmp %WHILE_", num)
            self.unique(":END_WHILE_", num)

        self._loop("END_WHILE_", num, body)

    def process_for(self) -> None:
        num = self._next_number()

        def body() -> None:
            self.unique("# FOR_initialization_", num)
            self.advance()
            self.require("(", "ERROR in process_for\nMISSING (\n")
            if self.s != ";":
                self.expression()
            self.unique(":FOR_", num)
            self.require(";", "ERROR in process_for\nMISSING ;1\n")
            self.expression()
            self.unique("test_eax,eax\nje %FOR_END_", num)
            self.unique("jmp %FOR_THEN_", num)
            self.unique(":FOR_ITER_", num)
            self.require(";", "ERROR in process_for\nMISSING ;2\n")
            self.expression()
            self.unique("jmp %FOR_", num)
            self.unique(":FOR_THEN_", num)
            self.require(")", "ERROR in process_for\nMISSING )\n")
            self.statement()
            self.unique("jmp %FOR_ITER_", num)
            self.unique(":FOR_END_", num)

        self._loop("FOR_END_", num, body)

    def process_break(self) -> None:
        if self.break_head is None:
            raise ToolError("Not inside of a loop or case statement")
        i = self.function.locals
        while i is not None and i is not self.break_frame:
            self.emit(_POP_BREAK)
            i = i.next
        self.advance()
        self.out += ("jmp %", self.break_head, self.break_func, "_", self.break_num, "\n")
        self.require(";", "ERROR in break statement\nMissing ;\n")

    # -- expressions -------------------------------------------------------------------
    def expression(self) -> None:
        self.bitwise_expr()
        if self.s == "=":
            store = "mov_[ebx],eax\n"
            if self.prev() == "]":
                if self.current_target is None:
                    raise _Crash
                if self.current_target.name == "char*":
                    store = "mov_[ebx],al\n"
            self.common_recursion(self.expression)
            self.emit(store)
            self.current_target = None

    def common_recursion(self, f: Callable[[], None]) -> None:
        self.emit("push_eax\t#_common_recursion\n")
        self.advance()
        last = self.current_target
        f()
        self.current_target = promote_type(self.current_target, last, self.types)
        self.emit("pop_ebx\t# _common_recursion\n")

    def _chain(self, operand: Callable[[], None], ops: tuple[tuple[str, str], ...],
               again: Callable[[], None]) -> None:
        # cc_x86's general_recursion, once per operator of the level, in this order
        for name, code in ops:
            if self.s == name:
                self.common_recursion(operand)
                self.emit(code)
                again()

    _BITWISE = (("&", "and_eax,ebx\n"), ("&&", "and_eax,ebx\n"), ("|", "or_eax,ebx\n"),
                ("||", "or_eax,ebx\n"), ("^", "xor_eax,ebx\n"))
    _RELATIONAL = (("<", "cmp\nsetl_al\nmovzx_eax,al\n"), ("<=", "cmp\nsetle_al\nmovzx_eax,al\n"),
                   (">=", "cmp\nsetge_al\nmovzx_eax,al\n"), (">", "cmp\nsetg_al\nmovzx_eax,al\n"),
                   ("==", "cmp\nsete_al\nmovzx_eax,al\n"),
                   ("!=", "cmp\nsetne_al\nmovzx_eax,al\n"))
    _ADDITIVE = (("+", "add_eax,ebx\n"), ("-", "sub_ebx,eax\nmov_eax,ebx\n"),
                 ("*", "mul_ebx\n"), ("/", "xchg_ebx,eax\nmov_edx, %0\ndiv_ebx\n"),
                 ("%", "xchg_ebx,eax\nmov_edx, %0\ndiv_ebx\nmov_eax,edx\n"),
                 ("<<", "mov_ecx,eax\nmov_eax,ebx\nsal_eax,cl\n"),
                 (">>", "mov_ecx,eax\nmov_eax,ebx\nsar_eax,cl\n"))

    def bitwise_expr(self) -> None:
        self.relational_expr()
        self.bitwise_stub()

    def bitwise_stub(self) -> None:
        self._chain(self.relational_expr, self._BITWISE, self.bitwise_stub)

    def relational_expr(self) -> None:
        self.additive_expr()
        self.relational_stub()

    def relational_stub(self) -> None:
        self._chain(self.additive_expr, self._RELATIONAL, self.relational_stub)

    def additive_expr(self) -> None:
        self.postfix_expr()
        self.additive_stub()

    def additive_stub(self) -> None:
        self._chain(self.postfix_expr, self._ADDITIVE, self.additive_stub)

    def postfix_expr(self) -> None:
        self.primary_expr()
        self.postfix_stub()

    def postfix_stub(self) -> None:
        if self.s == "[":
            self.postfix_array()
            self.postfix_stub()
        elif self.s == "->":
            self.postfix_arrow()
            self.postfix_stub()

    def postfix_array(self) -> None:
        array = self.current_target
        self.common_recursion(self.expression)
        self.current_target = array
        if array is None:
            raise _Crash
        assign = "mov_eax,[eax]\n"
        if array.name == "char*":
            assign = "movsx_eax,BYTE_PTR_[eax]\n"
        else:
            self.out += ("sal_eax, !", number(ceil_log2(array.indirect.size)), "\n")
        self.emit("add_eax,ebx\n")
        self.require("]", "ERROR in postfix_expr\nMissing ]\n")
        if self.s == "=":
            assign = ""
        self.emit(assign)

    def postfix_arrow(self) -> None:
        self.emit("# looking up offset\n")
        self.advance()
        parent = self.current_target
        if parent is None:
            raise _Crash
        member = parent.members
        name = self.s
        while member is not None and member.name != name:
            member = member.members
        if member is None:
            raise ToolError(f"ERROR in lookup_member {parent.name}->{name} does not exist\n"
                            "\n")
        self.current_target = member.type
        self.advance()
        if member.offset != 0:
            self.out += ("# -> offset calculation\nmov_ebx, %", number(member.offset),
                         "\nadd_eax,ebx\n")
        if member.size >= 4 and self.s != "=":
            self.emit("mov_eax,[eax]\n")

    def primary_expr(self) -> None:
        s = self.s
        first = s[0]
        if s == "sizeof":
            self.advance()
            self.require("(", "ERROR in unary_expr\nMissing (\n")
            t = self.type_name()
            if t is None:
                raise _Crash
            self.require(")", "ERROR in unary_expr\nMissing )\n")
            self.out += ("mov_eax, %", number(t.size), "\n")
        elif first == "-":
            self.emit("mov_eax, %0\n")
            self.common_recursion(self.postfix_expr)
            self.emit("sub_ebx,eax\nmov_eax,ebx\n")
        elif first == "!":
            self.emit("mov_eax, %1\n")
            self.common_recursion(self.postfix_expr)
            self.emit("xor_eax,ebx\n")
        elif first == "~":
            self.common_recursion(self.postfix_expr)
            self.emit("not_eax\n")
        elif first == "(":
            self.advance()
            self.expression()
            self.require(")", "Error in Primary expression\nDidn't get )\n")
        elif first == "'":
            self.out += ("mov_eax, %", number(escape_value(s, 1)), "\n")
            self.advance()
        elif first == '"':
            self.primary_string()
        elif first.isascii() and (first.isalpha() or first == "_"):
            self.primary_variable()
        elif "0" <= first <= "9":
            self.out += ("mov_eax, %", s, "\n")
            self.advance()
        else:
            raise ToolError(f"Received {s} in primary_expr\n")

    def primary_string(self) -> None:
        num = self._next_number()
        self.unique("mov_eax, &STRING_", num)
        self.strings_out += (":STRING_", self.function.s, "_", num, "\n",
                             string_literal(self.s))
        self.advance()

    def primary_variable(self) -> None:
        s = self.s
        self.advance()
        const = lookup_sym(s, self.constants)
        if const is not None:
            self.out += ("mov_eax, %", const.value, "\n")
            return
        a = lookup_sym(s, self.function.locals)
        if a is None:
            a = lookup_sym(s, self.function.args)
        if a is not None:
            self.variable_load(a)
            return
        if lookup_sym(s, self.functions) is not None:
            if self.s == "(":
                self.function_call(s, static=True)
            else:
                self.out += ("mov_eax, &FUNCTION_", s, "\n")
            return
        g = lookup_sym(s, self.symbols)
        if g is None:
            raise ToolError(f"{s} is not a defined symbol\n")
        self.current_target = g.type
        self.out += ("mov_eax, &GLOBAL_", s, "\n")
        if self.s != "=":
            self.emit("mov_eax,[eax]\n")

    def variable_load(self, a: Sym) -> None:
        if self.s == "(":
            if a.type is None:
                raise _Crash
            if a.type.name == "FUNCTION":
                self.function_call(number(a.depth), static=False)
                return
        self.current_target = a.type
        self.out += ("lea_eax,[ebp+DWORD] %", number(a.depth), "\n")
        if self.s != "=":
            self.emit("mov_eax,[eax]\n")

    def function_call(self, s: str, *, static: bool) -> None:
        self.require("(", "ERROR in process_expression_list\nNo ( was found\n")
        self.out += ("push_edi\t# Prevent overwriting in recursion\n",
                     "push_ebp\t# Protect the old base pointer\n",
                     "mov_edi,esp\t# Copy new base pointer\n")
        passed = 0
        if self.s[0] != ")":
            self.expression()
            self.emit("push_eax\t#_process_expression1\n")
            passed = 1
            while self.s[0] == ",":
                self.advance()
                self.expression()
                self.emit("push_eax\t#_process_expression2\n")
                passed += 1
        self.require(")", "ERROR in process_expression_list\nNo ) was found\n")
        if static:
            self.out += ("mov_ebp,edi\n", "call %FUNCTION_", s, "\n")
        else:
            self.out += ("lea_eax,[ebp+DWORD] %", s, "\nmov_eax,[eax]\n", "mov_ebp,edi\n",
                         "call_eax\n")
        self.out += [_POP_ARG] * passed
        self.out += ("pop_ebp\t# Restore old base pointer\n", "pop_edi\t# Prevent overwrite\n")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: cc_x86 INPUT OUTPUT", file=sys.stderr)
        return 2
    try:
        # like cc_x86: the output is created with mode 0600
        write_output(argv[1], compile_c(read_input(argv[0])), create_mode=0o600)
    except ToolError as e:
        return fail("cc_x86", e)
    return 0
