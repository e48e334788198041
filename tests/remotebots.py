"""Test-only worker bots (run as scripts by tests/remotecluster.pool_workers).

An honest bot of a pool is rootseed's own :class:`~rootseed.remote.bot.Bot` advertising
no ISA, only ``rootseed-pool=POOL``: it takes only the actions that ask for that pool.
With ``--tamper`` it is a malicious (or broken) worker: it runs the step honestly, then
lies in the ActionResult it reports, as the Command's ``ROOTSEED_TAMPER`` variable says:

* ``missing-blob``: the output tree names a file whose blob it never uploaded;
* ``missing-dir``: the output tree names a subdirectory it leaves out of the Tree;
* ``escape``: an output file is named ``../escaped`` (a path out of the output);
* ``duplicate``: two entries of one directory have the same name;
* ``not-a-tree``: the output's tree digest names bytes that are no Tree;
* ``stdout``: the stdout digest names a blob it never uploaded.

A worker cannot upload bytes under a digest they do not hash to: BuildGrid's CAS checks
(``Data does not match hash``); a CAS that does not is the "broken disk" test's case.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

from rootseed.remote import leftover
from rootseed.remote.bot import Bot, Refused, _Job
from rootseed.remote.client import Remote
from rootseed.remote.merkle import digest_of
from rootseed.remote.protos import error_details_pb2, re_pb2
from rootseed.sandbox.limits import StepLimits, parse_count, parse_size


class TamperBot(Bot):
    def _execute(self, job: _Job, action: re_pb2.Action) -> re_pb2.ActionResult | None:
        result = super()._execute(job, action)
        env = {v.name: v.value for v in self._command(action).environment_variables}
        mode = env.get("ROOTSEED_TAMPER", "")
        if result is None or not mode:
            return result
        if mode.startswith("special:"):  # a special-file detail naming what it likes
            status = leftover.status_for("data/pipe", "fifo", self.name)
            info = error_details_pb2.ErrorInfo()
            status.details[0].Unpack(info)
            info.metadata["path"] = mode.removeprefix("special:")
            status.details[0].Pack(info)
            raise Refused(status.code, status.message, result=result, details=status.details)
        with Remote(f"grpc://{self.server}") as remote:
            if mode == "stdout":
                result.stdout_digest.CopyFrom(digest_of(f"never {uuid.uuid4()}".encode()))
                return result
            out = result.output_directories[0]
            if mode == "not-a-tree":
                garbage = b"\xff\xff\xff\xff not a Tree " + uuid.uuid4().bytes
                remote.upload({digest_of(garbage).hash: garbage})
                out.tree_digest.CopyFrom(digest_of(garbage))
                return result
            tree = re_pb2.Tree()
            tree.ParseFromString(remote.read(out.tree_digest))
            if mode == "missing-blob":
                tree.root.files[0].digest.CopyFrom(
                    digest_of(f"never uploaded {uuid.uuid4()}".encode()))
            elif mode == "missing-dir":
                del tree.children[:]
            elif mode == "escape":
                tree.root.files[0].name = "../escaped"
            elif mode == "duplicate":
                tree.root.files.add().CopyFrom(tree.root.files[0])
            else:
                raise ValueError(f"unknown tamper mode {mode!r}")
            data = tree.SerializeToString(deterministic=True)
            remote.upload({digest_of(data).hash: data})
            out.tree_digest.CopyFrom(digest_of(data))
        return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--casd", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--work", required=True, type=Path)
    p.add_argument("--pool", required=True)
    p.add_argument("--tamper", action="store_true")
    p.add_argument("--max-processes", default="1024")
    p.add_argument("--max-memory", default="1G")
    p.add_argument("--max-disk", default="1G")
    args = p.parse_args()
    limits = StepLimits(processes=parse_count(args.max_processes),
                        memory=parse_size(args.max_memory), disk=parse_size(args.max_disk))
    cls = TamperBot if args.tamper else Bot
    cls(args.server, args.casd, args.name, args.work, [], pool=args.pool,
        limits=limits).serve()


if __name__ == "__main__":
    main()
