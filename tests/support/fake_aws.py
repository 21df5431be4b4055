"""The process environment of code under test: fake credentials, a fixed region and the resource
names the moto fixtures create, so nothing can reach a real AWS account; and the job table as the
stack defines it."""

import os

from cutout.jobs import PARTITION_KEY, TTL_ATTRIBUTE

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "cutout-tests",
    "POWERTOOLS_METRICS_NAMESPACE": "CutoutTests",
    "POWERTOOLS_DEV": "false",
    "TABLE_NAME": "cutout-jobs",
    "BUCKET_NAME": "cutout-images",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-inference",
}
# Settings of a developer's shell that would send the SDK somewhere else.
LEAKS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE")


def use_fake_aws() -> None:
    os.environ.update(ENVIRONMENT)
    for leaked in LEAKS:
        os.environ.pop(leaked, None)


def create_job_table(dynamodb_client, name: str) -> None:
    """The jobs table with the stack's key and TTL attribute (infra/jobs_table.py), e.g. in moto."""
    dynamodb_client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb_client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
