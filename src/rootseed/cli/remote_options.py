"""``--remote`` and ``--instance``: run RUN steps on a REAPI service (commands that build)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

import click

from rootseed.engine.executors import RemoteTarget

F = TypeVar("F", bound=Callable[..., Any])


def _endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(("grpc://", "http://")):
        raise click.BadParameter("give the service as grpc://HOST:PORT")
    return value


#: Where ``--remote-queue-timeout`` is kept for :func:`remote_target` (click's context
#: meta: the option adds no parameter to every command that builds).
_QUEUE_TIMEOUT = "rootseed.remote_queue_timeout"
#: ... and ``--remote-no-images``
_NO_IMAGES = "rootseed.remote_no_images"


def _queue_timeout(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    if value is not None:
        if value <= 0:
            raise click.BadParameter("give a number of seconds above 0")
        ctx.meta[_QUEUE_TIMEOUT] = value


def _no_images(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_NO_IMAGES] = True


def remote_options(f: F) -> F:
    """``--remote grpc://HOST:PORT``, ``--instance NAME``, ``--remote-no-cache`` and
    ``--remote-queue-timeout`` (parameters ``remote``, ``instance``, ``remote_fresh``;
    :func:`remote_target` makes them one value), and ``--remote-no-images``."""
    f = click.option("--remote-no-images", is_flag=True, callback=_no_images,
                     expose_value=False,
                     help="With --remote: never take a package's whole image that another "
                          "builder recorded on the service (look each RUN step up "
                          "instead), and record none.")(f)
    f = click.option("--remote-queue-timeout", type=float, default=None, metavar="SECONDS",
                     callback=_queue_timeout, expose_value=False,
                     help="With --remote: stop the build when no worker has taken a RUN "
                          "step's action for this long (default 600).")(f)
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
    ctx = click.get_current_context(silent=True)
    queue_timeout = ctx.meta.get(_QUEUE_TIMEOUT) if ctx is not None else None
    no_images = bool(ctx.meta.get(_NO_IMAGES)) if ctx is not None else False
    if remote is None:
        if fresh:
            raise click.UsageError("--remote-no-cache goes with --remote")
        if queue_timeout is not None:
            raise click.UsageError("--remote-queue-timeout goes with --remote")
        if no_images:
            raise click.UsageError("--remote-no-images goes with --remote")
        return None
    from rootseed.remote.executor import RemoteService  # the remote extra, only now

    service = RemoteService(remote, instance, fresh, images=not no_images)
    return service if queue_timeout is None else replace(service, queue_timeout=queue_timeout)
