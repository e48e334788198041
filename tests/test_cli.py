from __future__ import annotations

import subprocess
import sys

import click

from clirun import rootseed as run


def test_help_lists_commands() -> None:
    r = run("--help")
    assert r.returncode == 0
    assert "Usage" in r.stdout


def test_unknown_command_is_an_error_without_traceback() -> None:
    r = run("no-such-command")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr


def test_every_registered_command_loads_and_has_help() -> None:
    from rootseed.cli import COMMANDS, cli

    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert (command.help or "").strip(), name
    r = run("--help")
    for name in COMMANDS:
        assert name in r.stdout


def test_each_command_module_imports_alone() -> None:
    """Commands load lazily, so each module must import by itself (no import cycles)."""
    from rootseed.cli import COMMANDS

    modules = sorted(set(COMMANDS.values()))
    procs = {module: subprocess.Popen([sys.executable, "-c", f"import rootseed.cli.{module}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for module in modules}  # side by side: a fresh interpreter each, not one per turn
    for module, proc in procs.items():
        _, err = proc.communicate()
        assert proc.returncode == 0, f"{module}: {err[-800:]}"
