"""``--remote`` and ``--instance``: run RUN steps on a REAPI service (commands that build)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from rootseed.engine.executors import RemoteTarget

F = TypeVar("F", bound=Callable[..., Any])


def _endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(("grpc://", "http://")):
        raise click.BadParameter("give the service as grpc://HOST:PORT")
    return value


def remote_options(f: F) -> F:
    """``--remote grpc://HOST:PORT``, ``--instance NAME`` and ``--remote-no-cache``
    (parameters ``remote``, ``instance``, ``remote_fresh``; :func:`remote_target` makes
    them one value)."""
    f = click.option("--remote-no-cache", "remote_fresh", is_flag=True,
                     help="With --remote: execute every RUN step on a worker again, never "
                          "answered from the service's action cache.")(f)
    f = click.option("--instance", default="", metavar="NAME",
                     help="The REAPI instance name on the --remote service.")(f)
    return click.option(
        "--remote", default=None, metavar="grpc://HOST:PORT", callback=_endpoint,
        help="Run every RUN step as a Remote Execution API action on this service "
             "(e.g. BuildGrid with buildbox workers: scripts/remote-cluster up); the "
             "images are the same as a local build's.")(f)


def remote_target(remote: str | None, instance: str, fresh: bool = False
                  ) -> RemoteTarget | None:
    if remote is None:
        if fresh:
            raise click.UsageError("--remote-no-cache goes with --remote")
        return None
    from rootseed.remote.executor import RemoteService  # the remote extra, only now

    return RemoteService(remote, instance, fresh)
