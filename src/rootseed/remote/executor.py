"""The remote executor: every RUN step as a REAPI action, the same layers as a local run.

:class:`RemoteExecutor` is the overlay executor (:class:`~rootseed.engine.executor.
OverlayExecutor`) with one method changed: a RUN step (``ExecOp``) is sent to a REAPI
service instead of bwrap. Everything else is the local executor's, unchanged: the same
layer store and action cache, the same action keys (so a local build after a remote one
is all cache hits, and the reverse), ``cached``/``view``/``keep``, and COPY/ADD/WORKDIR,
which run locally as BuildKit's FileOps do.

A RUN step, remotely:

1. the input root is the snapshot's merged view as a REAPI Merkle tree, composed from
   its layers (:mod:`rootseed.remote.inputroot`: a child's tree is its parent's with the
   new layer applied, each file's digest memoised per inode); the service's action
   cache is asked first (``GetActionResult``): a cached success needs no upload; else
   the tree is uploaded as far as the CAS lacks it (FindMissingBlobs) and executed;
2. the ``Command`` is the step's argv, environment (exactly, sorted) and working
   directory; the whole root is its output (``output_paths`` ``.``, or ``..`` up from
   the working directory), with ``unix_mode`` and ``mtime``; the ``Action`` carries the
   step timeout and the platform, and is cached by the service (``do_not_cache`` off):
   its digest is a pure function of the step and the input root's contents and modes,
   so a second builder is served from the service's action cache;
3. the output tree is applied onto the snapshot mounted with a fresh upper directory,
   as a local step would have changed it: what is gone is removed, what is new or
   changed (content, mode, mtime) is written, every blob verified by digest on the way
   in (small blobs read in batches: the logs and the output tree in one request, the
   new files in as few as fit); unmounted, the upper directory *is* the action's layer
   (and its hardlinks are repaired as after a local step).

How each REAPI caveat is handled (refuse, encode, or keep the step local):

* **modes, setuid/setgid/sticky**: encoded (``node_properties.unix_mode`` both ways).
* **mtimes**: every input file and directory is sent with one fixed mtime
  (:data:`STAGED_MTIME`, the time buildbox stages files at anyway), so the input root,
  and the action's digest, depend on contents and modes only (a COPY's "now" would
  otherwise make every builder's actions differ). A step therefore sees all its input
  files equally old (a local step sees real times); images clamp every mtime to
  SOURCE_DATE_EPOCH=1, so no digest depends on them. Outputs come back with their
  mtimes, which are applied: a file only touched by the step is in the layer, as
  locally, and an unchanged subtree has the same digest as the input's (skipped).
* **uid/gid**: not in REAPI's tree, and nothing to encode: both sandboxes map only uid
  and gid 0, so every file is root's (a step cannot chown to anyone else).
* **hardlinks**: the input tree cannot say that two names are one file, and the output
  comes back as separate files. Names the snapshot already links stay linked (only what
  changed is written, then :class:`~rootseed.engine.executor.HardlinkRepair` rejoins
  names as after a local step). A *new* link cannot be told from a copy; a changed file
  that could be one (another changed file with the same digest, mode and mtime, or the
  digest of an existing file with the staged mtime) makes the step run **locally**
  instead, so its layer is exactly the local one.
* **a directory removed and made again** (``rm -rf d && mkdir d``) is an opaque
  directory in a local layer, where emptying it (``rm d/*``) leaves the directory with
  a whiteout per entry: the images are the same, the layers (BuildKit's format writes
  one per step) are not, and REAPI's output is the same for both. A directory that kept
  none of its entries makes the step run **locally**.
* **/tmp, /dev, /proc**: local steps get a fresh tmpfs and the API file systems there,
  hiding what the root holds; they are sent empty (the worker mounts its tmpfs on an
  empty /tmp), and whatever the worker returns there is ignored: the root keeps its own.
* **FIFOs, sockets, devices**: an input root holding one is refused
  (:class:`~rootseed.remote.merkle.UnsupportedFile`, naming the path; a local layer
  refuses them too). One a step leaves behind has no REAPI node: ``buildbox-run`` drops
  it. rootseed's worker (:mod:`rootseed.remote.bot`) lists the step's root after the
  command and fails the action with a typed detail (:mod:`rootseed.remote.leftover`),
  which becomes the local error (:class:`~rootseed.oci.entries.UnsupportedEntry`, the
  same message, kind ``refused``); nothing is cached or written. This is *trusted* to
  the worker: the client cannot see a file that is not in the result, so another
  service's worker (or a hostile one) that drops it silently gives an image without it
  (no image ever holds one; ``rootseed challenge`` against a local build finds the
  step that fails there). ``.wh.*`` names are regular files: they come back, and the
  layer refuses them as locally.
* **a ``#!`` heredoc** (bound read-only at ``/dev/pipes/``, inside /dev, which the
  worker's sandbox replaces): the step runs **locally**.
* **the platform**: linux/386 and linux/amd64 steps both ask for ``ISA=x86-64`` (with
  ``OSFamily=linux``): locally a 386 step runs on the x86-64 kernel with its 64-bit
  personality, and buildbox-run's ``x86-32`` would run it under ``linux32`` (``uname
  -m`` says i686, so config.guess and every build that asks differ from a local one).
  A worker that cannot run x86-64 refuses the action.
* **the hostname**: buildbox-run names its sandbox ``buildbox`` and offers no way to
  set it; rootseed's bot gives its sandbox the local name (``rootseed``) through a
  ``bwrap`` shim (:func:`rootseed.remote.bot.hostname_shim`). Another service's workers
  may not: a step that records the hostname would then give another digest remotely
  (``rootseed challenge`` against a local build finds it).

* **the log**: REAPI returns stdout and stderr apart; the step's log holds stdout, then
  stderr (a local log interleaves them as they came).
* **waiting**: an action no worker takes within the queue timeout
  (``--remote-queue-timeout``, default 10 minutes; it stays QUEUED, e.g. every worker is
  gone, while none of the build's other actions runs either) stops the build with
  :class:`~rootseed.remote.client.QueueTimeout` naming the step, and one EXECUTING past
  its step timeout plus a grace (a worker gone without the service noticing) with the
  step-timeout error; nothing of the step is written, and a rerun resumes (the action
  may meanwhile have run into the service's cache).
* **cancelling**: when another step fails, the build stops waiting for the remote action
  (the Execute stream is cancelled); the worker may still finish it.

The service is not trusted for content: every blob read back is re-hashed
(:mod:`rootseed.remote.client`). Each action's result says which worker produced it and
whether it was executed or served from the service's action cache (``origin``, in the
step events and in the stage entry's actions record).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from rootseed import safefs
from rootseed.engine import fsops
from rootseed.engine.errors import Cancelled
from rootseed.engine.executor import OverlayExecutor, _advance
from rootseed.engine.interface import LayerResult, SharedImages
from rootseed.engine.ops import ExecOp, Op, exit_failure
from rootseed.engine.snapshots import MAX_LAYERS, LayerStore, Snapshot
from rootseed.errors import RootseedError
from rootseed.oci.entries import check_entry
from rootseed.remote import RemoteError
from rootseed.remote.client import (
    BATCH_LIMIT,
    DEFAULT_QUEUE_TIMEOUT,
    Prefetched,
    Remote,
    RemoteCancelled,
    RemoteTimeout,
    SpecialFileLeft,
    _check,
    _name,
)
from rootseed.remote.images import RemoteImages
from rootseed.remote.inputroot import InputRoots
from rootseed.remote.merkle import Tree, digest_of, file_digest
from rootseed.remote.protos import re_pb2
from rootseed.sandbox.overlay import OverlayNamespace
from rootseed.sandbox.timeout import DEFAULT_STEP_TIMEOUT, StepTimeoutError

#: The one mtime every input file and directory is staged with (2011-11-11 11:11:11 UTC,
#: buildbox's own staging time).
STAGED_MTIME = 1321009871
#: Top-level directories a local step sees its own mounts on (sent empty, kept as is).
MOUNTED = ("tmp", "dev", "proc")
#: How many snapshots' input trees are kept in memory (a child's is made from its
#: parent's; unchanged subtrees are shared between them).
TREES_KEPT = 256
#: The instruction set asked for, by OCI platform (see the module docstring).
ISA = {"linux/386": "x86-64", "linux/amd64": "x86-64"}


class RemoteRefused(RemoteError):
    """The remote executor cannot run this step exactly as a local build would."""


@dataclass(frozen=True)
class Origin:
    """Where an action's result came from."""

    where: str  # "remote" or "local"
    worker: str = ""
    cached: bool = False  # served from the service's action cache
    reason: str = ""  # why a step ran locally
    #: seconds spent hashing the input root, in Execute (upload, queue, run, cache),
    #: and applying the output
    phases: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"executor": self.where}
        if self.where == "remote":
            out.update(worker=self.worker, remote_cached=self.cached,
                       remote_seconds=dict(zip(("input", "execute", "output"), self.phases,
                                               strict=True)))
        else:
            out["reason"] = self.reason
        return out


