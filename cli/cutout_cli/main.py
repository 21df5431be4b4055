"""`cutout remove IMG...`, `cutout models`, `cutout status ID`, `cutout cancel JOB_ID`,
`cutout keys create|list|revoke`.

Exit codes: 0 every image or call succeeded, 1 some failed (each reason is printed), 2 usage errors.
"""

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
from botocore.exceptions import BotoCoreError, ClientError

from cutout_cli import keys, operator
from cutout_cli.api import FORBIDDEN, ApiError, CutoutApi, JobTimedOut, RetryListener, job_body, refuse_oversized
from cutout_cli.config import API_KEY_VARIABLE, API_URL_VARIABLE, NoApiUrl, resolve_api_key, resolve_api_url
from cutout_cli.images import ACCEPTED_TYPES_TEXT, OUTPUT_FORMATS, cutout_path, sniff_file
from cutout_cli.progress import ProgressBoard

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_TIMEOUT_S = 600


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def output_folder(text: str) -> Path:
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cutout", description="Remove photo backgrounds with a Cutout deployment.")
    # Every command names its deployment; those that call the API also send its key.
    deployment = argparse.ArgumentParser(add_help=False)
    deployment.add_argument(
        "--api", help=f"the API base URL (default: ${API_URL_VARIABLE}, else api_url in .local/stack.json)"
    )
    caller = argparse.ArgumentParser(add_help=False, parents=[deployment])
    caller.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the API key to send as x-api-key (default: ${API_KEY_VARIABLE}, else api_key in .local/stack.json"
        " when --api is that stack's)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    remove = commands.add_parser("remove", parents=[caller], help="cut out one or more images")
    remove.add_argument(
        "images",
        nargs="+",
        type=Path,
        metavar="IMG",
        help="JPEG, PNG or WebP files (several are created as batches of the API's max_batch_jobs)",
    )
    remove.add_argument(
        "-o",
        "--output-dir",
        type=output_folder,
        metavar="DIR",
        help="where to write <stem>-cutout.<ext> (default: next to each input)",
    )
    remove.add_argument(
        "--format",
        choices=OUTPUT_FORMATS,
        default="png",
        help="png or webp with transparency, jpeg over a background (white by default), or the mask alone"
        " (default: png)",
    )
    remove.add_argument(
        "--bg-color",
        metavar="#RRGGBB[AA]",
        help="composite the cutout over this colour (with alpha below FF, png and webp keep some transparency)",
    )
    remove.add_argument("--crop", action="store_true", help="crop the result to the subject")
    remove.add_argument(
        "--crop-margin", metavar="<n>px|<n>%", help="with --crop: room around the subject, e.g. 20px or 5%%"
    )
    remove.add_argument("--max-side", type=int, metavar="PIXELS", help="the result's longest side at most this")
    remove.add_argument(
        "--model",
        metavar="NAME",
        help="the model to run, one of those `cutout models` lists (default: the deployment's default)",
    )
    remove.add_argument(
        "--concurrency", type=positive_int, default=4, metavar="N", help="images in flight at once (default: 4)"
    )
    remove.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up on images not done this long after the start (default: {DEFAULT_TIMEOUT_S})",
    )
    remove.set_defaults(run=run_remove)

    models = commands.add_parser(
        "models", parents=[caller], help="list the models a job may choose, the default marked"
    )
    models.add_argument("--json", action="store_true", help="print the models as JSON, as the API lists them")
    models.set_defaults(run=run_models)

    status = commands.add_parser("status", parents=[caller], help="show a job, or a batch and each of its jobs")
    status.add_argument("id", metavar="ID", help="a job id, or the batch id of a `cutout remove` of several images")
    status.add_argument("--json", action="store_true", help="print the job or batch as the API returns it")
    status.set_defaults(run=run_status)

    cancel = commands.add_parser("cancel", parents=[caller], help="cancel a job that has not started processing")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.set_defaults(run=run_cancel)

    api_keys = commands.add_parser(
        "keys", help="create, list and revoke the deployment's API keys (with AWS credentials, not an API key)"
    )
    key_commands = api_keys.add_subparsers(dest="keys_command", required=True, metavar="KEYS_COMMAND")
    create = key_commands.add_parser(
        "create", parents=[deployment], help="create a key in a usage plan; its value is printed this once"
    )
    create.add_argument("--plan", required=True, metavar="NAME", help="a usage plan of cdk.json usage_plans")
    create.add_argument("--name", metavar="LABEL", help="a label to tell the key by, e.g. who it is for")
    create.set_defaults(run=run_keys_create)
    listing = key_commands.add_parser("list", parents=[deployment], help="list the keys in the API's usage plans")
    listing.set_defaults(run=run_keys_list)
    revoke = key_commands.add_parser("revoke", parents=[deployment], help="delete a key: it is refused from then on")
    revoke.add_argument("key_id", metavar="ID", help="the key's id, as `cutout keys list` shows it")
    revoke.set_defaults(run=run_keys_revoke)

    stats = commands.add_parser(
        "stats",
        parents=[deployment],
        help="queue depths and job counts of the last hour and day (with AWS credentials, not an API key)",
    )
    stats.add_argument("--json", action="store_true", help="print the figures as JSON (as GET /v1/stats answers)")
    stats.set_defaults(run=run_stats)
    return parser


