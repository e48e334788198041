"""``--step-timeout``: the click option for commands that run build steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from rootseed.errors import RootseedError
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT, describe, parse_duration

F = TypeVar("F", bound=Callable[..., Any])


def _click_duration(ctx: click.Context, param: click.Parameter, value: str) -> float | None:
    try:
        return parse_duration(value)
    except RootseedError as e:
        raise click.BadParameter(e.message + (f" ({e.hint})" if e.hint else "")) from None


def step_timeout_option(f: F) -> F:
    """``--step-timeout DURATION`` for commands that run build steps."""
    return click.option(
        "--step-timeout", default=describe(DEFAULT_STEP_TIMEOUT), show_default=True,
        metavar="DURATION", callback=_click_duration,
        help="Kill a RUN step that runs longer than this (e.g. 90m, 12h; 0: no limit).")(f)
