"""The click group of the ``rootseed`` command (see :mod:`rootseed.cli`)."""

from __future__ import annotations

import difflib
import importlib

import click

from rootseed.cli import COMMANDS


class LazyGroup(click.Group):
    """Imports a command's module only when that command runs (start-up stays fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        """A mistyped command is one message that names the closest commands."""
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, sorted(COMMANDS), n=3)
            hint = (f" Did you mean {' or '.join(repr(c) for c in close)}?" if close
                    else " See 'rootseed --help' for the commands.")
            raise click.UsageError(f"no such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMANDS.get(cmd_name)
        if module_name is None:
            return None
        from rootseed import dataclasscode

        dataclasscode.install(module_name)  # the command's dataclasses: methods' code kept
        module = importlib.import_module(f"rootseed.cli.{module_name}")
        for command in module.COMMANDS:
            if command.name == cmd_name:
                return command  # type: ignore[no-any-return]
        raise RuntimeError(f"rootseed.cli.{module_name} does not define {cmd_name!r}")


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
