"""Lambda runtime executor: each execution environment is a Python process on 127.0.0.1.

LocalStack's own executor needs Docker. This one runs `lambda_bootstrap.py` with the interpreter
named by CUTOUT_LAMBDA_PYTHON (the project's venv, whose Python is the functions' runtime, which
it checks), with the function's code and layers laid out on the module path as Lambda would
(/var/task first, then /opt/python of the layers).
The bootstrap speaks LocalStack's executor protocol (see executor_endpoint.py), so invocation,
logs and errors flow through LocalStack exactly as with the Docker executor.
"""

import functools
import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from concurrent.futures import CancelledError, InvalidStateError
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    ShutdownDuringStartup,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
BOOTSTRAP = Path(__file__).with_name("lambda_bootstrap.py")
PYTHON_ENV = "CUTOUT_LAMBDA_PYTHON"
WORKDIR_ENV = "CUTOUT_LAMBDA_WORKDIR"
STOP_GRACE_SECONDS = 2


class CutoutExecutorPlugin(RuntimeExecutorPlugin):
    name = "cutout"

    def load(self, *args, **kwargs):
        return CutoutRuntimeExecutor


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _lambda_python() -> str:
    python = os.environ.get(PYTHON_ENV)
    if not python or not Path(python).is_file():
        raise LambdaRuntimeException(f"{PYTHON_ENV} must name the Lambda Python interpreter, got {python!r}")
    return python


@functools.cache
def _runtime_of(python: str) -> str:
    """The Lambda runtime name of an interpreter, e.g. "python3.13"."""
    version = subprocess.run(
        [python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"python{version}"


def _python_path(function_version: FunctionVersion) -> list[str]:
    """Lambda runs /var/task first, then the merged /opt of the layers (later layers win)."""
    runtime = function_version.config.runtime
    code = function_version.config.code.get_unzipped_code_location()
    layers = [layer.code.get_unzipped_code_location() for layer in function_version.config.layers]
    layer_paths = (f"python/lib/{runtime}/site-packages", "python")
    return [str(code)] + [
        str(layer / sub) for layer in reversed(layers) for sub in layer_paths if (layer / sub).is_dir()
    ]


class CutoutRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id, function_version)
        self.executor_endpoint = ExecutorEndpoint(id, container_address=HOST, container_port=None)
        self.process: subprocess.Popen | None = None
        self.python = ""
        self.env: dict[str, str] = {}
        self.workdir = Path(os.environ.get(WORKDIR_ENV) or config.dirs.tmp) / id
        self.log_file = self.workdir / "runtime.log"

    def start(self, env_vars: dict[str, str]) -> None:
        self.python = _lambda_python()
        runtime = self.function_version.config.runtime
        if _runtime_of(self.python) != runtime:
            # Tests must run the Python that Lambda runs: a mismatch would hide version-only breaks.
            raise LambdaRuntimeException(
                f"{self.function_version.qualified_arn}: runtime {runtime}, but {PYTHON_ENV} is "
                f"{_runtime_of(self.python)} ({self.python})"
            )
        home = self.workdir / "home"
        tmp = self.workdir / "tmp"
        home.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(exist_ok=True)
        code_dir = self.function_version.config.code.get_unzipped_code_location()
        self.env = {
            **{key: str(value) for key, value in env_vars.items()},
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "LAMBDA_TASK_ROOT": str(code_dir),
            "CUTOUT_LAMBDA_PATH": os.pathsep.join(_python_path(self.function_version)),
        }
        self._spawn()

    def _spawn(self) -> None:
        port = _free_port()
        self.executor_endpoint.container_port = port
        self.executor_endpoint.start()
        with self.log_file.open("ab") as log:
            # The child stays in LocalStack's process group so stopping LocalStack stops it too.
            self.process = subprocess.Popen(
                [self.python, "-I", str(BOOTSTRAP)],
                env={**self.env, "CUTOUT_LAMBDA_PORT": str(port)},
                cwd=self.env["LAMBDA_TASK_ROOT"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        LOG.debug("Started Lambda runtime %s (pid %s) on %s:%s", self.id, self.process.pid, HOST, port)
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        """Like ExecutorEndpoint.wait_for_startup, but a runtime that dies before it reports fails at once."""
        while True:
            try:
                self.executor_endpoint.startup_future.result(timeout=0.2)
                return
            except TimeoutError:
                if self.process.poll() is not None:
                    raise LambdaRuntimeException(
                        f"Lambda runtime exited with status {self.process.returncode} during startup, "
                        f"see {self.log_file}"
                    ) from None
            except CancelledError as e:
                raise ShutdownDuringStartup("Runtime stopped during startup") from e

    def _kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self._kill()
        # Like Lambda's /tmp, the environment's files go with it; its log stays for debugging.
        for folder in ("home", "tmp"):
            shutil.rmtree(self.workdir / folder, ignore_errors=True)
        try:
            self.executor_endpoint.shutdown()
        except Exception as e:
            LOG.debug("Error while stopping executor endpoint %s: %s", self.id, e)

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{HOST}:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        # Like Lambda after a timeout or crash, the next invocation gets a fresh runtime.
        if self.process.poll() is not None:
            self._spawn()
        timeout = float(self.function_version.config.timeout)
        finished = threading.Event()
        watchdog = threading.Thread(
            target=self._watch,
            args=(payload["invoke-id"], time.monotonic() + timeout, timeout, finished),
            daemon=True,
        )
        watchdog.start()
        try:
            return self.executor_endpoint.invoke(payload)
        finally:
            finished.set()

    def _watch(self, request_id: str, deadline: float, timeout: float, finished: threading.Event) -> None:
        """Ends an invocation whose runtime overran the function timeout or died."""
        while not finished.wait(0.1):
            if self.process.poll() is not None:
                message = f"RequestId: {request_id} Error: Runtime exited with status {self.process.returncode}"
                error_type = "Runtime.ExitError"
            elif time.monotonic() > deadline:
                self._kill()
                message = f"RequestId: {request_id} Task timed out after {timeout:.2f} seconds"
                error_type = "Sandbox.Timedout"
            else:
                continue
            self._fail_invocation(request_id, message, error_type)
            return

    def _fail_invocation(self, request_id: str, message: str, error_type: str) -> None:
        future = self.executor_endpoint.invocation_future
        if future is None or future.done():
            return
        body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
        try:
            future.set_result(InvocationResult(request_id, body, is_error=True, logs=message + "\n"))
        except InvalidStateError:
            pass  # the runtime answered in the meantime

    def get_logs(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.package_type != PackageType.Zip:
            message = (
                f"{function_version.qualified_arn}: container-image functions are not supported by "
                "the Cutout LocalStack executor (no Docker here); deploy the handler as a zip function"
            )
            LOG.error(message)
            raise LambdaRuntimeException(message)
        runtime = function_version.config.runtime or ""
        if not runtime.startswith("python"):
            message = f"{function_version.qualified_arn}: runtime {runtime} is not supported, only python"
            LOG.error(message)
            raise LambdaRuntimeException(message)
        function_version.config.code.prepare_for_execution()
        for layer in function_version.config.layers:
            layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # the unzipped code belongs to LocalStack, which removes it with the version

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            _lambda_python()
        except LambdaRuntimeException as e:
            LOG.error("%s", e)
            return False
        return True
