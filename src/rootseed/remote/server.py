"""BuildGrid's server, started the fast way: migrate and serve in one process.

``bgd migrate apply`` and ``bgd server start`` are two Python processes that each import
all of BuildGrid (3–8 s each on a loaded machine), and the server then spends about half
of its start-up (measured with py-spy: 426 of 778 samples) in ``jsonschema.validate``,
which checks BuildGrid's own schema against the JSON Schema meta-schema again for every
tagged object in the configuration. This launcher runs both commands in one process and
validates the configuration against BuildGrid's schema without re-checking that schema
(it ships with BuildGrid; the configuration itself is still validated in full).

Run as ``python -m rootseed.remote.server DB_URL CONFIG`` (``scripts/remote-cluster`` does).
"""

from __future__ import annotations

import sys
import types
from collections.abc import Sequence
from typing import Any


def _validate(instance: Any, schema: Any, *args: Any, **kwargs: Any) -> None:
    """``jsonschema.validate`` minus its ``check_schema`` of the (trusted) schema."""
    import jsonschema  # type: ignore[import-untyped]

    cls = jsonschema.validators.validator_for(schema)
    error = jsonschema.exceptions.best_match(cls(schema).iter_errors(instance))
    if error is not None:
        raise error


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.exit("usage: python -m rootseed.remote.server DB_URL CONFIG")
    db, config = args
    import jsonschema
    from buildgrid.server.app.cli import cli
    from buildgrid.server.app.settings import parser

    parser.jsonschema = types.SimpleNamespace(
        validate=_validate, exceptions=jsonschema.exceptions)
    cli.main(["migrate", "apply", db], prog_name="bgd", standalone_mode=False)
    cli.main(["server", "start", config], prog_name="bgd")


if __name__ == "__main__":
    main()
