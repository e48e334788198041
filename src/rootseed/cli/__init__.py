"""The ``rootseed`` command: thin; it parses, calls and renders.

Each command lives in its own module and is registered in :data:`COMMANDS`; the command
line parser (click, :mod:`rootseed.cli.group`) imports a command's modules only when that
command runs, so rich, httpx, pysequoia and dockerfile are not imported at start-up, and the
error renderer only when there is an error. ``rootseed --version`` alone is answered before
click is imported (``python -X importtime -m rootseed --version`` shows what start-up costs).
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

from rootseed.errors import ErrorKind, RootseedError

#: Command name → module under ``rootseed.cli`` whose ``COMMANDS`` list defines it.
COMMANDS: dict[str, str] = {
    "bootstrap": "bootstrap",
    "list": "tree_cmds", "graph": "tree_cmds", "fetch": "tree_cmds", "check": "tree_cmds",
    "build": "build", "digests": "build",
    "challenge": "challenge",
    "export": "export",
    "sign": "trust", "verify": "trust",
    "trace": "provenance", "report": "provenance",
    "tool": "tool",
    "crosscheck": "crosscheck",
    "cache": "cache_cmds",
}


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


def _emitted() -> int:
    """How many JSON documents the command has written so far (see ``console.emitted``)."""
    console = sys.modules.get("rootseed.console")
    return int(getattr(console, "emitted", 0))


def _render(e: RootseedError, json_out: bool) -> None:
    """The message (and hint) for people on stderr; with ``--json`` also
    ``{"error": {"kind", "message", "hint", "exit_code", package, file, line, step}}`` on
    stdout, where a program reads the command's result (unless the command wrote its own
    result there before it failed: stdout stays one JSON document)."""
    from rich.markup import escape

    from rootseed.console import emit_json, err

    if json_out:
        emit_json({"error": e.as_json()})

    err.print(f"[bold red]error:[/] {escape(e.message)}", markup=True, soft_wrap=True)
    if e.hint:
        err.print(f"[bold]hint:[/] {escape(e.hint)}", markup=True, soft_wrap=True)


def __getattr__(name: str) -> Any:
    """``rootseed.cli.cli``, the click group, imported when first asked for."""
    if name == "cli":
        from rootseed.cli.group import cli

        return cli
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear message and a non-zero exit code on failure."""
    args = argv if argv is not None else sys.argv[1:]
    if args == ["--version"]:  # the one answer that needs no command line parser
        from rootseed.version import describe

        sys.stdout.write(f"rootseed {describe()}\n")
        sys.stdout.flush()
        return
    import click

    from rootseed.cli.group import cli

    debug, json_out, emitted = "--debug" in args, "--json" in args, _emitted()
    _on_sigterm()
    try:
        rv = cli.main(args=argv, prog_name="rootseed", standalone_mode=False)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
    except RootseedError as e:
        if debug:
            _traceback()
        _render(e, json_out and _emitted() == emitted)
        sys.exit(e.exit_code)
    except click.exceptions.Abort as e:
        if isinstance(e.__cause__, Terminated):
            _say("terminated")
            sys.exit(143)
        _say("aborted")
        sys.exit(130)
    except click.ClickException as e:
        if json_out and _emitted() == emitted:
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
