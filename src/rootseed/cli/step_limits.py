"""``--max-processes/--max-memory/--max-tmp/--max-log/--max-disk``: the limits of every
RUN step, for commands that run build steps (see :mod:`rootseed.sandbox.limits`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from rootseed.errors import RootseedError
from rootseed.sandbox import limits as step_limits
from rootseed.sandbox.limits import Limit, StepLimits, parse_count, parse_size

F = TypeVar("F", bound=Callable[..., Any])

_HELP = {
    Limit.PROCESSES: "Processes (and threads) one RUN step may run at once",
    Limit.MEMORY: "Memory one RUN step may use (e.g. 8G)",
    Limit.TMP: "Size of a RUN step's /tmp (a tmpfs; e.g. 2G)",
    Limit.LOG: "Output one RUN step may write to its log (e.g. 512M)",
    Limit.DISK: "Disk one RUN step may write (e.g. 50G)",
}


def _parse(limit: Limit, value: str | None) -> int | None:
    parse = parse_count if limit is Limit.PROCESSES else parse_size
    assert value is not None
    try:
        return parse(value)
    except RootseedError as e:
        raise click.BadParameter(e.message + (f" ({e.hint})" if e.hint else ""),
                                 param_hint=f"--{limit.value}") from None


def step_limit_options(f: F) -> F:
    """The five limit options; the command does not see them: they set the run's limits
    (:func:`rootseed.sandbox.limits.use`) before it starts."""
    defaults = StepLimits()

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {limit: kwargs.pop(limit.value.replace("-", "_")) for limit in Limit}
        values = {limit: _parse(limit, value) if value is not None else defaults.value(limit)
                  for limit, value in given.items()}
        step_limits.use(StepLimits(
            processes=values[Limit.PROCESSES], memory=values[Limit.MEMORY],
            tmp=values[Limit.TMP], log=values[Limit.LOG], disk=values[Limit.DISK]))
        return f(*args, **kwargs)

    for limit in reversed(Limit):
        wrapper = click.option(
            f"--{limit.value}", default=None, metavar="N" if limit is Limit.PROCESSES
            else "SIZE", help=f"{_HELP[limit]}; 0: no limit. [default: "
            f"{defaults.describe(limit)}]")(wrapper)
    return wrapper  # type: ignore[return-value]
