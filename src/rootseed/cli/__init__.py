"""The ``rootseed`` command: thin; it parses, calls and renders.

Each command lives in its own module and is registered in :data:`COMMANDS`.
"""

from __future__ import annotations

import sys
import traceback

import click
from rich.markup import escape

from rootseed import __version__
from rootseed.console import err
from rootseed.errors import RootseedError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rootseed")
def cli() -> None:
    """Grow a complete, verifiable toolchain from a 181-byte seed.

    Builds are hermetic (bubblewrap, no network) and deterministic; artifacts are
    verified by a quorum of independent signers and traced back to the hex0 seed.
    """


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        module = importlib.import_module(f"rootseed.cli.{name}")
        for command in module.COMMANDS:
            cli.add_command(command)


#: One module per command family; each exposes ``COMMANDS: list[click.Command]``.
COMMAND_MODULES: list[str] = [
    "bootstrap", "tree_cmds", "build", "challenge", "trust", "provenance", "tool", "crosscheck",
]


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear message and a non-zero exit code on failure."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        rv = cli.main(args=argv, prog_name="rootseed", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except RootseedError as e:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {escape(e.message)}", markup=True, soft_wrap=True)
        if e.hint:
            err.print(f"[bold]hint:[/] {escape(e.hint)}", markup=True, soft_wrap=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}", markup=True)
        err.print("hint: this is a bug in rootseed; rerun with --debug and report the traceback")
        sys.exit(70)
