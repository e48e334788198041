"""``rootseed tool NAME ARGS...``: run one of the independent Python stage0 tools."""

from __future__ import annotations

import importlib
import sys

import click

from rootseed.tools import TOOLS


@click.command(
    "tool",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False,
                      "help_option_names": []},
)
@click.argument("name", required=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def tool(name: str | None, args: tuple[str, ...]) -> None:
    """Run an independent Python stage0 tool with the original tool's arguments.

    NAME is one of the tools listed by `rootseed tool` with no arguments.
    """
    if name is None or name in ("-h", "--help"):
        click.echo("usage: rootseed tool NAME [ARGS...]\n\ntools: " + " ".join(sorted(TOOLS)))
        return
    module_name = TOOLS.get(name)
    if module_name is None:
        raise click.UsageError(
            f"unknown tool {name!r}; choose from: {', '.join(sorted(TOOLS))}")
    module = importlib.import_module(f"rootseed.tools.{module_name}")
    sys.exit(module.main(list(args)))


COMMANDS = [tool]
