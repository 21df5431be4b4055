"""What an operator sees of the local stack: GET /v1/stats with a key of the admin plan, and
`cutout stats` with AWS credentials, as a person runs it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from cutout.stats import WATCHED_QUEUES
from cutout_cli import keys
from tests.support.deployed_stack import ENDPOINT

CUTOUT = Path(sys.executable).with_name("cutout")


@pytest.fixture
def admin_key(stack, monkeypatch):
    # As `cutout keys` finds LocalStack: boto3 reads the endpoint from the environment.
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    client, rest_api_id = keys.apigateway_of(stack.api_url)
    created = keys.create_key(client, rest_api_id, "admin", name="e2e-operator")
    yield created.value
    keys.revoke_key(client, rest_api_id, created.id)


def test_stats_show_the_queues_and_the_jobs_just_made_to_an_admin_key_only(stack, admin_key):
    job = stack.create_job(content_type="image/jpeg", content_length=1000)
    requests.delete(f"{stack.api_url}/v1/jobs/{job['job_id']}", headers=stack.headers, timeout=10)

    def read() -> dict:
        response = requests.get(f"{stack.api_url}/v1/stats", headers={"x-api-key": admin_key}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    before = read()
    stack.wait_until(lambda: read()["jobs"]["last_hour"]["cancelled"] > 0, "the cancelled job is counted", timeout_s=60)
    stats = read()
    assert set(stats["queues"]) == set(WATCHED_QUEUES)
    for queue in stats["queues"].values():
        assert set(queue) == {"waiting", "in_flight", "oldest_age_s"}
    hour, day = stats["jobs"]["last_hour"], stats["jobs"]["last_day"]
    assert hour["created"] >= 1 and day["created"] >= hour["created"] >= before["jobs"]["last_hour"]["created"]
    refused = requests.get(f"{stack.api_url}/v1/stats", headers=stack.headers, timeout=30)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_cutout_stats_prints_the_same_figures_with_aws_credentials(stack):
    environ = {**os.environ, "AWS_ENDPOINT_URL": ENDPOINT}
    run = subprocess.run(
        [CUTOUT, "stats", "--api", stack.api_url], capture_output=True, text=True, env=environ, timeout=120
    )

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["queue", "waiting", "in", "flight", "oldest"]
    assert [line.split()[0] for line in lines[1 : 1 + len(WATCHED_QUEUES)]] == list(WATCHED_QUEUES)
    assert any(line.split()[:1] == ["created"] for line in lines)
