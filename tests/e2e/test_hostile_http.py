"""The normalize stage's hostile corpus pushed through the deployed stack over HTTP, as a client would.

Every case is submitted at once (threads), then each case's outcome is asserted on its own. A case
whose announced length is not its real length never reaches normalize here: the presigned PUT
signs Content-Length, so S3 refuses the bytes (403) and the job keeps waiting for its upload. An
empty upload, and one over the size limit, are refused by the API (400, 413).
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests

from tests.support.hostile_images import CASES, LIMITS, Case

SUBMITTERS = 8


@dataclass
class Outcome:
    create_status: int
    put_status: int | None = None
    job: dict | None = None
    keys: frozenset[str] = frozenset()


def declared_length(case: Case) -> int:
    """What the client declares: a body over the limit declares its real size, which the API
    refuses (413), since LocalStack never answers a PUT of 25 MB that lies by a byte."""
    return len(case.body) if len(case.body) > LIMITS.max_upload_bytes else case.content_length


def push(stack, case: Case) -> Outcome:
    body = {"content_type": case.content_type, "content_length": declared_length(case), "filename": case.filename}
    created = requests.post(f"{stack.api_url}/v1/jobs", json=body, headers=stack.headers, timeout=30)
    if created.status_code != 201:
        return Outcome(created.status_code)
    job = created.json()
    upload = job["upload"]
    put = requests.put(upload["url"], data=case.body, headers={"Content-Type": case.content_type}, timeout=120)
    if put.status_code != 200:
        return Outcome(201, put.status_code, stack.get_job(job["job_id"]), frozenset(stack.keys_of(job["job_id"])))
    done = stack.wait(job["job_id"])
    return Outcome(201, 200, done, frozenset(stack.keys_of(job["job_id"])))


@pytest.fixture(scope="module")
def outcomes(stack) -> dict[str, Outcome]:
    with ThreadPoolExecutor(SUBMITTERS) as pool:
        return dict(zip((case.name for case in CASES), pool.map(lambda case: push(stack, case), CASES), strict=True))


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_upload_over_http(outcomes, case):
    outcome = outcomes[case.name]

    if not case.body:
        assert outcome.create_status == 400, "the API requires a positive content_length"
    elif len(case.body) > LIMITS.max_upload_bytes:
        assert outcome.create_status == 413, "the API refuses a declared size over the limit"
    elif case.announced_length is not None:
        assert (outcome.create_status, outcome.put_status) == (201, 403), "S3 refuses bytes of another length"
        assert outcome.job["status"] == "awaiting_upload" and not outcome.keys
    elif case.error is not None:
        job = outcome.job
        assert (job["status"], job["error"]["code"]) == ("failed", case.error.value), job
        assert job["result"] is None and not outcome.keys, "rejected bytes are deleted"
    else:
        job = outcome.job
        width, height, _ = case.prepared
        assert job["status"] == "succeeded", job
        assert (job["result"]["width"], job["result"]["height"]) == (width, height)
        assert outcome.keys == {f"results/{job['job_id']}.png"}, "intermediates are deleted"
