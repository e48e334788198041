"""The ``rootseed`` command: thin; it parses, calls and renders.

Each command lives in its own module and is registered in :data:`COMMANDS`. Start-up
imports only click and this module: a command's modules (and rich, httpx, pysequoia,
dockerfile) are imported when that command runs, and the error renderer when there is an
error (``rootseed --version`` stays fast; ``python -X importtime -m rootseed --version``).
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading

import click

from rootseed.errors import ErrorKind, RootseedError


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (start-up stays fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(f"rootseed.cli.{module_name}")
        for command in module.COMMANDS:
            if command.name == cmd_name:
                return command  # type: ignore[no-any-return]
        raise RuntimeError(f"rootseed.cli.{module_name} does not define {cmd_name!r}")


#: Command name → module under ``rootseed.cli`` whose ``COMMANDS`` list defines it.
COMMANDS: dict[str, str] = {
    "bootstrap": "bootstrap",
    "list": "tree_cmds", "graph": "tree_cmds", "fetch": "tree_cmds", "check": "tree_cmds",
    "build": "build", "digests": "build",
    "challenge": "challenge",
    "sign": "trust", "verify": "trust",
    "trace": "provenance", "report": "provenance",
    "tool": "tool",
    "crosscheck": "crosscheck",
    "cache": "cache_cmds",
}


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from rootseed.version import describe

    click.echo(f"rootseed {describe()}")
    ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version,
              help="Show the version and the source revision it was built from, and exit.")
def cli() -> None:
    """Grow a complete, verifiable toolchain from a 181-byte seed.

    Builds are hermetic (bubblewrap, no network) and deterministic; artifacts are
    verified by a quorum of independent signers and traced back to the hex0 seed.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI job cancelled, ``kill``): handled as Ctrl-C is — running steps are
    killed, partial output and work directories removed — then exit 143."""


def _terminated(signum: int, frame: object) -> None:
    raise Terminated


def _on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in the main thread (where Ctrl-C's
    KeyboardInterrupt arrives too), unless something chose another disposition."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        signal.signal(signal.SIGTERM, _terminated)


def _say(text: str) -> None:
    """One line on stderr (the console is imported only when there is something to say)."""
    from rootseed.console import err

    err.print(text, markup=False, highlight=False, soft_wrap=True)


def _traceback() -> None:
    import traceback

    traceback.print_exc()


def _render(e: RootseedError, json_out: bool) -> None:
    """The message (and hint) for people on stderr; with ``--json`` also
    ``{"error": {"kind", "message", "hint", "exit_code", package, file, line, step}}`` on
    stdout, where a program reads the command's result."""
    from rich.markup import escape

    from rootseed.console import emit_json, err

    if json_out:
        emit_json({"error": e.as_json()})

    err.print(f"[bold red]error:[/] {escape(e.message)}", markup=True, soft_wrap=True)
    if e.hint:
        err.print(f"[bold]hint:[/] {escape(e.hint)}", markup=True, soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear message and a non-zero exit code on failure."""
    args = argv if argv is not None else sys.argv[1:]
    debug, json_out = "--debug" in args, "--json" in args
    _on_sigterm()
    try:
        rv = cli.main(args=argv, prog_name="rootseed", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except RootseedError as e:
        if debug:
            _traceback()
        _render(e, json_out)
        sys.exit(e.exit_code)
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, Terminated):
            _say("terminated")
            sys.exit(143)
        _say("aborted")
        sys.exit(130)
    except click.ClickException as e:
        if json_out:
            from rootseed.console import emit_json

            emit_json({"error": {"kind": ErrorKind.USAGE.value, "message": e.format_message(),
                                 "hint": None, "exit_code": e.exit_code}})
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except Terminated:
        _say("terminated")
        sys.exit(143)
    except KeyboardInterrupt:
        _say("interrupted")
        sys.exit(130)
    except Exception as e:
        if debug:
            _traceback()
        from rich.markup import escape

        from rootseed.console import err

        err.print(f"[bold red]internal error:[/] {type(e).__name__}: {escape(str(e))}", markup=True)
        _say("hint: this is a bug in rootseed; rerun with --debug and report the traceback")
        sys.exit(70)