class _Ambiguous(Exception):
    """The output can come from two steps whose local layers differ (run it locally)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def platform_properties(platform: str) -> list[tuple[str, str]]:
    isa = ISA.get(platform)
    if isa is None:
        raise RemoteRefused(f"no remote worker runs platform {platform!r}",
                            hint="build without --remote, or for linux/amd64 or linux/386")
    return [("ISA", isa), ("OSFamily", "linux")]


def command_of(op: ExecOp) -> re_pb2.Command:
    """The REAPI ``Command`` of a RUN step: its argv, environment and working directory
    exactly; the whole root as output, with modes and mtimes."""
    cwd = PurePosixPath(op.cwd)
    if not cwd.is_absolute() or ".." in cwd.parts:
        raise RemoteRefused(f"{op.where}: working directory {op.cwd!r} is not absolute")
    rel = cwd.relative_to("/")
    up = "/".join([".."] * len(rel.parts)) or "."
    cmd = re_pb2.Command(arguments=list(op.argv), output_paths=[up],
                         working_directory="" if not rel.parts else rel.as_posix())
    for name in sorted(op.env):
        cmd.environment_variables.add(name=name, value=op.env[name])
    cmd.output_node_properties.extend(["mtime", "unix_mode"])
    for name, value in platform_properties(op.platform):
        cmd.platform.properties.add(name=name, value=value)
    return cmd


def action_of(cmd: re_pb2.Command, timeout: float | None) -> re_pb2.Action:
    action = re_pb2.Action()
    action.platform.CopyFrom(cmd.platform)
    if timeout is not None:
        action.timeout.seconds = int(timeout)
    return action


class RemoteExecutor(OverlayExecutor):
    """The overlay executor with RUN steps on a REAPI service (see the module docstring)."""

    def __init__(self, ns: OverlayNamespace, store: LayerStore, remote: Remote,
                 say: Callable[[str], None] = lambda _t: None, *, fresh: bool = False,
                 images: RemoteImages | None = None) -> None:
        super().__init__(ns, store)
        self.remote = remote
        self.say = say
        self.fresh = fresh  # never answered from the service's action cache
        self.images = images  # whole images shared through the service (remote/images.py)
        self._digests: dict[tuple[int, int, int, int], re_pb2.Digest] = {}
        self._tree_lock = threading.Lock()
        self._roots = InputRoots(self._file_digest, mtime=STAGED_MTIME, emptied=MOUNTED,
                                 kept=TREES_KEPT)

    # -- the Executor interface ----------------------------------------------------------
    def execute(self, snapshot: Snapshot, op: Op, key: str, *, work: Path,
                stop: threading.Event | None = None) -> LayerResult:
        if not isinstance(op, ExecOp):
            return super().execute(snapshot, op, key, work=work, stop=stop)
        if op.data_files:
            return self._local(snapshot, op, key, work, stop,
                               "a #! heredoc is bound at /dev/pipes, which a worker's /dev "
                               "replaces")
        if len(snapshot.layers) >= MAX_LAYERS:
            snapshot = self.flatten(snapshot)
        started = time.monotonic()
        tree = self._input(snapshot)
        hashed = time.monotonic()
        cmd = command_of(op)
        try:
            response = self.remote.execute(
                action_of(cmd, op.timeout), cmd, tree, skip_cache=self.fresh, stop=stop,
                run_timeout=op.timeout if op.timeout is not None else DEFAULT_STEP_TIMEOUT)
        except RemoteCancelled:
            raise Cancelled(f"{op.where}: stopped while running remotely because another "
                            "step failed") from None
        except SpecialFileLeft as e:  # the error a local layer gives, with the same path
            self._log(op, e.response.result)
            check_entry(e.path, e.mode)
            raise RemoteError(f"the remote service reports /{e.path} as left behind, but "
                              "as no special file",
                              hint="the remote service or a worker is broken or "
                                   "hostile").at(op.where, package=op.package, file=op.file,
                                                 line=op.line, step="RUN") from None
        except RemoteTimeout as e:
            raise StepTimeoutError(op.timeout or 0, hint=e.message).at(
                op.where, package=op.package, file=op.file, line=op.line,
                step="RUN") from None
        except RemoteError as e:  # said where it happened, its type kept
            raise e.at(op.where, package=op.package, file=op.file, line=op.line,
                       step="RUN") from None
        executed = time.monotonic()
        result = response.result
        blobs = self._small_blobs(result)
        self._log(op, result, blobs)
        if result.exit_code != 0:
            raise exit_failure(op, result.exit_code)
        out = self._output_tree(result, blobs)
        try:
            done = self.run_action(snapshot, key,
                                   lambda view, _m: self._apply(out, tree, view))
        except _Ambiguous as e:
            return self._local(snapshot, op, key, work, stop, e.reason)
        origin = Origin("remote", worker=result.execution_metadata.worker or "?",
                        cached=response.cached_result,
                        phases=(round(hashed - started, 3), round(executed - hashed, 3),
                                round(time.monotonic() - executed, 3)))
        return replace(_advance(snapshot, done), origin=origin.to_json())

    def shared_images(self) -> SharedImages | None:
        return self.images

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.remote.close()

    def _drop_views(self, layer: Path) -> None:
        """A layer is replaced: its views go, and so do the input trees that name files
        in them."""
        self._roots.clear()
        super()._drop_views(layer)

    # -- pieces --------------------------------------------------------------------------
    def _local(self, snapshot: Snapshot, op: ExecOp, key: str, work: Path,
               stop: threading.Event | None, reason: str) -> LayerResult:
        self.say(f"{op.where}: runs locally: {reason}")
        result = super().execute(snapshot, op, key, work=work, stop=stop)
        return replace(result, origin=Origin("local", reason=reason).to_json())

    def _input(self, snapshot: Snapshot) -> Tree:
        """``snapshot``'s Merkle tree, mounts sent empty: composed from its layers
        (:mod:`rootseed.remote.inputroot`), each one applied once per process."""
        return self._roots.tree([(layer.path, layer.digest) for layer in snapshot.layers])

    def _file_digest(self, path: Path, st: os.stat_result) -> re_pb2.Digest:
        memo = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with self._tree_lock:
            d = self._digests.get(memo)
        if d is None:
            d = file_digest(path)
            with self._tree_lock:
                self._digests[memo] = d
        return d

    def _small_blobs(self, result: re_pb2.ActionResult) -> dict[str, bytes]:
        """The result's logs and output tree, as far as they fit one batch each, read
        in one request (verified)."""
        wanted = [d for raw, d in ((result.stdout_raw, result.stdout_digest),
                                   (result.stderr_raw, result.stderr_digest))
                  if not raw and d.hash]
        if result.exit_code == 0 and len(result.output_directories) == 1:
            wanted.append(result.output_directories[0].tree_digest)
        return self.remote.read_many(d for d in wanted if d.size_bytes <= BATCH_LIMIT)

    def _read(self, d: re_pb2.Digest, blobs: Mapping[str, bytes]) -> bytes:
        found = blobs.get(d.hash)
        return found if found is not None and len(found) == d.size_bytes \
            else self.remote.read(d)

    def _log(self, op: ExecOp, result: re_pb2.ActionResult,
             blobs: Mapping[str, bytes] | None = None) -> None:
        """The step's stdout and stderr into its log, as a local run writes it."""
        os.close(safefs.create_new(op.log_root, op.log))
        with open(op.log, "ab") as f:
            for raw, digest in ((result.stdout_raw, result.stdout_digest),
                                (result.stderr_raw, result.stderr_digest)):
                if raw:
                    if digest.hash:  # inlined by the service: still the digest's bytes
                        _check(digest, raw)
                    f.write(raw)
                elif digest.hash:
                    f.write(self._read(digest, blobs or {}))

    def _output_tree(self, result: re_pb2.ActionResult,
                     blobs: Mapping[str, bytes] | None = None) -> _Output:
        if len(result.output_directories) != 1 or result.output_files \
                or result.output_symlinks or result.output_file_symlinks:
            raise RemoteError("the remote result is not one output tree of the whole root",
                              hint="the remote service or a worker is broken or hostile")
        tree = re_pb2.Tree()
        tree.ParseFromString(self._read(result.output_directories[0].tree_digest,
                                        blobs or {}))
        children = {digest_of(c.SerializeToString(deterministic=True)).hash: c
                    for c in tree.children}
        return _Output(tree.root, children)

    def _apply(self, out: _Output, tree: Tree, view: Path) -> None:
        root_in = re_pb2.Directory()
        root_in.ParseFromString(tree.directories[tree.root.hash])
        changes = _Diff(out, tree).run(root_in)
        for rel in changes.ambiguous():
            raise _Ambiguous(f"/{rel} may be a new hardlink, which REAPI cannot say")
        for rel in changes.emptied:
            raise _Ambiguous(f"/{rel} lost all its files: emptied, or removed and made "
                             "again (a layer of its own locally), REAPI cannot say which")
        changes.apply(Prefetched(self.remote, changes.small_files()), view)
        if _mode(out.root, 0o755) != _mode(root_in, 0o755):
            os.chmod(view, _mode(out.root, 0o755))


