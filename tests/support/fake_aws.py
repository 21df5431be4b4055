"""The process environment of code under test: fake credentials, a fixed region and the resource
names the moto fixtures create, so nothing can reach a real AWS account; and the job table as the
stack defines it."""

import os

from cutout.batches import BATCH_PARTITION_KEY, BATCH_TTL_ATTRIBUTE
from cutout.clients import OWNER_ATTRIBUTE, OWNER_INDEX, OWNER_INDEX_SORT_KEY
from cutout.idempotency import IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE
from cutout.jobs import PARTITION_KEY, TTL_ATTRIBUTE
from cutout.stats import STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE

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
    "BATCH_TABLE_NAME": "cutout-batches",
    "IDEMPOTENCY_TABLE_NAME": "cutout-idempotency",
    "BUCKET_NAME": "cutout-images",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-inference",
    "STATS_TABLE_NAME": "cutout-stats",
    "EVENT_BUS_NAME": "cutout-events",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-webhooks",
    "DEADLINE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-deadlines",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-inference-dlq",
    "NOTIFICATION_DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/cutout-notifications-dlq",
    "ADMIN_USAGE_PLANS": "admin",
    # Secrets Manager finds a secret by its name as well as by its ARN.
    "WEBHOOK_SECRET_ARN": "cutout-webhook-secret",
}
# Settings of a developer's shell that would send the SDK somewhere else.
LEAKS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE")


def use_fake_aws() -> None:
    os.environ.update(ENVIRONMENT)
    for leaked in LEAKS:
        os.environ.pop(leaked, None)


def create_table(dynamodb_client, name: str, key: str, ttl_attribute: str, **indexes) -> None:
    dynamodb_client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}, *indexes.pop("attributes", [])],
        BillingMode="PAY_PER_REQUEST",
        **indexes,
    )
    dynamodb_client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
    )


def create_job_table(dynamodb_client, name: str) -> None:
    """The jobs table with the stack's key, owner index and TTL attribute (infra/jobs_table.py), e.g. in moto."""
    create_table(
        dynamodb_client,
        name,
        PARTITION_KEY,
        TTL_ATTRIBUTE,
        attributes=[
            {"AttributeName": OWNER_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": OWNER_INDEX_SORT_KEY, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": OWNER_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": OWNER_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def create_api_tables(dynamodb_client, environment=ENVIRONMENT) -> None:
    """Every table the api and notify functions use, named as in environment."""
    create_job_table(dynamodb_client, environment["TABLE_NAME"])
    create_table(dynamodb_client, environment["BATCH_TABLE_NAME"], BATCH_PARTITION_KEY, BATCH_TTL_ATTRIBUTE)
    create_table(
        dynamodb_client, environment["IDEMPOTENCY_TABLE_NAME"], IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE
    )
    create_table(dynamodb_client, environment["STATS_TABLE_NAME"], STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE)
