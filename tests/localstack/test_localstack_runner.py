"""The host runner: settings from localstack.yml, 127.0.0.1 only, idempotent start, clean stop."""

import os
import re
import subprocess

import requests

from localdev.processes import port_open


def listening_sockets(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets that these processes listen on."""
    output = subprocess.run(["ss", "-ltnpH"], check=True, capture_output=True, text=True).stdout
    addresses = []
    for line in output.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            addresses.append(line.split()[3])
    return addresses


def process_group(pgid: int) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    pids.add(int(entry))
            except ProcessLookupError:
                pass
    return pids


def localstack_pid(localstack_runner) -> int:
    return int(localstack_runner.PID_FILE.read_text())


def test_settings_come_from_the_compose_file_plus_host_only_ones(localstack_runner, localstack):
    environment = localstack_runner.localstack_environment()

    assert environment["S3_SKIP_SIGNATURE_VALIDATION"] == "0"
    assert environment["GATEWAY_LISTEN"] == "127.0.0.1:4566"
    assert environment["LAMBDA_RUNTIME_EXECUTOR"] == "cutout"
    assert "LOCALSTACK_AUTH_TOKEN" not in environment or os.environ.get("LOCALSTACK_AUTH_TOKEN")
    assert not any(key.startswith("AWS_") for key in environment)


def test_localstack_and_its_lambda_runtimes_listen_on_127_0_0_1_only(localstack_runner, localstack, aws):
    from tests.support.localstack_calls import create_function, invoke

    # A warm function keeps its runtime, a process of LocalStack's group, listening.
    invoke(aws, create_function(aws, {"handler.py": "def handler(event, context):\n    return 1\n"}), {})
    pids = process_group(localstack_pid(localstack_runner))

    addresses = listening_sockets(pids)

    assert "127.0.0.1:4566" in addresses
    assert len(addresses) >= 2, "the Lambda runtime should be listening too"
    assert all(address.startswith("127.0.0.1:") for address in addresses), addresses


def test_start_when_running_is_a_no_op(localstack_runner, localstack):
    pid = localstack_pid(localstack_runner)

    assert localstack_runner.start() == localstack
    assert localstack_pid(localstack_runner) == pid
    assert localstack_runner.status().startswith("running")


def test_stop_ends_every_process_and_frees_the_port_then_start_again(localstack_runner, localstack, aws):
    pid = localstack_pid(localstack_runner)

    localstack_runner.stop()

    assert localstack_runner.status() == "stopped"
    assert process_group(pid) == set()
    assert not port_open(localstack_runner.PORT)

    assert localstack_runner.start() == localstack
    assert requests.get(f"{localstack}/_localstack/health", timeout=5).ok
