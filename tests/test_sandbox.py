"""The sandbox, tested with a static busybox in a throw-away root filesystem."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from kinds import raises_kind
from rootseed.errors import ErrorKind, RootseedError
from rootseed.sandbox import SandboxSpec, bwrap_argv, options, run
from rootseed.sandbox import bwrap as bwrap_mod
from rootseed.sandbox.rootpath import plan_stubs, resolve_in_root
from rootseed.sandbox.timeout import StepStopped
from sleepers import WAIT, alive, end_all, marker, wait_until

BUSYBOX = Path("/usr/bin/busybox")
APPLETS = ["sh", "env", "hostname", "id", "cat", "ls", "touch", "nc", "stat", "echo", "mkdir",
           "sleep", "true"]

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None or not BUSYBOX.is_file(),
                                 reason="needs bubblewrap and busybox-static (apt-get install "
                                        "bubblewrap busybox-static)")


def make_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        os.symlink("busybox", root / "bin" / applet)
    return root


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "root")


def sandbox(rootfs: Path, argv: Sequence[str], *, env: dict[str, str] | None = None,
            **kw: object) -> tuple[int, str]:
    """Run in the sandbox; return (exit code, what this run wrote to the log)."""
    log = rootfs.parent / "run.log"
    before = log.stat().st_size if log.exists() else 0
    spec = SandboxSpec(rootfs=rootfs, argv=list(argv),
                       env={"PATH": "/bin"} if env is None else env, **kw)  # type: ignore[arg-type]
    rc = run(spec, log=log)
    with open(log, "rb") as f:
        f.seek(before)
        return rc, f.read().decode()


# -- option builders (no bwrap needed) -------------------------------------------------------

def test_namespaces_include_network_and_user() -> None:
    ns = options.namespace_options()
    for flag in ("--unshare-user", "--unshare-net", "--unshare-pid", "--unshare-ipc",
                 "--unshare-uts"):
        assert flag in ns
    assert "--share-net" not in ns


def test_env_options_clear_first_and_sorted() -> None:
    assert options.env_options({"B": "2", "A": "x y"}) == [
        "--clearenv", "--setenv", "A", "x y", "--setenv", "B", "2"]


@pytest.mark.parametrize("key", ["", "A=B", "A\0"])
def test_env_options_reject_bad_names(key: str) -> None:
    with pytest.raises(RootseedError):
        options.env_options({key: "v"})


def test_identity_and_process_options() -> None:
    assert options.identity_options("box") == ["--uid", "0", "--gid", "0", "--hostname", "box"]
    assert options.process_options() == ["--die-with-parent", "--new-session"]
    with pytest.raises(RootseedError):
        options.identity_options("")


def test_api_fs_and_binds() -> None:
    assert options.api_fs_options() == ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    assert options.ro_bind_options([(Path("/h"), "/ctx")]) == ["--ro-bind", "/h", "/ctx"]
    with pytest.raises(RootseedError):
        options.ro_bind_options([(Path("/h"), "ctx")])
    with pytest.raises(RootseedError):
        options.cwd_options("relative")


def test_bwrap_argv_order_and_no_shell(tmp_path: Path) -> None:
    spec = SandboxSpec(rootfs=tmp_path, argv=["/bin/sh", "-c", "echo a; echo b"],
                       env={"Z": "1", "A": "2"}, cwd="/src",
                       ro_binds=[(Path("/host/ctx"), "/tmp/ctx")], runner=["/usr/bin/qemu-i386"])
    argv = bwrap_argv(spec, "/usr/bin/bwrap")
    assert argv[0] == "/usr/bin/bwrap"
    # the command is passed verbatim after "--", each argument one element
    sep = argv.index("--")
    assert argv[sep + 1:] == ["/usr/bin/qemu-i386", "/bin/sh", "-c", "echo a; echo b"]
    # root first, then /tmp, then binds below /tmp (and the runner's bind)
    root = argv.index("--bind")
    assert argv[root:root + 3] == ["--bind", str(tmp_path), "/"]
    tmpfs = argv.index("--tmpfs")
    ctx = argv.index("/tmp/ctx")
    assert root < tmpfs < ctx < sep
    assert argv[argv.index("/usr/bin/qemu-i386") - 1:argv.index("/usr/bin/qemu-i386") + 2] == \
        ["--ro-bind", "/usr/bin/qemu-i386", "/usr/bin/qemu-i386"]
    assert argv.index("--clearenv") < argv.index("--setenv")
    assert argv[argv.index("--chdir") + 1] == "/src"
    assert "--die-with-parent" in argv and "--unshare-net" in argv


def test_resolve_in_root_never_leaves_root(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "bin").mkdir(parents=True)
    os.symlink("/etc/passwd", root / "bin" / "abs")  # exists on the host, not in root
    os.symlink("../../../../etc/passwd", root / "bin" / "rel")
    assert resolve_in_root(root, "/bin/abs") is None
    assert resolve_in_root(root, "/bin/rel") is None
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text("inside")
    assert resolve_in_root(root, "/bin/abs") == root / "etc" / "passwd"
    assert resolve_in_root(root, "/bin/rel") == root / "etc" / "passwd"


def test_plan_stubs(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    stubs = plan_stubs(tmp_path, [("/proc", True), ("/dev", True), ("/tmp", True),
                                  ("/tmp/x", True), ("/a/b/f", False)], covered=["/tmp"])
    assert [(s.path.relative_to(tmp_path).as_posix(), s.is_dir) for s in stubs] == [
        ("proc", True), ("tmp", True), ("a", True), ("a/b", True), ("a/b/f", False)]
    os.symlink("/", tmp_path / "proc")
    with raises_kind(ErrorKind.REFUSED):
        plan_stubs(tmp_path, [("/proc", True)])


def test_missing_bwrap_has_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bwrap_mod.shutil, "which", lambda name: None)
    with pytest.raises(RootseedError) as exc:
        run(SandboxSpec(tmp_path, ["/bin/true"], {}), log=tmp_path / "log")
    assert exc.value.hint is not None and "apt-get install bubblewrap" in exc.value.hint


# -- running (bwrap + busybox) -----------------------------------------------------------------

@needs_bwrap
def test_missing_command_is_a_clear_error(rootfs: Path) -> None:
    with raises_kind(ErrorKind.STEP):
        sandbox(rootfs, ["gcc", "--version"])
    with raises_kind(ErrorKind.STEP):
        sandbox(rootfs, ["/usr/bin/make"])
    assert sorted(os.listdir(rootfs)) == ["bin"]


@needs_bwrap
def test_exit_codes_propagate(rootfs: Path) -> None:
    assert sandbox(rootfs, ["sh", "-c", "exit 0"])[0] == 0
    assert sandbox(rootfs, ["sh", "-c", "exit 42"])[0] == 42
    assert sandbox(rootfs, ["sh", "-c", "kill -9 $$"])[0] == 128 + 9


@needs_bwrap
def test_environment_is_exactly_the_declared_one(rootfs: Path) -> None:
    env = {"PATH": "/bin", "A": "two words", "EMPTY": ""}
    rc, output = sandbox(rootfs, ["/bin/env"], env=env)
    assert rc == 0
    # bwrap always exports PWD (= the working directory), as every shell does anyway
    assert sorted(output.splitlines()) == ["A=two words", "EMPTY=", "PATH=/bin", "PWD=/"]


@needs_bwrap
def test_identity_hostname_umask(rootfs: Path) -> None:
    rc, output = sandbox(rootfs, ["sh", "-c", "id -u; id -g; hostname; umask"])
    assert rc == 0
    assert output.split() == ["0", "0", "rootseed", "0022"]
    rc, output = sandbox(rootfs, ["sh", "-c", "hostname; umask; touch /made"],
                         hostname="other", umask=0o077)
    assert output.split() == ["other", "0077"]
    assert stat.S_IMODE(os.stat(rootfs / "made").st_mode) == 0o600
    rc, output = sandbox(rootfs, ["touch", "/made2"])
    assert stat.S_IMODE(os.stat(rootfs / "made2").st_mode) == 0o644


@needs_bwrap
def test_cwd(rootfs: Path) -> None:
    (rootfs / "src").mkdir()
    rc, output = sandbox(rootfs, ["sh", "-c", "pwd"], cwd="/src")
    assert (rc, output.strip()) == (0, "/src")
    with raises_kind(ErrorKind.STEP):
        sandbox(rootfs, ["sh", "-c", "pwd"], cwd="/nope")


@needs_bwrap
def test_relative_command_resolves_against_cwd(rootfs: Path) -> None:
    """``./tools/x`` is found relative to the working directory, as execve does."""
    (rootfs / "work" / "tools").mkdir(parents=True)
    os.symlink("/bin/busybox", rootfs / "work" / "tools" / "echo")
    rc, output = sandbox(rootfs, ["./tools/echo", "relative"], cwd="/work")
    assert (rc, output.strip()) == (0, "relative")
    with raises_kind(ErrorKind.STEP):
        sandbox(rootfs, ["./tools/echo", "x"], cwd="/")


@needs_bwrap
def test_no_network(rootfs: Path) -> None:
    accepted: list[int] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        listener.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                accepted.append(1)
                conn.close()

        server = threading.Thread(target=serve)
        server.start()
        try:
            probe = ["nc", "-w", "5", "127.0.0.1", str(listener.getsockname()[1])]
            # control: the same probe outside the sandbox does reach the listener
            outside = subprocess.run([str(rootfs / "bin" / "busybox"), *probe],
                                     input=b"", capture_output=True, timeout=60)
            assert outside.returncode == 0, outside.stderr
            assert len(accepted) == 1
            rc, _output = sandbox(rootfs, probe)
            assert rc != 0
            assert len(accepted) == 1
        finally:
            stop.set()
            server.join()


@needs_bwrap
def test_host_files_invisible(rootfs: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("host secret")
    rc, output = sandbox(rootfs, ["cat", str(marker)])
    assert rc != 0 and "host secret" not in output
    if Path("/etc/hostname").exists():
        rc, output = sandbox(rootfs, ["cat", "/etc/hostname"])
        assert rc != 0
    rc, output = sandbox(rootfs, ["ls", "/"])
    assert output.split() == ["bin", "dev", "proc", "tmp"]
    rc, output = sandbox(rootfs, ["ls", "/dev"])
    assert "null" in output.split() and "sda" not in output.split()


@needs_bwrap
def test_writes_outside_rootfs_impossible(rootfs: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "in").write_text("context")
    script = (f"echo x > {victim}; echo x > /../../{victim.name}; echo x > /ctx/in; "
              "touch /ctx/new; cat /ctx/in")
    _rc, output = sandbox(rootfs, ["sh", "-c", script], ro_binds=[(ctx, "/ctx")])
    assert "context" in output  # the bind was visible, read-only
    assert victim.read_text() == "untouched"
    assert sorted(os.listdir(ctx)) == ["in"] and (ctx / "in").read_text() == "context"
    assert sorted(os.listdir(tmp_path)) == ["ctx", "root", "run.log", "victim"]
    # the shell wrote its redirections inside the rootfs (if anywhere)
    assert not (rootfs / "ctx").exists()


@needs_bwrap
def test_api_filesystems_do_not_leak(rootfs: Path) -> None:
    rc, _ = sandbox(rootfs, ["sh", "-c", "echo hi > /tmp/t; ls /proc/self >/dev/null"])
    assert rc == 0
    assert sorted(os.listdir(rootfs)) == ["bin"]
    # pre-existing mount points stay, and /tmp writes never reach the image
    for d in ("tmp", "dev"):
        (rootfs / d).mkdir()
    (rootfs / "tmp" / "keep").write_text("image file")
    rc, output = sandbox(rootfs, ["sh", "-c", "ls /tmp; echo hi > /tmp/t"])
    assert output.split() == []  # the tmpfs hides the image's /tmp, as Docker's would not
    assert sorted(os.listdir(rootfs)) == ["bin", "dev", "tmp"]
    assert sorted(os.listdir(rootfs / "tmp")) == ["keep"]
    # a failing command still cleans up
    shutil.rmtree(rootfs / "tmp")
    shutil.rmtree(rootfs / "dev")
    assert sandbox(rootfs, ["sh", "-c", "exit 3"])[0] == 3
    assert sorted(os.listdir(rootfs)) == ["bin"]


@needs_bwrap
def test_bind_stubs_removed(rootfs: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "f").write_text("x")
    rc, output = sandbox(rootfs, ["cat", "/a/b/ctx/f", "/tmp/c/f"],
                         ro_binds=[(ctx, "/a/b/ctx"), (ctx, "/tmp/c")])
    assert (rc, output) == (0, "xx")
    assert sorted(os.listdir(rootfs)) == ["bin"]


@needs_bwrap
def test_runner_prefix(rootfs: Path) -> None:
    # the host's busybox as a stand-in "emulator": it is bound in and runs the command
    rc, output = sandbox(rootfs, ["echo", "via runner"], runner=[str(BUSYBOX)])
    assert (rc, output.strip()) == (0, "via runner")
    assert sorted(os.listdir(rootfs)) == ["bin"]


@needs_bwrap
def test_log_appends_and_debug_echo(rootfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = rootfs.parent / "build.log"
    log.write_text("earlier\n")
    spec = SandboxSpec(rootfs, ["sh", "-c", "echo out; echo err >&2"], {"PATH": "/bin"})
    assert run(spec, log=log, debug=True) == 0
    assert log.read_text().splitlines() == ["earlier", "out", "err"]
    echoed = capsys.readouterr().err
    assert "--unshare-net" in echoed and "'echo out; echo err >&2'" in echoed


@pytest.fixture
def world_readable_tmp() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="rootseed-sandbox-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_IMPORTED = """\
import importlib, json, os, sys
importlib.import_module(sys.argv[1])
std = os.path.dirname(os.__file__) + os.sep
tops = {name.partition(".")[0] for name, m in list(sys.modules.items())
        if getattr(m, "__file__", None)
        and (not m.__file__.startswith(std) or "site-packages" in m.__file__)}
