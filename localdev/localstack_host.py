"""Run LocalStack on this host, without Docker: `python3 -m localdev.localstack_host start|stop|status`.

LocalStack runs in its own Python 3.13 venv under .localstack/, with Cutout's extension
(localdev/localstack_extension) installed into it, bound to 127.0.0.1 only, and all its state,
caches and logs under .localstack/. Its settings are the `environment:` block of localstack.yml
(the same file users with Docker run) plus the host-only settings below. Standard library only,
so any Python 3.11+ can run it; the e2e fixtures can call start() and stop() directly.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from localdev import REPO
from localdev.processes import HOST, alive, port_open, read_pid
from localdev.python import interpreter

STATE = REPO / ".localstack"
VENV = STATE / "venv"
VENV_PYTHON = VENV / "bin" / "python"
INSTALLED = VENV / "cutout-installed.json"
EXTENSION = REPO / "localdev" / "localstack_extension"
COMPOSE_FILE = REPO / "localstack.yml"
PID_FILE = STATE / "localstack.pid"
LOG_FILE = STATE / "localstack.log"
PLUX_CACHE = STATE / "cache" / "plux"

PORT = 4566
URL = f"http://{HOST}:{PORT}"
HEALTH_URL = f"{URL}/_localstack/health"
START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 30

# localstack-core 2026.3.0 is the last open-source runtime and needs Python 3.13 (whatever the
# project's Python is); the pins are the versions it was shown to start with.
LOCALSTACK_PYTHON = "3.13"
PACKAGES = [
    "localstack-core[runtime]==2026.3.0",
    "cbor2<6",
    "pyopenssl>=25.1,<26",
    "cryptography>=45.0.7,<47",
    "service-identity",
]


def host_settings() -> dict[str, str]:
    """What only the host needs: Docker users get these from the LocalStack image."""
    return {
        "GATEWAY_SERVER": "hypercorn",  # the default server ignores the host and binds 0.0.0.0
        "GATEWAY_LISTEN": f"{HOST}:{PORT}",
        "OVERRIDE_IN_DOCKER": "0",  # this machine looks like a container
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "FILESYSTEM_ROOT": str(STATE / "filesystem"),
        "TMPDIR": str(STATE / "tmp"),
        "CONFIG_DIR": str(STATE / "config"),
        "XDG_CACHE_HOME": str(STATE / "cache"),
        "LAMBDA_RUNTIME_EXECUTOR": "cutout",
        "PROVIDER_OVERRIDE_DYNAMODB": "moto",
        "PROVIDER_OVERRIDE_DYNAMODBSTREAMS": "moto",
        "CUTOUT_LAMBDA_PYTHON": os.environ.get("CUTOUT_LAMBDA_PYTHON") or str(REPO / ".venv" / "bin" / "python"),
        "CUTOUT_LAMBDA_WORKDIR": str(STATE / "lambda"),
    }


def log(message: str) -> None:
    print(f"localstack: {message}", file=sys.stderr, flush=True)


def extension_fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sorted(EXTENSION.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(EXTENSION)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _pip(*args: str) -> None:
    subprocess.run([str(VENV_PYTHON), "-m", "pip", "install", "--quiet", *args], check=True)


def ensure_venv() -> None:
    """Creates or updates LocalStack's venv; re-installs the extension whenever it changed."""
    if not VENV_PYTHON.exists():
        log(f"creating {VENV.relative_to(REPO)} (Python {LOCALSTACK_PYTHON})")
        subprocess.run([interpreter(LOCALSTACK_PYTHON), "-m", "venv", str(VENV)], check=True)
    installed = json.loads(INSTALLED.read_text()) if INSTALLED.exists() else {}
    wanted = {"packages": PACKAGES, "extension": extension_fingerprint()}
    if installed == wanted:
        return
    if installed.get("packages") != PACKAGES:
        log("installing LocalStack (a few minutes the first time)")
        _pip(*PACKAGES)
    log("installing the Cutout LocalStack extension")
    _pip("--no-deps", "--force-reinstall", str(EXTENSION))
    # plux caches the entry points it found: a stale cache hides changed plugins.
    shutil.rmtree(PLUX_CACHE, ignore_errors=True)
    INSTALLED.write_text(json.dumps(wanted))