@dataclass(frozen=True)
class Deployment:
    """The API a command talks to and the key it sends (None: none configured)."""

    api_url: str
    api_key: str | None = None

    def client(
        self, deadline: float | None = None, on_retry: RetryListener | None = None, known_limits: dict | None = None
    ) -> CutoutApi:
        return CutoutApi(self.api_url, deadline, on_retry, known_limits, api_key=self.api_key)


def refusal_text(error: ApiError) -> str:
    """The API's refusal in words; a refused key also says how to send one."""
    # FORBIDDEN in the API's error body; http_403 where the gateway's own body came through.
    if error.status == 403 and error.code in (FORBIDDEN, "http_403"):
        return (
            f"{error} (the API needs a valid API key: pass --api-key KEY or set {API_KEY_VARIABLE};"
            " `cutout keys create --plan NAME` makes one)"
        )
    return str(error)


@dataclass
class Outcome:
    image: Path
    output: Path | None = None
    error: str | None = None


def output_options(args: argparse.Namespace) -> dict:
    """The `output` object of POST /v1/jobs: the format and each option given (the API checks them)."""
    output = {"format": args.format}
    if args.bg_color is not None:
        output["bg_color"] = args.bg_color
    if args.crop:
        output["crop"] = True
    if args.crop_margin is not None:
        output["crop_margin"] = args.crop_margin
    if args.max_side is not None:
        output["max_side"] = args.max_side
    return output


def job_failure(job: dict) -> str:
    error = job.get("error")
    return f"{error['code']}: {error['message']}" if error else f"the job ended {job['status']}"


class ImageRefused(Exception):
    """Why an image fails before any job is asked for."""


def image_job_body(image: Path, limits: dict, args: argparse.Namespace) -> dict:
    """The job an image asks for: its type read from its bytes, its size within the API's limit."""
    try:
        content_type = sniff_file(image, limits["upload_types"])
        size = image.stat().st_size
    except OSError as error:
        raise ImageRefused(f"cannot read the file: {error.strerror}") from error
    if content_type is None:
        raise ImageRefused(f"unsupported_media_type: not a {ACCEPTED_TYPES_TEXT} image (judged by its bytes)")
    try:
        refuse_oversized(size, limits)
    except ApiError as error:
        raise ImageRefused(str(error)) from error
    return job_body(content_type, size, image.name, output_options(args), args.model)


# How an image gets its job: from the client it is given (whose retries its progress line shows),
# the job as POST /v1/jobs answers it and the batch it is in (None for a job of its own).
JobCreator = Callable[[CutoutApi], tuple[dict, str | None]]


class BatchSubmission:
    """One POST /v1/batches for a chunk of images, sent when the first of them starts, so that a
    later chunk's upload URLs do not age while an earlier chunk uploads; the rest wait for it."""

    def __init__(self, bodies: list[dict]):
        self.bodies = bodies
        self.created: dict | None = None
        self._failure: Exception | None = None
        self._lock = threading.Lock()

    def creator(self, position: int) -> JobCreator:
        def job_of(api: CutoutApi) -> tuple[dict, str | None]:
            with self._lock:
                if self.created is None and self._failure is None:
                    try:
                        self.created = api.create_batch(self.bodies)
                    except (ApiError, requests.RequestException) as error:
                        self._failure = error
            if self._failure is not None:
                raise self._failure
            return self.created["jobs"][position], self.created["batch_id"]

        return job_of


def job_creators(bodies: dict[int, dict], several: bool, limits: dict) -> tuple[dict[int, JobCreator], list]:
    """For each image index its JobCreator, and the batch submissions. Several images are created
    in batches of the limits' max_batch_jobs (a deployment from before batches: one job each)."""
    max_batch_jobs = limits.get("max_batch_jobs")
    if not several or not max_batch_jobs:
        return {index: (lambda api, body=body: (api.create_job(body), None)) for index, body in bodies.items()}, []
    indexes = list(bodies)
    creators, submissions = {}, []
    for start in range(0, len(indexes), max_batch_jobs):
        chunk = indexes[start : start + max_batch_jobs]
        submission = BatchSubmission([bodies[index] for index in chunk])
        submissions.append(submission)
        creators |= {index: submission.creator(position) for position, index in enumerate(chunk)}
    return creators, submissions


