"""Remote execution on an existing REAPI engine (BuildGrid with buildbox workers).

rootseed does not grow a scheduler of its own across machines: where one machine is not
enough, RUN steps become Remote Execution API actions on a service that already exists.
This package holds the pieces rootseed itself must supply:

- :mod:`~rootseed.remote.protos`: the REAPI and Remote Workers API messages (the
  generated modules that ship with BuildGrid), imported in one place;
- :mod:`~rootseed.remote.merkle`: a directory as REAPI ``Directory`` messages (the input
  root's Merkle digest);
- :mod:`~rootseed.remote.client`: CAS upload/download of only what is missing, Execute,
  the action cache — every downloaded blob re-hashed;
- :mod:`~rootseed.remote.bot`: the worker bot (no REAPI bot is packaged anywhere we can
  install from): leases from BuildGrid's Bots service, run by ``buildbox-run``
  (bubblewrap) against a local ``buildbox-casd``;
- :mod:`~rootseed.remote.cluster`: ``scripts/remote-cluster up|down``: PostgreSQL,
  BuildGrid and N workers on 127.0.0.1, started from packages and stopped exactly.
"""

from __future__ import annotations

from rootseed.errors import ErrorKind, RootseedError


class RemoteError(RootseedError):
    """The remote execution service or a worker failed, or answered something wrong."""

    kind = ErrorKind.REMOTE


class RemoteUnavailable(RemoteError):
    """The remote packages (``pip install 'rootseed[remote]'``) or binaries are missing."""
