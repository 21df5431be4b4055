"""`cutout remove IMG...`, `cutout models`, `cutout status JOB_ID`, `cutout cancel JOB_ID`.

Exit codes: 0 every image or call succeeded, 1 some failed (each reason is printed), 2 usage errors.
"""

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from cutout_cli.api import ApiError, CutoutApi, JobTimedOut
from cutout_cli.config import API_URL_VARIABLE, NoApiUrl, resolve_api_url
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
    api_help = f"the API base URL (default: ${API_URL_VARIABLE}, else api_url in .local/stack.json)"
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    remove = commands.add_parser("remove", help="cut out one or more images")
    remove.add_argument("images", nargs="+", type=Path, metavar="IMG", help="JPEG, PNG or WebP files")
    remove.add_argument("--api", help=api_help)
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

    models = commands.add_parser("models", help="list the models a job may choose, the default marked")
    models.add_argument("--api", help=api_help)
    models.add_argument("--json", action="store_true", help="print the models as JSON, as the API lists them")
    models.set_defaults(run=run_models)

    status = commands.add_parser("status", help="show a job")
    status.add_argument("job_id", metavar="JOB_ID")
    status.add_argument("--api", help=api_help)
    status.add_argument("--json", action="store_true", help="print the job as the API returns it")
    status.set_defaults(run=run_status)

    cancel = commands.add_parser("cancel", help="cancel a job that has not started processing")
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.add_argument("--api", help=api_help)
    cancel.set_defaults(run=run_cancel)
    return parser


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


def remove_image(
    api_url: str, limits: dict, image: Path, args: argparse.Namespace, deadline: float, board: ProgressBoard, index: int
) -> Outcome:
    """limits: the API's GET /v1/limits, asked once for the whole run."""

    def failed(reason: str) -> Outcome:
        board.show(index, "failed:", detail=reason)
        return Outcome(image, error=reason)

    def show_retry(reason: str, wait_s: float) -> None:
        board.show(index, "retrying", detail=f"in {wait_s:.1f} s ({reason})")

    try:
        content_type = sniff_file(image, limits["upload_types"])
        size = image.stat().st_size
    except OSError as error:
        return failed(f"cannot read the file: {error.strerror}")
    if content_type is None:
        return failed(f"unsupported_media_type: not a {ACCEPTED_TYPES_TEXT} image (judged by its bytes)")
    if time.monotonic() >= deadline:
        return failed("timed out before it could start (--timeout)")
    api = CutoutApi(api_url, deadline, on_retry=show_retry, known_limits=limits)
    try:
        job = api.create_job(content_type, size, image.name, output_options(args), args.model)
        api.upload(job["upload"], image, lambda sent: board.show(index, "uploading", sent / size))
        board.show(index, "uploaded", detail=job["job_id"])
        final = api.wait_for_job(job["job_id"], deadline, lambda polled: board.show(index, polled["status"]))
        if final["status"] != "succeeded":
            return failed(job_failure(final))
        destination = cutout_path(image, args.format, args.output_dir)
        board.show(index, "downloading")
        api.download(final["result"]["url"], destination)
    except ApiError as error:
        return failed(str(error))
    except JobTimedOut as error:
        return failed(f"{error} (--timeout); see `cutout status {error.job['job_id']}`")
    except requests.RequestException as error:
        return failed(f"network error: {error}")
    board.show(index, "done", detail=str(destination))
    return Outcome(image, output=destination)


def run_remove(args: argparse.Namespace, api_url: str) -> int:
    deadline = time.monotonic() + args.timeout
    limits = CutoutApi(api_url, deadline, on_retry=report_retry).limits()
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    board = ProgressBoard([str(image) for image in args.images])
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        outcomes = list(
            pool.map(
                lambda indexed: remove_image(api_url, limits, indexed[1], args, deadline, board, indexed[0]),
                enumerate(args.images),
            )
        )
    for outcome in outcomes:
        if outcome.output:
            print(outcome.output)
        else:
            print(f"cutout: {outcome.image}: {outcome.error}", file=sys.stderr)
    return EXIT_OK if all(outcome.output for outcome in outcomes) else EXIT_FAILED


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


def run_status(args: argparse.Namespace, api_url: str) -> int:
    job = CutoutApi(api_url, on_retry=report_retry).get_job(args.job_id)
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


def run_models(args: argparse.Namespace, api_url: str) -> int:
    models = CutoutApi(api_url, on_retry=report_retry).models()
    print(json.dumps(models, indent=2) if args.json else models_table(models))
    return EXIT_OK


def run_cancel(args: argparse.Namespace, api_url: str) -> int:
    job = CutoutApi(api_url, on_retry=report_retry).cancel_job(args.job_id)
    print(f"{job['job_id']} {job['status']}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        api_url = resolve_api_url(args.api, os.environ, Path.cwd())
    except NoApiUrl as error:
        parser.error(str(error))
    try:
        return args.run(args, api_url)
    except ApiError as error:
        print(f"cutout: {error}", file=sys.stderr)
    except requests.RequestException as error:
        print(f"cutout: cannot reach the API at {api_url}: {error}", file=sys.stderr)
    return EXIT_FAILED
