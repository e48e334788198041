"""Options shared by the commands that read or write signatures (one definition each).

``sign`` takes the store options (``--signatures``, ``--registry``); ``verify``, ``trace``
and ``report`` take the quorum options too (``--keyring``, ``--quorum``): required for
``verify``, optional for ``trace``/``report`` (without it, signatures are not checked).
The command receives them as keyword arguments ``signatures``, ``registry``,
``keyring_path`` and ``quorum``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_QUORUM = 2


def store_options(func: F) -> F:
    """``--signatures DIR`` (default ./signatures) and ``--registry NAME``."""
    func = click.option(
        "--registry", default=None, help="Registry/namespace in the docker reference "
        "(default: the tree's namespace).")(func)
    return click.option(
        "--signatures", "signatures", type=click.Path(path_type=Path, file_okay=False),
        default=Path("signatures"), show_default=True,
        help="Signature store (<registry>/<stage>-<name>@sha256=<digest>/signature-N).")(func)


def quorum_options(*, keyring_required: bool) -> Callable[[F], F]:
    """``--keyring FILE`` and ``--quorum N`` (default 2), plus :func:`store_options`."""
    keyring_help = "Trusted maintainers' public keys (gpg --export; binary or armored)."
    if not keyring_required:
        keyring_help += " Without it, signatures are not checked."

    def decorate(func: F) -> F:
        func = store_options(func)
        func = click.option(
            "--quorum", type=int, default=DEFAULT_QUORUM, show_default=True,
            help="Distinct trusted keys that must have signed.")(func)
        return click.option(
            "--keyring", "keyring_path", required=keyring_required,
            type=click.Path(path_type=Path, dir_okay=False), help=keyring_help)(func)

    return decorate
