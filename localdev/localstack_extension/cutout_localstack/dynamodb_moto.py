"""DynamoDB served by LocalStack's bundled moto backend (PROVIDER_OVERRIDE_DYNAMODB=moto).

LocalStack's own DynamoDB provider downloads Java and DynamoDB Local, which cannot happen offline.
Moto covers what Cutout uses: tables, conditional writes, TTL settings (expired items are not
deleted, as on AWS within the first hours: the application filters on read).
"""

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.aws.api.dynamodbstreams import DynamodbstreamsApi
from localstack.services.plugins import Service, aws_provider


class MotoDynamoDBProvider(DynamodbApi):
    """Implements nothing itself: every operation falls through to moto."""


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamoDBProvider(), dispatch_table_factory=MotoFallbackDispatcher)


class MotoDynamoDBStreamsProvider(DynamodbstreamsApi):
    """Implements nothing itself: moto's streams read moto's tables, which the provider above serves."""


@aws_provider(api="dynamodbstreams", name="moto")
def dynamodbstreams_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamoDBStreamsProvider(), dispatch_table_factory=MotoFallbackDispatcher)