_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def compose_environment() -> dict[str, str]:
    """The `environment:` block of localstack.yml, with ${VAR:-default} resolved as compose does."""
    script = (
        "import json, sys, yaml; "
        "service = yaml.safe_load(open(sys.argv[1]))['services']['localstack']; "
        "print(json.dumps(service.get('environment') or {}))"
    )
    output = subprocess.run(
        [str(VENV_PYTHON), "-c", script, str(COMPOSE_FILE)], check=True, capture_output=True, text=True
    ).stdout
    environment = json.loads(output)
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    resolved = {
        key: _VARIABLE.sub(lambda m: os.environ.get(m.group(1)) or m.group(2) or "", str(value))
        for key, value in environment.items()
    }
    return {key: value for key, value in resolved.items() if value}


def localstack_environment() -> dict[str, str]:
    # The caller's Python and AWS settings (a venv, credentials, endpoints) are not LocalStack's.
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    return {**inherited, **compose_environment(), **host_settings()}


def _read_pid() -> int | None:
    return read_pid(PID_FILE, b"localstack.runtime.main")


def healthy() -> bool:
    try:
        with urllib.request.urlopen(HEALTH_URL, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _log_tail(lines: int = 30) -> str:
    try:
        return "\n".join(LOG_FILE.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def _wait_healthy(pid: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not healthy():
        if not alive(pid):
            raise RuntimeError(f"LocalStack exited during startup; {LOG_FILE}:\n{_log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"LocalStack not healthy after {START_TIMEOUT_SECONDS} s; see {LOG_FILE}")
        time.sleep(0.3)


def start() -> str:
    """Starts LocalStack unless it is running already; returns its URL once it is healthy."""
    pid = _read_pid()
    if pid is None:
        if port_open(PORT):
            raise RuntimeError(f"{HOST}:{PORT} is taken by a process this runner did not start")
        ensure_venv()
        # Lambda runtimes of an earlier run are gone; so is what they left behind.
        shutil.rmtree(STATE / "lambda", ignore_errors=True)
        for folder in ("filesystem", "tmp", "config", "cache", "lambda"):
            (STATE / folder).mkdir(parents=True, exist_ok=True)
        with LOG_FILE.open("ab") as log_file:
            process = subprocess.Popen(
                [str(VENV_PYTHON), "-m", "localstack.runtime.main"],
                env=localstack_environment(),
                cwd=STATE,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() ends the Lambda runtimes too
            )
        pid = process.pid
        PID_FILE.write_text(str(pid))
        log(f"started (pid {pid}), logs in {LOG_FILE.relative_to(REPO)}")
    _wait_healthy(pid)
    return URL


def stop() -> None:
    """Stops LocalStack and everything it started; returns once the port is free."""
    pid = _read_pid()
    if pid is not None:
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while alive(pid, group=True) and time.monotonic() < deadline:
            time.sleep(0.2)
        if alive(pid, group=True):
            log("did not stop in time: killing it")
            _signal_group(pid, signal.SIGKILL)
            while alive(pid, group=True):
                time.sleep(0.1)
        log(f"stopped (pid {pid})")
    PID_FILE.unlink(missing_ok=True)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while port_open(PORT):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{HOST}:{PORT} is still taken after stopping LocalStack")
        time.sleep(0.2)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


def status() -> str:
    pid = _read_pid()
    if pid is None:
        return "stopped"
    return f"running (pid {pid}) at {URL}" if healthy() else f"starting or unhealthy (pid {pid})"


def main(argv: list[str]) -> int:
    commands = {"start": lambda: print(start()), "stop": stop, "status": lambda: print(status())}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python3 -m localdev.localstack_host start|stop|status", file=sys.stderr)
        return 2
    try:
        commands[argv[0]]()
    except (RuntimeError, subprocess.CalledProcessError) as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