@dataclass
class _Output:
    root: re_pb2.Directory
    children: dict[str, re_pb2.Directory]

    def child(self, digest: re_pb2.Digest) -> re_pb2.Directory:
        found = self.children.get(digest.hash)
        if found is None:
            raise RemoteError(f"the remote output tree lacks directory {digest.hash}",
                              hint="the remote service or a worker is broken or hostile")
        return found


def _entries(d: re_pb2.Directory) -> dict[str, object]:
    """A Directory's entries by (checked) name; a name given twice is refused."""
    out: dict[str, object] = {}
    for group in (d.files, d.symlinks, d.directories):
        for node in group:
            name = _name(node.name)
            if name in out:
                raise RemoteError(f"the remote output names {name!r} twice",
                                  hint="the remote service or a worker is broken or hostile")
            out[name] = node
    return out


def _mode(node: re_pb2.FileNode | re_pb2.Directory, default: int) -> int:
    props = node.node_properties
    return stat.S_IMODE(props.unix_mode.value) if props.HasField("unix_mode") else default


def _mtime(node: re_pb2.FileNode | re_pb2.Directory) -> tuple[int, int] | None:
    props = node.node_properties
    if not props.HasField("mtime"):
        return None
    return props.mtime.seconds, props.mtime.nanos


@dataclass
class _Change:
    rel: str  # path below the root
    kind: str  # "remove", "file", "link", "dir" (made or changed), "meta" (file mode/mtime)
    node: object = None
    replace: bool = False  # something else is there first


