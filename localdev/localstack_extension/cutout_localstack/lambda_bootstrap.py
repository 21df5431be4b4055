"""The Lambda runtime of one execution environment, run by lambda_executor with the function's Python.

Standard library only: it runs in the project's venv (the functions' runtime), not in LocalStack's. It imports
the handler once (init), reports ready, then serves invocations one at a time, as Lambda does:
LocalStack POSTs {"invoke-id", "invoked-function-arn", "payload", "trace-id"} to /invoke and this
process posts the logs and the result (or error) back to LOCALSTACK_RUNTIME_ENDPOINT.
"""

import importlib
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RUNTIME_ENDPOINT = os.environ["LOCALSTACK_RUNTIME_ENDPOINT"]
RUNTIME_ID = os.environ["LOCALSTACK_RUNTIME_ID"]
HANDLER = os.environ["_HANDLER"]
PORT = int(os.environ["CUTOUT_LAMBDA_PORT"])
TIMEOUT_SECONDS = float(os.environ["AWS_LAMBDA_FUNCTION_TIMEOUT"])
PARENT_CHECK_SECONDS = 1.0

# The runtime's own HTTP calls go straight to LocalStack, whatever proxy the function configures.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(path: str, body: bytes) -> None:
    request = urllib.request.Request(f"{RUNTIME_ENDPOINT}{path}", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with _opener.open(request, timeout=30):
        pass


def error_body(error: BaseException, error_type: str | None = None) -> dict:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        # The handler's frames only, as Lambda shows them: not this runtime's.
        "stackTrace": traceback.format_list(
            [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename != __file__]
        ),
    }


class CapturingStream:
    """Writes through to the real stream and, during an invocation, into that invocation's log."""

    def __init__(self, stream):
        self._stream = stream
        self.capture: list[str] | None = None

    def write(self, text: str) -> int:
        if self.capture is not None:
            self.capture.append(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


class LambdaContext:
    def __init__(self, request_id: str, invoked_function_arn: str):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + TIMEOUT_SECONDS

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InitError(Exception):
    def __init__(self, message: str, error_type: str):
        super().__init__(message)
        self.error_type = error_type


def load_handler():
    module_name, _, function_name = HANDLER.replace("/", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise InitError(f"Unable to import module '{module_name}': {e}", "Runtime.ImportModuleError") from e
    try:
        return getattr(module, function_name)
    except AttributeError as e:
        raise InitError(
            f"Handler '{function_name}' missing on module '{module_name}'", "Runtime.HandlerNotFound"
        ) from e


def invoke(handler, invocation: dict, streams: list[CapturingStream]) -> None:
    request_id = invocation["invoke-id"]
    os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id") or ""
    log: list[str] = []
    for stream in streams:
        stream.capture = log
    print(f"START RequestId: {request_id}")
    started = time.monotonic()
    try:
        event = json.loads(invocation["payload"] or "null")
        result = handler(event, LambdaContext(request_id, invocation["invoked-function-arn"]))
        try:
            outcome, body = "response", json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            outcome, body = "error", json.dumps(error_body(e, "Runtime.MarshalError")).encode()
    except Exception as e:
        traceback.print_exc()
        outcome, body = "error", json.dumps(error_body(e)).encode()
    finally:
        print(f"END RequestId: {request_id}")
        print(f"REPORT RequestId: {request_id}\tDuration: {(time.monotonic() - started) * 1000:.2f} ms")
        for stream in streams:
            stream.flush()
            stream.capture = None
    post(f"/invocations/{request_id}/logs", json.dumps({"logs": "".join(log)}).encode())
    post(f"/invocations/{request_id}/{outcome}", body)


def serve_invocations(invocations: queue.Queue) -> ThreadingHTTPServer:
    class InvokeRequestHandler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            invocation = json.loads(self.rfile.read(length))
            self.send_response(200)
            self.end_headers()
            invocations.put(invocation)

        def log_message(self, format, *args):
            pass  # one line per invocation is printed by invoke() already

    server = ThreadingHTTPServer(("127.0.0.1", PORT), InvokeRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def exit_with_parent() -> None:
    """LocalStack may be killed without stopping its runtimes: don't outlive it."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def main() -> None:
    threading.Thread(target=exit_with_parent, daemon=True).start()
    # Lambda's path: the function code first, then the layers (/opt), then the runtime's packages.
    sys.path[:0] = [path for path in os.environ.get("CUTOUT_LAMBDA_PATH", "").split(os.pathsep) if path]
    streams = [CapturingStream(sys.stdout), CapturingStream(sys.stderr)]
    sys.stdout, sys.stderr = streams
    # Lambda's Python runtime gives the root logger a handler, so records reach the log.
    logging.basicConfig(format="[%(levelname)s]\t%(asctime)s\t%(name)s\t%(message)s", stream=sys.stderr)
    try:
        handler = load_handler()
    except InitError as e:
        traceback.print_exc()
        post(f"/status/{RUNTIME_ID}/error", json.dumps(error_body(e, e.error_type)).encode())
        sys.exit(1)
    invocations: queue.Queue = queue.Queue()
    serve_invocations(invocations)
    post(f"/status/{RUNTIME_ID}/ready", b"{}")
    while True:
        invoke(handler, invocations.get(), streams)


if __name__ == "__main__":
    main()
