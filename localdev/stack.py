"""`make up` / `make down`: the whole Cutout stack on this host, on LocalStack, without Docker.

up:   LocalStack (localdev.localstack_host) → the model → the pinned CDK CLI → `cdklocal deploy` of
      the real stack (inference packaged as a zip) → health check → the API key "local" in the first
      usage plan (with api_auth api_key, cdk.json's default) → the demo page on 127.0.0.1 →
      .local/stack.json {"api_url", "web_url", "bucket", "table", "batch_table", "idempotency_table",
      "stats_table", "queue_url", "dead_letter_queue_url", "webhook_queue_url", "deadline_queue_url",
      "notification_dead_letter_queue_url", "event_bus", "webhook_secret", "api_key", "api_key_id"}.
      Safe to re-run: each step skips what is done (the key of stack.json is kept while it exists).
down: stops the demo page server and LocalStack, by their PIDs, and waits for their ports.

  .venv/bin/python -m localdev.stack up [-c key=value ...]   (CDK context overrides)
  .venv/bin/python -m localdev.stack down
  .venv/bin/python -m localdev.stack cdk ARGS...            (the pinned CDK CLI, e.g. synth)
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

from localdev import LOCAL, REPO, localstack_host
from localdev.processes import HOST, port_open, read_pid, wait_for

STACK_FILE = LOCAL / "stack.json"
OUTPUTS_FILE = LOCAL / "cdk-outputs.json"
WEB_DIR = REPO / "web"
WEB_PID_FILE = LOCAL / "web.pid"
WEB_PORT = 8765
CDKLOCAL = REPO / "node_modules" / ".bin" / "cdklocal"
CDK = REPO / "node_modules" / ".bin" / "cdk"
CLI_INSTALLED = REPO / "node_modules" / ".installed"
PACKAGE_LOCK = REPO / "package-lock.json"
STACK_NAME = "Cutout"
CDK_JSON = REPO / "cdk.json"
ENDPOINT = "http://127.0.0.1:4566"
REGION = "us-east-1"
LOCAL_KEY_NAME = "local"
# LocalStack's free build runs no container images and no Node.js custom resources, and the
# executor runs every handler with the project's venv, so nothing needs bundling.
LOCAL_CONTEXT = {
    "inference_packaging": "zip",
    "bundle_dependencies": "false",
    # LocalStack runs the functions on this x86 host: arm64 code would not run here.
    "architecture": "x86_64",
    "auto_delete_objects": "false",
    "s3_addressing_style": "path",
    "tracing": "false",
    # Tests receive webhooks on 127.0.0.1 over http, and see a failed delivery retried within seconds.
    "webhook_allow_private": "true",
    "webhook_first_retry_s": "1",
}


def log(message: str) -> None:
    print(f"up: {message}", file=sys.stderr, flush=True)


def run(command: list, **kwargs) -> None:
    subprocess.run([str(part) for part in command], cwd=REPO, check=True, **kwargs)


def cli_environment() -> dict:
    """Caches of npm, jsii and the CDK stay under .local/."""
    return {
        **os.environ,
        "HOME": str(LOCAL / "home"),
        "CDK_HOME": str(LOCAL / "cdk"),
        "XDG_CACHE_HOME": str(LOCAL / "cache"),
        "npm_config_cache": str(LOCAL / "npm-cache"),
        "CDK_DISABLE_VERSION_CHECK": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def deploy_environment() -> dict:
    """cdklocal talks to 127.0.0.1: *.localhost.localstack.cloud does not resolve offline."""
    return {
        **cli_environment(),
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_ENDPOINT_URL_S3": ENDPOINT,
        "AWS_S3_FORCE_PATH_STYLE": "1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "CDK_DEFAULT_ACCOUNT": "000000000000",
        "CDK_DEFAULT_REGION": "us-east-1",
    }


def ensure_cli() -> None:
    """The pinned CDK CLI (cdk, cdklocal) in node_modules/, installed again when the lock file changes."""
    if CLI_INSTALLED.exists() and CLI_INSTALLED.stat().st_mtime >= PACKAGE_LOCK.stat().st_mtime:
        return
    LOCAL.mkdir(exist_ok=True)
    log("installing the pinned CDK CLI (npm ci)")
    run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], env=cli_environment())
    CLI_INSTALLED.touch()


def deploy(context: dict) -> dict:
    ensure_cli()
    environment = deploy_environment()
    context_args = [arg for key, value in {**LOCAL_CONTEXT, **context}.items() for arg in ("-c", f"{key}={value}")]
    log("bootstrapping and deploying the stack with cdklocal")
    run(
        [CDKLOCAL, "bootstrap", "aws://000000000000/us-east-1", "--output", LOCAL / "cdk.out", *context_args],
        env=environment,
        stdout=subprocess.DEVNULL,
    )
    run(
        [
            CDKLOCAL,
            "deploy",
            STACK_NAME,
            "--require-approval",
            "never",
            "--outputs-file",
            OUTPUTS_FILE,
            "--output",
            LOCAL / "cdk.out",
            *context_args,
        ],
        env=environment,
    )
    return json.loads(OUTPUTS_FILE.read_text())[STACK_NAME]


def local_api_url(deployed_url: str) -> str:
    """LocalStack's path form of a REST API URL, which needs no wildcard DNS."""
    match = re.match(r"https?://([a-z0-9]+)\.execute-api\.[^/]+/([^/]+)/?", deployed_url)
    if not match:
        raise RuntimeError(f"unexpected API URL from the stack: {deployed_url}")
    api_id, stage = match.groups()
    return f"{ENDPOINT}/restapis/{api_id}/{stage}/_user_request_"