def remove_image(
    deployment: Deployment,
    limits: dict,
    image: Path,
    body: dict,
    create: JobCreator,
    args: argparse.Namespace,
    deadline: float,
    board: ProgressBoard,
    index: int,
) -> Outcome:
    """limits: the API's GET /v1/limits, asked once for the whole run."""

    def failed(reason: str) -> Outcome:
        board.show(index, "failed:", detail=reason)
        return Outcome(image, error=reason)

    def show_retry(reason: str, wait_s: float) -> None:
        board.show(index, "retrying", detail=f"in {wait_s:.1f} s ({reason})")

    if time.monotonic() >= deadline:
        return failed("timed out before it could start (--timeout)")
    api = deployment.client(deadline, on_retry=show_retry, known_limits=limits)
    size = body["content_length"]
    try:
        job, batch_id = create(api)
        api.upload(job["upload"], image, lambda sent: board.show(index, "uploading", sent / size))
        board.show(index, "uploaded", detail=job["job_id"] + (f" (batch {batch_id})" if batch_id else ""))
        final = api.wait_for_job(job["job_id"], deadline, lambda polled: board.show(index, polled["status"]))
        if final["status"] != "succeeded":
            return failed(job_failure(final))
        destination = cutout_path(image, args.format, args.output_dir)
        board.show(index, "downloading")
        api.download(final["result"]["url"], destination)
    except ApiError as error:
        return failed(refusal_text(error))
    except JobTimedOut as error:
        return failed(f"{error} (--timeout); see `cutout status {error.job['job_id']}`")
    except requests.RequestException as error:
        return failed(f"network error: {error}")
    board.show(index, "done", detail=str(destination))
    return Outcome(image, output=destination)


def run_remove(args: argparse.Namespace, deployment: Deployment) -> int:
    deadline = time.monotonic() + args.timeout
    limits = deployment.client(deadline, on_retry=report_retry).limits()
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    board = ProgressBoard([str(image) for image in args.images])
    outcomes: dict[int, Outcome] = {}
    bodies: dict[int, dict] = {}
    for index, image in enumerate(args.images):
        try:
            bodies[index] = image_job_body(image, limits, args)
        except ImageRefused as refused:
            board.show(index, "failed:", detail=str(refused))
            outcomes[index] = Outcome(image, error=str(refused))
    creators, submissions = job_creators(bodies, len(args.images) > 1, limits)
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        running = {
            index: pool.submit(
                remove_image,
                deployment,
                limits,
                args.images[index],
                body,
                creators[index],
                args,
                deadline,
                board,
                index,
            )
            for index, body in bodies.items()
        }
        outcomes |= {index: future.result() for index, future in running.items()}
    for index in range(len(args.images)):
        outcome = outcomes[index]
        if outcome.output:
            print(outcome.output)
        else:
            print(f"cutout: {outcome.image}: {outcome.error}", file=sys.stderr)
    for submission in submissions:
        if submission.created is not None:
            batch_id = submission.created["batch_id"]
            print(
                f"cutout: batch {batch_id}, {len(submission.bodies)} images: `cutout status {batch_id}`",
                file=sys.stderr,
            )
    return EXIT_OK if all(outcome.output for outcome in outcomes.values()) else EXIT_FAILED


def subject_text(subject: dict | None) -> str:
    if subject is None:
        return "none found"
    return f"{subject['width']}x{subject['height']} at ({subject['x']}, {subject['y']})"


def applied_options_text(output: dict) -> str:
    """The options set, e.g. `format jpeg, bg_color #FFFFFF, crop, crop_margin 5%` (unset ones left out)."""
    return ", ".join(name if value is True else f"{name} {value}" for name, value in output.items() if value)


def describe_job(job: dict) -> str:
    lines = [f"job     {job['job_id']}", f"status  {job['status']}"]
    # Deployments from before a job could choose its model do not name it.
    if job.get("model"):
        lines.append(f"model   {job['model']}")
    lines += [f"  {stage:<16}{at}" for stage, at in job["stages"].items()]
    if job.get("error"):
        lines.append(f"error   {job_failure(job)}")
    result = job.get("result")
    if result:
        lines.append(
            f"result  {result['format']} {result['width']}x{result['height']}, {result['bytes']} bytes,"
            f" URL until {result['expires_at']}"
        )
        lines.append(f"        {result['url']}")
        if "subject" in result:
            lines.append(f"subject {subject_text(result['subject'])}")
        if result.get("output"):
            lines.append(f"output  {applied_options_text(result['output'])}")
    return "\n".join(lines)


def report_retry(reason: str, wait_s: float) -> None:
    print(f"cutout: {reason} (trying again in {wait_s:.1f} s)", file=sys.stderr)