class _Diff:
    """The changes that turn the input tree into the output tree, parents first."""

    def __init__(self, out: _Output, tree: Tree) -> None:
        self.out = out
        self.tree = tree
        self.changes: list[_Change] = []
        #: directories that kept none of their entries (see the module docstring)
        self.emptied: list[str] = []

    def _input_dir(self, digest: re_pb2.Digest) -> re_pb2.Directory:
        d = re_pb2.Directory()
        d.ParseFromString(self.tree.directories[digest.hash])
        return d

    def run(self, root_in: re_pb2.Directory) -> _Diff:
        stack: list[tuple[re_pb2.Directory, re_pb2.Directory | None, str]] = [
            (self.out.root, root_in, "")]
        while stack:
            new, old, rel = stack.pop()
            new_entries = _entries(new)
            old_entries = _entries(old) if old is not None else {}
            if rel and old_entries and not set(old_entries) & set(new_entries):
                self.emptied.append(rel.rstrip("/"))
            for name in sorted(set(old_entries) - set(new_entries)):
                if rel or name not in MOUNTED:
                    self.changes.append(_Change(f"{rel}{name}", "remove"))
            for name in sorted(new_entries):
                path = f"{rel}{name}"
                if not rel and name in MOUNTED:
                    continue  # local steps see mounts there: the root keeps its own
                node, was = new_entries[name], old_entries.get(name)
                if isinstance(node, re_pb2.FileNode):
                    if isinstance(was, re_pb2.FileNode) and was.digest == node.digest:
                        if was.node_properties != node.node_properties:
                            self.changes.append(_Change(path, "meta", node))
                        continue
                    self.changes.append(_Change(path, "file", node, replace=was is not None))
                elif isinstance(node, re_pb2.SymlinkNode):
                    if isinstance(was, re_pb2.SymlinkNode) and was.target == node.target:
                        continue
                    self.changes.append(_Change(path, "link", node, replace=was is not None))
                else:
                    assert isinstance(node, re_pb2.DirectoryNode)
                    if isinstance(was, re_pb2.DirectoryNode) and was.digest == node.digest:
                        continue  # the same subtree, modes and mtimes too
                    child = self.out.child(node.digest)
                    old_child = (self._input_dir(was.digest)
                                 if isinstance(was, re_pb2.DirectoryNode) else None)
                    self.changes.append(_Change(path, "dir", child,
                                                replace=was is not None and old_child is None))
                    stack.append((child, old_child, f"{path}/"))
        return self

    def ambiguous(self) -> list[str]:
        """Changed files that could be new hardlinks (see the module docstring)."""
        seen: dict[tuple[str, int, tuple[int, int] | None], list[_Change]] = {}
        for c in self.changes:
            if c.kind in ("file", "meta"):
                node = c.node
                assert isinstance(node, re_pb2.FileNode)
                key = (node.digest.hash, _mode(node, 0), _mtime(node))
                seen.setdefault(key, []).append(c)
        found = [same[1].rel for same in seen.values() if len(same) > 1]
        found += [same[0].rel for (digest, _, mtime), same in seen.items()
                  if same[0].kind == "file" and mtime == (STAGED_MTIME, 0)
                  and digest in self.tree.files]
        return sorted(found)

    def small_files(self) -> list[re_pb2.Digest]:
        """The digests of the files to write that fit a batch read."""
        out = []
        for c in self.changes:
            if c.kind == "file":
                assert isinstance(c.node, re_pb2.FileNode)
                if c.node.digest.size_bytes <= BATCH_LIMIT:
                    out.append(c.node.digest)
        return out

    def apply(self, remote: Remote | Prefetched, view: Path) -> None:
        dirs: list[tuple[Path, re_pb2.Directory]] = []
        for c in self.changes:
            path = view / c.rel
            if c.kind == "remove" or c.replace:
                _remove(path)
            if c.kind == "file":
                node = c.node
                assert isinstance(node, re_pb2.FileNode)
                remote.read_file(node.digest, path,
                                 _mode(node, 0o755 if node.is_executable else 0o644))
                _utime(path, _mtime(node))
            elif c.kind == "meta":
                node = c.node
                assert isinstance(node, re_pb2.FileNode)
                os.chmod(path, _mode(node, 0o755 if node.is_executable else 0o644))
                _utime(path, _mtime(node))
            elif c.kind == "link":
                node = c.node
                assert isinstance(node, re_pb2.SymlinkNode)
                os.symlink(node.target, path)
            elif c.kind == "dir":
                d = c.node
                assert isinstance(d, re_pb2.Directory)
                st = _lstat(path)
                if st is None:
                    os.mkdir(path, 0o700)
                elif not stat.S_ISDIR(st.st_mode):
                    raise RemoteError(f"internal: /{c.rel} is no directory to apply into")
                dirs.append((path, d))
        for path, d in reversed(dirs):  # deepest last made, first finished
            os.chmod(path, _mode(d, 0o755))
            _utime(path, _mtime(d))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        fsops.remove_tree(path)
    else:
        os.unlink(path)


