"""``rootseed tool NAME ARGS...``: run one of the independent Python stage0 tools."""

from __future__ import annotations

import importlib
import sys

import click

from rootseed.tools import TOOLS

#: How each tool is called (the original's command line).
USAGE: dict[str, str] = {
    "hex0": "INPUT OUTPUT",
    "hex1": "INPUT OUTPUT",
    "hex2-0": "INPUT OUTPUT",
    "hex2": "--file FILE {--file FILE} (--big-endian|--little-endian) "
            "[--base-address 0x…] [--architecture NAME]",
    "catm": "OUTPUT [INPUT...]",
    "sha256sum": "[-o OUT] FILE... | -c FILE...",
    "kaem-minimal": "[SCRIPT]",
    "M0": "INPUT OUTPUT",
    "M1": "--file FILE {--file FILE} (--big-endian|--little-endian) [--architecture NAME]",
    "blood-elf": "--file FILE {--file FILE} --output FILE",
}
_HELP = ("-h", "--help")


def _summary(name: str) -> str:
    """The first line of the tool module's docstring, without its leading name."""
    module = importlib.import_module(f"rootseed.tools.{TOOLS[name]}")
    first = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
    return first.split(": ", 1)[-1].replace("``", "")


class ToolCommand(click.Command):
    """``rootseed tool --help`` in the style of every other command, plus the tools."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Tools"):
            formatter.write_dl([(name, _summary(name)) for name in sorted(TOOLS)])


def _tool_help(name: str) -> None:
    click.echo(f"Usage: rootseed tool {name} {USAGE.get(name, '[ARGS]...')}\n\n"
               f"  {_summary(name)}\n\n"
               "  An independent Python re-implementation with the original's command line\n"
               "  and byte-identical output; it checks the binary chain (rootseed crosscheck)\n"
               "  and never replaces it in a build.")


@click.command(
    "tool", cls=ToolCommand,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                      "help_option_names": []},
)
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def tool(ctx: click.Context, name: str | None, args: tuple[str, ...]) -> None:
    """Run an independent Python stage0 tool with the original tool's arguments.

    `rootseed tool NAME --help` shows how NAME is called.
    """
    if name is None or name in _HELP:
        click.echo(ctx.get_help())
        return
    if name not in TOOLS:
        import difflib

        close = difflib.get_close_matches(name, sorted(TOOLS), n=3)
        raise click.UsageError(
            f"unknown tool {name!r}"
            + (f"; did you mean {' or '.join(close)}?" if close else "")
            + f" (tools: {', '.join(sorted(TOOLS))})")
    if args and args[0] in _HELP and len(args) == 1:
        _tool_help(name)  # never run the tool: catm would write a file named --help
        return
    module = importlib.import_module(f"rootseed.tools.{TOOLS[name]}")
    sys.exit(module.main(list(args)))


COMMANDS = [tool]