def local_queue_url(deployed_url: str) -> str:
    """The queue on 127.0.0.1: LocalStack's own host names for it do not resolve offline."""
    account, name = deployed_url.rstrip("/").split("/")[-2:]
    return f"{ENDPOINT}/{account}/{name}"


def web_server_pid() -> int | None:
    return read_pid(WEB_PID_FILE, b"http.server")


def start_web(api_url: str, api_key: str | None) -> str:
    """Serve web/ with config.js pointing it at this API, with the local key (config.js is
    generated, not tracked; the key is the local stack's own, worthless anywhere else)."""
    config = f"window.CUTOUT_API_URL = {json.dumps(api_url)};\n"
    if api_key:
        config += f"window.CUTOUT_API_KEY = {json.dumps(api_key)};\n"
    (WEB_DIR / "config.js").write_text(config)
    url = f"http://{HOST}:{WEB_PORT}/"
    if web_server_pid():
        return url
    if port_open(WEB_PORT):
        raise RuntimeError(f"port {WEB_PORT} is taken by another program; free it and run make up again")
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(WEB_PORT), "--bind", HOST, "--directory", str(WEB_DIR)],
        stdout=subprocess.DEVNULL,
        stderr=(LOCAL / "web.log").open("ab"),
        start_new_session=True,
    )
    WEB_PID_FILE.write_text(str(server.pid))
    wait_for(lambda: port_open(WEB_PORT), "the demo page server")
    return url


def stop_web() -> None:
    pid = web_server_pid()
    if pid:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not port_open(WEB_PORT), "the demo page server to stop")
    WEB_PID_FILE.unlink(missing_ok=True)


def api_healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/v1/health", timeout=10) as response:
            return response.status == 200
    except OSError:
        return False


def deployed_context(context: dict) -> dict:
    """cdk.json's context with the command line's overrides, as the deploy read it."""
    return {**json.loads(CDK_JSON.read_text())["context"], **LOCAL_CONTEXT, **context}


def first_usage_plan(deployed: dict) -> str:
    """The plan `make up` gives its key: the first of "usage_plans" (infra.settings checked them at synth)."""
    plans = deployed["usage_plans"]
    return next(iter(json.loads(plans) if isinstance(plans, str) else plans))