def counts_text(counts: dict[str, int]) -> str:
    """The statuses some job is in, e.g. `2 succeeded, 1 processing` (in the API's order)."""
    return ", ".join(f"{count} {status}" for status, count in counts.items() if count) or "no jobs"


def describe_batch(batch: dict) -> str:
    width = max((len(job["job_id"]) for job in batch["jobs"]), default=0)
    lines = [f"batch   {batch['batch_id']}", f"status  {batch['status']}", f"counts  {counts_text(batch['counts'])}"]
    lines += [f"  {job['job_id']:<{width}}  {job['status']}" for job in batch["jobs"]]
    return "\n".join(lines)


def run_status(args: argparse.Namespace, deployment: Deployment) -> int:
    """A job id, else a batch id: ids are uuids either way, so the job is asked first, then the batch."""
    api = deployment.client(on_retry=report_retry)
    try:
        job = api.get_job(args.id)
    except ApiError as not_a_job:
        if not_a_job.status != 404:
            raise
        try:
            batch = api.get_batch(args.id)
        except ApiError as not_a_batch:
            if not_a_batch.status != 404:
                raise
            raise ApiError(404, not_a_job.code, f"no job or batch {args.id!r}: unknown, malformed or expired") from None
        print(json.dumps(batch, indent=2) if args.json else describe_batch(batch))
        return EXIT_OK
    print(json.dumps(job, indent=2) if args.json else describe_job(job))
    return EXIT_OK


def models_table(models: list[dict]) -> str:
    """One line per model: its name, `default` for the deployment's default, its description."""
    width = max((len(model["name"]) for model in models), default=0)
    marker = "default"
    return "\n".join(
        f"{model['name']:<{width}}  {marker if model['default'] else '':<{len(marker)}}  {model['description']}"
        for model in models
    )


def run_models(args: argparse.Namespace, deployment: Deployment) -> int:
    models = deployment.client(on_retry=report_retry).models()
    print(json.dumps(models, indent=2) if args.json else models_table(models))
    return EXIT_OK


def run_cancel(args: argparse.Namespace, deployment: Deployment) -> int:
    job = deployment.client(on_retry=report_retry).cancel_job(args.job_id)
    print(f"{job['job_id']} {job['status']}")
    return EXIT_OK


def run_keys_create(args: argparse.Namespace, deployment: Deployment) -> int:
    client, rest_api_id = keys.apigateway_of(deployment.api_url)
    key = keys.create_key(client, rest_api_id, args.plan, args.name)
    print(f"id     {key.id}\nname   {key.name}\nplan   {key.plan}\nvalue  {key.value}")
    print("cutout: the value is shown this once: keep it now (send it as x-api-key, or --api-key)", file=sys.stderr)
    return EXIT_OK


def keys_table(api_keys: list[keys.ApiKey]) -> str:
    rows = [(key.id, key.name, key.plan, "enabled" if key.enabled else "disabled", key.created_at) for key in api_keys]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, [*widths, 0], strict=True)).rstrip() for row in rows
    )


def run_keys_list(args: argparse.Namespace, deployment: Deployment) -> int:
    client, rest_api_id = keys.apigateway_of(deployment.api_url)
    api_keys = keys.list_keys(client, rest_api_id)
    print(keys_table(api_keys) if api_keys else f"no API keys in the usage plans of API {rest_api_id}")
    return EXIT_OK


def run_keys_revoke(args: argparse.Namespace, deployment: Deployment) -> int:
    client, rest_api_id = keys.apigateway_of(deployment.api_url)
    keys.revoke_key(client, rest_api_id, args.key_id)
    print(f"revoked API key {args.key_id}: calls with it are refused (403 forbidden) from now on")
    return EXIT_OK


def run_stats(args: argparse.Namespace, deployment: Deployment) -> int:
    figures = operator.deployment_stats(deployment.api_url, keys.region_of(deployment.api_url))
    print(json.dumps(figures, indent=2) if args.json else operator.stats_text(figures))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        api_url = resolve_api_url(args.api, os.environ, Path.cwd())
        api_key = resolve_api_key(getattr(args, "api_key", None), os.environ, Path.cwd(), api_url)
    except NoApiUrl as error:
        parser.error(str(error))
    try:
        return args.run(args, Deployment(api_url, api_key))
    except ApiError as error:
        print(f"cutout: {refusal_text(error)}", file=sys.stderr)
    except requests.RequestException as error:
        print(f"cutout: cannot reach the API at {api_url}: {error}", file=sys.stderr)
    except (keys.UnknownPlan, keys.UnknownKey, keys.NotAnInvokeUrl, operator.NotACutoutStack) as error:
        print(f"cutout: {error}", file=sys.stderr)
    except (BotoCoreError, ClientError) as error:
        print(f"cutout: AWS (with the credentials and region of the environment): {error}", file=sys.stderr)
    return EXIT_FAILED