print(json.dumps(sorted(tops)))
"""


def importable_copy(module: str, lib: Path) -> None:
    """Copy ``module`` and every non-stdlib top-level package it imports into ``lib``.

    So a process of another user can import it from a world-readable place, wherever this
    checkout and its virtualenv live and whatever their permissions (a 0700 directory, as
    ``mktemp -d`` makes them, is fine).
    """
    import importlib.util
    import json

    r = subprocess.run([sys.executable, "-c", _IMPORTED, module], capture_output=True,
                       text=True, check=True, timeout=60)
    lib.mkdir()
    for top in json.loads(r.stdout):
        spec = importlib.util.find_spec(top)
        assert spec is not None and spec.origin is not None, top
        if spec.submodule_search_locations:
            shutil.copytree(next(iter(spec.submodule_search_locations)), lib / top,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(spec.origin, lib / Path(spec.origin).name)


def others_can_run(path: Path) -> bool:
    """World-executable, and every directory above it world-searchable."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def interpreter_for_others() -> Path | None:
    """A Python >= 3.11 that another user can run: the one behind this virtualenv, else the
    system's (this one may live in a private home, e.g. pyenv under /root)."""
    candidates = [os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
                  shutil.which("python3"), "/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in dict.fromkeys(c for c in candidates if c):
        path = Path(os.path.realpath(candidate))
        if not path.is_file() or not others_can_run(path):
            continue
        r = subprocess.run([str(path), "-I", "-c", "import sys; print(sys.version_info >= "
                            "(3, 11))"], capture_output=True, text=True, timeout=60)
        if r.stdout.strip() == "True":
            return path
    return None


@needs_bwrap
@pytest.mark.skipif(os.geteuid() != 0, reason="already running as non-root: covered above")
def test_works_as_non_root(world_readable_tmp: Path) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux)")
    python = interpreter_for_others()
    if python is None:
        pytest.skip("no Python >= 3.11 that other users can run (install python3)")
    # Not the checkout nor its venv: what uid 65534 needs is copied to a world-readable dir.
    importable_copy("rootseed.sandbox", world_readable_tmp / "lib")
    rootfs = make_rootfs(world_readable_tmp / "root")
    for p in [world_readable_tmp, *world_readable_tmp.rglob("*")]:
        os.lchown(p, 65534, 65534)
    code = ("import sys; sys.path.insert(0, sys.argv[3]); from pathlib import Path;"
            "from rootseed.sandbox import SandboxSpec, run;"
            "sys.exit(run(SandboxSpec(Path(sys.argv[1]), ['sh', '-c', 'id -u; touch /made'],"
            " {'PATH': '/bin'}), log=Path(sys.argv[2])))")
    r = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                        str(python), "-I", "-B", "-c", code, str(rootfs),
                        str(world_readable_tmp / "log"), str(world_readable_tmp / "lib")],
                       capture_output=True, text=True, timeout=60, env={"HOME": "/"},
                       cwd="/")
    assert r.returncode == 0, r.stderr
    assert (world_readable_tmp / "log").read_text().split() == ["0"]
    assert os.stat(rootfs / "made").st_uid == 65534
    assert sorted(os.listdir(rootfs)) == ["bin", "made"]