def local_api_key(api_url: str, plan: str, recorded: dict) -> tuple[str, str]:
    """(id, value) of the local stack's key in that plan: the one stack.json records while the API
    still has it there, else a new key. cutout_cli is the venv's, imported only here: `make down`
    runs this module with any python3."""
    from cutout_cli import keys

    client = local_client("apigateway")
    rest_api_id = keys.rest_api_id_of(api_url)
    key_id, value = recorded.get("api_key_id"), recorded.get("api_key")
    if key_id and value and any(k.id == key_id and k.plan == plan for k in keys.list_keys(client, rest_api_id)):
        return key_id, value
    log(f"creating the API key {LOCAL_KEY_NAME!r} in the usage plan {plan!r}")
    created = keys.create_key(client, rest_api_id, plan, name=LOCAL_KEY_NAME)
    return created.id, created.value


def local_secret(secret_arn: str) -> str:
    """The webhook secret's value, which a local receiver verifies signatures with."""
    return local_client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]


def local_client(service: str):
    """A client of LocalStack's. boto3 is the venv's, imported only here: `make down` runs this
    module with any python3."""
    import boto3

    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test"
    )


def recorded_stack() -> dict:
    try:
        return json.loads(STACK_FILE.read_text())
    except (OSError, ValueError):
        return {}


def up(context: dict, serve_web: bool = True) -> dict:
    LOCAL.mkdir(exist_ok=True)
    localstack_host.start()
    run([sys.executable, "-m", "localdev.fetch_model"])
    outputs = deploy(context)
    api_url = local_api_url(outputs["ApiUrl"])
    wait_for(lambda: api_healthy(api_url), "GET /v1/health", timeout_s=120)
    deployed = deployed_context(context)
    key_id = api_key = None
    if deployed["api_auth"] == "api_key":
        key_id, api_key = local_api_key(api_url, first_usage_plan(deployed), recorded_stack())
    stack = {
        "api_url": api_url,
        "web_url": start_web(api_url, api_key) if serve_web else None,
        "bucket": outputs["BucketName"],
        "table": outputs["TableName"],
        "batch_table": outputs["BatchTableName"],
        "idempotency_table": outputs["IdempotencyTableName"],
        "stats_table": outputs["StatsTableName"],
        "queue_url": local_queue_url(outputs["QueueUrl"]),
        "dead_letter_queue_url": local_queue_url(outputs["DeadLetterQueueUrl"]),
        "webhook_queue_url": local_queue_url(outputs["WebhookQueueUrl"]),
        "deadline_queue_url": local_queue_url(outputs["DeadlineQueueUrl"]),
        "notification_dead_letter_queue_url": local_queue_url(outputs["NotificationDeadLetterQueueUrl"]),
        "event_bus": outputs["EventBusName"],
        "webhook_secret": local_secret(outputs["WebhookSecretArn"]),
        # null with api_auth none: the API takes no key.
        "api_key": api_key,
        "api_key_id": key_id,
    }
    STACK_FILE.write_text(json.dumps(stack, indent=2) + "\n")
    return stack


def down() -> None:
    stop_web()
    localstack_host.stop()
    STACK_FILE.unlink(missing_ok=True)


def context_item(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not (key and separator):
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up_command = commands.add_parser("up", help="deploy the stack to LocalStack and serve the demo page")
    up_command.add_argument("-c", "--context", action="append", default=[], type=context_item, metavar="KEY=VALUE")
    commands.add_parser("down", help="stop what up started")
    cdk_command = commands.add_parser("cdk", help="run the pinned CDK CLI with its caches under .local/")
    cdk_command.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command == "cdk":
        ensure_cli()
        return subprocess.run([str(CDK), *args.arguments], cwd=REPO, env=cli_environment()).returncode
    if args.command == "down":
        down()
        print("Cutout's local stack is stopped.")
        return 0
    stack = up(dict(args.context))
    print(f"Cutout is up.\n  API:       {stack['api_url']}\n  Demo page: {stack['web_url']}")
    if stack["api_key"]:
        print(f"  API key:   {stack['api_key']} (x-api-key; also in {STACK_FILE.relative_to(REPO)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
