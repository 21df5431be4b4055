"""The servers localdev starts: found again by PID file, waited for by port, stopped by PID."""

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

HOST = "127.0.0.1"


def read_pid(pid_file: Path, command_marker: bytes) -> int | None:
    """The PID in pid_file if that process is alive and its command line holds command_marker: a
    stale file whose PID now belongs to another program is not ours to signal."""
    try:
        pid = int(pid_file.read_text())
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ValueError):
        return None
    return pid if command_marker in command_line else None


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(poll_s)


def alive(pid: int, *, group: bool = False) -> bool:
    """Whether the process (or, with group, any process of its group) still runs. A child of the
    caller that exited (e.g. started by a test session) is reaped first, so it does not count."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        (os.killpg if group else os.kill)(pid, 0)
    except ProcessLookupError:
        return False
    return True
