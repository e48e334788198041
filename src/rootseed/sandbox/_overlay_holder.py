"""The process that owns rootseed's overlay mounts (run as a script, stdlib only).

Started by :mod:`rootseed.sandbox.overlay` under ``unshare --user --map-root-user
--mount``: it lives in a private user + mount namespace, where an unprivileged user may
mount overlayfs. It reads one JSON request per line on stdin and answers one JSON line on
stdout:

* ``{"op": "mount", "target": T, "lower": [top, ..., bottom], "upper": U|null,
  "work": W|null}`` — mount an overlay at ``T`` (read-only when ``upper`` is null);
* ``{"op": "umount", "target": T}`` — detach it.

Answers are ``{"ok": true}`` or ``{"ok": false, "errno": N, "error": "..."}``. The mounts
exist only in this namespace; rootseed reaches them through ``/proc/<pid>/root`` and runs
bwrap in here with ``nsenter``. End of input ends the process (and, with it, the
namespace and every mount). Deliberately no import of rootseed: ``python -I -S`` starts it
in a few milliseconds.

Mounting uses the new mount API (fsopen/fsconfig ``lowerdir+``, Linux 6.8+), which takes
each lower layer as its own parameter, so deep stacks are not limited by the one-page
option string of mount(2); older kernels get mount(2) with the layers relative to
the common parent (shorter strings).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import sys

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# Syscall numbers of the new mount API (the same on x86_64, i386 uses its own table).
_NR = {"x86_64": {"fsopen": 430, "fsconfig": 431, "fsmount": 432, "move_mount": 429},
       "aarch64": {"fsopen": 430, "fsconfig": 431, "fsmount": 432, "move_mount": 429}}
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOVE_MOUNT_F_EMPTY_PATH = 4
AT_FDCWD = -100
MNT_DETACH = 2
MS_RDONLY = 1


class MountError(Exception):
    def __init__(self, errno: int, what: str) -> None:
        super().__init__(f"{what}: {os.strerror(errno)}")
        self.errno = errno


def _check(result: int, what: str) -> int:
    if result < 0:
        raise MountError(ctypes.get_errno(), what)
    return result


def _mount_new_api(target: str, lower: list[str], upper: str | None, work: str | None) -> None:
    nr = _NR[platform.machine()]
    # The layer paths are given relative to their common directory (the kernel resolves
    # them against this process's cwd): the overlay's options, which a step can read in
    # /proc/self/mountinfo, then name no host path.
    common = os.path.commonpath([*lower, *(p for p in (upper, work) if p is not None)])
    lower = [os.path.relpath(p, common) for p in lower]
    upper = None if upper is None else os.path.relpath(upper, common)
    work = None if work is None else os.path.relpath(work, common)
    target = os.path.abspath(target)
    os.chdir(common)
    fs = _check(_libc.syscall(nr["fsopen"], b"overlay", FSOPEN_CLOEXEC), "fsopen")
    try:
        def conf(kind: int, key: str, value: str | None) -> None:
            _check(_libc.syscall(nr["fsconfig"], fs, kind, key.encode(),
                                 None if value is None else value.encode(), 0),
                   f"fsconfig {key}")

        for layer in lower:
            conf(FSCONFIG_SET_STRING, "lowerdir+", layer)
        if upper is not None and work is not None:
            conf(FSCONFIG_SET_STRING, "upperdir", upper)
            conf(FSCONFIG_SET_STRING, "workdir", work)
        conf(FSCONFIG_SET_FLAG, "userxattr", None)
        _check(_libc.syscall(nr["fsconfig"], fs, FSCONFIG_CMD_CREATE, None, None, 0),
               "fsconfig create")
        mnt = _check(_libc.syscall(nr["fsmount"], fs, FSMOUNT_CLOEXEC, 0), "fsmount")
        try:
            _check(_libc.syscall(nr["move_mount"], mnt, b"", AT_FDCWD, target.encode(),
                                 MOVE_MOUNT_F_EMPTY_PATH), "move_mount")
        finally:
            os.close(mnt)
    finally:
        os.close(fs)
        os.chdir("/")


def _mount_legacy(target: str, lower: list[str], upper: str | None, work: str | None) -> None:
    paths = [*lower, *(p for p in (upper, work) if p is not None)]
    common = os.path.commonpath(paths)
    os.chdir(common)  # relative layer paths: a shorter option string

    def rel(p: str) -> str:
        return os.path.relpath(p, common)

    opts = "lowerdir=" + ":".join(rel(p) for p in lower)
    if upper is not None and work is not None:
        opts += f",upperdir={rel(upper)},workdir={rel(work)}"
    opts += ",userxattr"
    flags = 0 if upper is not None else MS_RDONLY
    try:
        _check(_libc.mount(b"overlay", target.encode(), b"overlay", flags, opts.encode()),
               "mount")
    finally:
        os.chdir("/")


def mount(target: str, lower: list[str], upper: str | None, work: str | None) -> None:
    if platform.machine() in _NR:
        try:
            _mount_new_api(target, lower, upper, work)
            return
        except MountError as e:
            # ENOSYS: no new mount API; EINVAL: no "lowerdir+" (before Linux 6.8).
            if e.errno not in (38, 22):
                raise
    _mount_legacy(target, lower, upper, work)


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), MNT_DETACH), "umount")


def main() -> None:
    for line in sys.stdin:
        try:
            req = json.loads(line)
            if req["op"] == "mount":
                mount(req["target"], list(req["lower"]), req.get("upper"), req.get("work"))
            elif req["op"] == "umount":
                umount(req["target"])
            else:
                raise MountError(22, f"unknown request {req['op']!r}")
            answer: dict[str, object] = {"ok": True}
        except MountError as e:
            answer = {"ok": False, "errno": e.errno, "error": str(e)}
        except (ValueError, KeyError, TypeError) as e:
            answer = {"ok": False, "errno": 22, "error": f"bad request: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
