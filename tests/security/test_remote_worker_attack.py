"""Attack: a remote step that tries to reach the host's network.

``buildbox-run`` gives a step the host's network when the platform asks for ``network=on``
(the Action's, or the Command's when the Action has none). BuildGrid schedules on the
Action's platform only, so an Action with an empty platform and a Command asking for the
network reached a worker, and ``buildbox-run`` ran it in the host's network namespace
(seen: eth0 in /proc/net/dev). The bot now refuses every platform property it does not
grant, in the Action and the Command; the scheduler refuses one in the Action.
The host side: a TCP listener on the host's 127.0.0.1 that the step tries to reach, and
canary files; neither may see anything.
"""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import pytest

from hostile import Canaries
from remotecluster import BUSYBOX, Cluster
from rootseed.remote.client import ActionFailed, Remote
from rootseed.remote.merkle import build_tree
from rootseed.remote.protos import code_pb2, re_pb2


class Listener:
    """A TCP listener on the host's 127.0.0.1 that records whatever reaches it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.got.append(conn.recv(100) or b"(connected)")
                except OSError:
                    self.got.append(b"(connected)")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


def _run(remote: Remote, tmp: Path, script: str, action_props: dict[str, str],
         command_props: dict[str, str]) -> re_pb2.ExecuteResponse:
    root = tmp / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    cmd = re_pb2.Command(arguments=["/bin/busybox", "sh", "-c", script], output_paths=["out"])
    action = re_pb2.Action()
    for name, value in sorted(command_props.items()):
        cmd.platform.properties.add(name=name, value=value)
    for name, value in sorted(action_props.items()):
        action.platform.properties.add(name=name, value=value)
    return remote.execute(action, cmd, build_tree(root), skip_cache=True)


X86_64 = {"ISA": "x86-64", "OSFamily": "linux"}
ASKS = {"network": "on"}


@pytest.mark.parametrize("action_props, command_props", [
    ({}, ASKS),  # the scheduler sees no platform; buildbox-run reads the Command's
    (X86_64, {**X86_64, **ASKS}),
    ({**X86_64, **ASKS}, {**X86_64, **ASKS}),  # refused by the scheduler already
    (X86_64, X86_64),  # no request: the sandbox's own rule
], ids=["command-only", "command", "action", "plain"])
def test_a_remote_step_cannot_reach_the_hosts_network(
        remote_cluster: Cluster, tmp_path: Path, action_props: dict[str, str],
        command_props: dict[str, str]) -> None:
    canaries = Canaries(tmp_path)
    listener = Listener()
    script = (f"echo pwned | /bin/busybox nc -w 2 127.0.0.1 {listener.port}; "
              f"cat /proc/net/dev; cat {canaries.secret}; echo pwned > {canaries.public}")
    try:
        with Remote(remote_cluster.endpoint) as remote:
            if "network" in command_props:
                with pytest.raises(ActionFailed) as e:
                    _run(remote, tmp_path, script, action_props, command_props)
                assert e.value.code == code_pb2.FAILED_PRECONDITION
                assert "network" in e.value.message  # words: names the property
            else:
                response = _run(remote, tmp_path, script, action_props, command_props)
                seen = remote.read(response.result.stdout_digest).decode()
                interfaces = {line.split(":")[0].strip() for line in seen.splitlines()[2:]
                              if ":" in line}
                assert interfaces <= {"lo"}
    finally:
        listener.close()
    assert listener.got == []
    canaries.assert_unchanged()