def _utime(path: Path, mtime: tuple[int, int] | None) -> None:
    if mtime is not None:
        ns = mtime[0] * 1_000_000_000 + mtime[1]
        os.utime(path, ns=(ns, ns), follow_symlinks=False)


@dataclass(frozen=True)
class RemoteService:
    """A REAPI service as ``--remote`` names it (the engine's
    :class:`~rootseed.engine.executors.RemoteTarget`)."""

    endpoint: str
    instance: str = ""
    #: execute every action again, never answered from the service's action cache
    fresh: bool = False
    #: seconds an action may wait for a worker (``--remote-queue-timeout``)
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT
    #: take whole images other builders recorded on the service, and record this
    #: builder's (remote/images.py); off: every step is looked up on its own
    #: (``--remote-no-images``). ``fresh`` (a rebuild executed again, e.g. a challenge's)
    #: neither takes nor records any: its image is no claim to share.
    images: bool = True

    def open(self, ns: OverlayNamespace, store: LayerStore,
             say: Callable[[str], None]) -> RemoteExecutor:
        """A remote executor, once the service has answered (an unreachable one is one
        :class:`RemoteError`, before anything runs)."""
        remote = Remote(self.endpoint, self.instance, queue_timeout=self.queue_timeout)
        try:
            remote.wait_ready(10.0)
        except RootseedError:
            remote.close()
            ns.close()
            raise
        images = (RemoteImages(remote, self.endpoint, self.instance)
                  if self.images and not self.fresh else None)
        return RemoteExecutor(ns, store, remote, say, fresh=self.fresh, images=images)
