"""Reuse of an upload URL, and a normalize that fails on every attempt, against the stack deployed
to LocalStack. Each test asserts the job's final state and that nothing is left in uploads/ or
prepared/.

- The presigned PUT signs only the length and the type, and stays valid for its whole life: a
  client retry, or anyone holding the URL, can PUT other bytes of that length while the job is
  being normalized. The job keeps the upload it took; the others are deleted.
- S3 refusing to serve the upload (403 InvalidObjectState: it was stored in the GLACIER storage
  class) fails every attempt of normalize. LocalStack retries the asynchronous invocation as
  Lambda does (twice, 1 and 2 minutes later) and then hands the event to normalize's on-failure
  destination, which fails the job. The fault is real, produced by S3, not a mock of our code;
  the upload is written with boto3, as a presigned PUT cannot choose the storage class.

The failing job is started first (a module fixture) so that its retries overlap the other test.
"""

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.hostile_images import encoded, photo

ARCHIVED = "GLACIER"
# LocalStack's async retry delays (1x and 2x LAMBDA_RETRY_BASE_DELAY, 60 s), then the destination.
GAVE_UP_WAIT_S = 60 + 120 + 120
# The first upload needs scaling down (6000 x 4500 to 4096 x 3072, over a second of work): a
# window long enough to see the job normalizing and PUT the URL again meanwhile.
FIRST_SIZE, FIRST_PREPARED = (6000, 4500), (4096, 3072)
REUPLOAD_SIZES = [(64, 64), (640, 480), (1600, 1200), (3000, 2000)]


def jpegs_of_one_length(*sizes: tuple[int, int]) -> list[bytes]:
    """A photo at each size, padded after the end-of-image marker to one length (normalize drops
    what follows the marker): bytes the same presigned PUT accepts."""
    images = [encoded(photo("astronaut", size), "JPEG", quality=92) for size in sizes]
    length = max(map(len, images))
    return [image + bytes(length - len(image)) for image in images]


def recorded_size(stack, job_id: str) -> tuple[int, int]:
    """The size normalize recorded for the job's prepared image (the API does not show it)."""
    item = stack.client("dynamodb").get_item(TableName=stack.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True)
    return int(item["Item"]["width"]["N"]), int(item["Item"]["height"]["N"])


# LocalStack answers 500 to a PUT that races the delete of the same key (../shared/DESIGN.md
# section 10); a client tries a 5xx again, as the CLI and the page do.
PUT_ATTEMPTS = 3


def put(upload: dict, body: bytes) -> int:
    for _ in range(PUT_ATTEMPTS):
        status = requests.put(upload["url"], data=body, headers=upload["headers"], timeout=60).status_code
        if status < 500:
            return status
    return status


@pytest.fixture(scope="module")
def unreadable_upload_job(stack) -> str:
    """A job whose upload S3 refuses to serve."""
    image = encoded(photo("coffee"), "JPEG", quality=90)
    job = stack.create_job(content_type="image/jpeg", content_length=len(image))
    stack.client("s3").put_object(
        Bucket=stack.bucket, Key=f"uploads/{job['job_id']}", Body=image, ContentType="image/jpeg", StorageClass=ARCHIVED
    )
    return job["job_id"]


def test_the_upload_url_put_again_while_normalizing_leaves_one_result_of_the_upload_the_job_took(
    stack, unreadable_upload_job
):
    first, *others = jpegs_of_one_length(FIRST_SIZE, *REUPLOAD_SIZES)
    job = stack.submit(first, "image/jpeg")
    job_id = job["job_id"]
    stack.wait_for_status(job_id, {"normalizing"})

    with ThreadPoolExecutor(len(others)) as pool:
        statuses = list(pool.map(lambda body: put(job["upload"], body), others))
    assert statuses == [200] * len(others), "S3 takes every PUT of the signed length and type"

    done = stack.wait(job_id)
    assert done["status"] == "succeeded", done
    assert recorded_size(stack, job_id) == FIRST_PREPARED, "the job keeps the upload it was normalizing"
    assert (done["result"]["width"], done["result"]["height"]) == FIRST_PREPARED, "the result is of that upload"
    stack.assert_keys_settle(job_id, {f"results/{job_id}.png"})


def test_an_upload_normalize_fails_on_every_attempt_fails_its_job_when_lambda_gives_up(stack, unreadable_upload_job):
    job_id = unreadable_upload_job

    done = stack.wait(job_id, GAVE_UP_WAIT_S)

    assert (done["status"], (done["error"] or {}).get("code")) == ("failed", "retries_exhausted"), done
    assert "could not be processed" in done["error"]["message"]
    # Failed by the on-failure destination: a job found stalled on a read fails with "stalled".
    assert list(done["stages"]) == ["awaiting_upload", "failed"]
    stack.assert_keys_settle(job_id, set())