@needs_bwrap
def test_a_set_stop_event_kills_the_running_step(rootfs: Path) -> None:
    """A cancelled build does not wait for a running step: the sandbox is killed once
    ``stop`` is set (a step that would sleep for an hour ends within the test's bound),
    and none of its processes is left."""
    mark = marker()
    stop = threading.Event()
    caught: list[BaseException] = []

    def step() -> None:
        try:
            run(SandboxSpec(rootfs=rootfs, argv=["sleep", mark], env={"PATH": "/bin"}),
                log=rootfs.parent / "stop.log", stop=stop)
        except BaseException as e:
            caught.append(e)

    thread = threading.Thread(target=step, daemon=True)
    thread.start()
    try:
        wait_until("the step runs", lambda: "s" in alive({"s": mark}), thread.is_alive)
        stop.set()
        thread.join(WAIT)
        assert not thread.is_alive(), "the step ran on after stop was set"
    finally:
        end_all({"s": mark})  # a failing run leaves no sleeper behind
    [error] = caught
    assert isinstance(error, StepStopped) and error.kind is ErrorKind.CANCELLED
    assert "stop.log" in error.message  # words: names the log, for people
    assert alive({"s": mark}) == {}
    # not set: the step runs to its end as before
    rc, _ = sandbox(rootfs, ["true"])
    assert rc == 0
