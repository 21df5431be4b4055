"""DynamoDB and its streams served by LocalStack's bundled moto (PROVIDER_OVERRIDE_DYNAMODB=moto and
PROVIDER_OVERRIDE_DYNAMODBSTREAMS=moto: LocalStack's own streams provider cannot see moto's tables)."""

import pytest
from botocore.exceptions import ClientError

from tests.support.localstack_calls import unique


@pytest.fixture
def table(aws):
    dynamodb = aws("dynamodb")
    name = unique("jobs")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    return name


def move(dynamodb, table: str, expected: str, new: str):
    return dynamodb.update_item(
        TableName=table,
        Key={"job_id": {"S": "job-1"}},
        UpdateExpression="SET #state = :new",
        ConditionExpression="#state = :expected",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":new": {"S": new}, ":expected": {"S": expected}},
        ReturnValues="ALL_NEW",
    )


def test_conditional_update_succeeds_once_then_fails(aws, table):
    dynamodb = aws("dynamodb")
    dynamodb.put_item(TableName=table, Item={"job_id": {"S": "job-1"}, "state": {"S": "awaiting_upload"}})

    moved = move(dynamodb, table, "awaiting_upload", "normalizing")
    assert moved["Attributes"]["state"] == {"S": "normalizing"}

    with pytest.raises(ClientError) as duplicate:
        move(dynamodb, table, "awaiting_upload", "normalizing")
    assert duplicate.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    item = dynamodb.get_item(TableName=table, Key={"job_id": {"S": "job-1"}})["Item"]
    assert item["state"] == {"S": "normalizing"}


def test_time_to_live_can_be_enabled(aws, table):
    dynamodb = aws("dynamodb")
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )

    described = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert described == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_a_tables_stream_gives_each_change_with_its_old_and_new_item(aws):
    dynamodb, streams = aws("dynamodb"), aws("dynamodbstreams")
    name = unique("streamed")
    created = dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = created["TableDescription"]["LatestStreamArn"]
    dynamodb.put_item(TableName=name, Item={"job_id": {"S": "job-1"}, "state": {"S": "awaiting_upload"}})
    move(dynamodb, name, "awaiting_upload", "normalizing")

    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]

    assert [record["eventName"] for record in records] == ["INSERT", "MODIFY"]
    modified = records[1]["dynamodb"]
    assert modified["OldImage"]["state"] == {"S": "awaiting_upload"}
    assert modified["NewImage"]["state"] == {"S": "normalizing"}
    dynamodb.delete_table(TableName=name)
