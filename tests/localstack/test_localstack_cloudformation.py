"""CloudFormation: custom resources invoke their Lambda; a bucket's lifecycle rules are applied."""

import json

import pytest

from tests.support.localstack_calls import RUNTIME, unique, wait_for

# Answers the way CDK's Custom::S3BucketNotifications handler does: a PUT to the ResponseURL.
NOTIFICATIONS_HANDLER = """
import json, urllib.request
import boto3

def handler(event, context):
    props = event["ResourceProperties"]
    status, reason = "SUCCESS", ""
    try:
        if props["Managed"] != "true":
            raise ValueError(f"properties must arrive as strings, got {props['Managed']!r}")
        configuration = {}
        if event["RequestType"] != "Delete":
            rule = {"Name": "prefix", "Value": props["Prefix"]}
            configuration = {"QueueConfigurations": [{
                "QueueArn": props["QueueArn"],
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [rule]}},
            }]}
        boto3.client("s3").put_bucket_notification_configuration(
            Bucket=props["BucketName"], NotificationConfiguration=configuration
        )
    except Exception as e:
        status, reason = "FAILED", str(e)
    body = {
        "Status": status,
        "Reason": reason,
        "PhysicalResourceId": "notifications-" + props["BucketName"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": {"Request": event["RequestType"]},
    }
    request = urllib.request.Request(
        event["ResponseURL"], data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": ""}
    )
    urllib.request.urlopen(request)
"""

FAILING_HANDLER = "def handler(event, context):\n    raise RuntimeError('handler broke')\n"

ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
    },
}


def function(code: str) -> dict:
    return {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": RUNTIME,
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Timeout": 30,
            "Code": {"ZipFile": code},
        },
    }


STACK_TEMPLATE = {
    "Resources": {
        "Role": ROLE,
        "Handler": function(NOTIFICATIONS_HANDLER),
        "Queue": {"Type": "AWS::SQS::Queue"},
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "LifecycleConfiguration": {
                    "Rules": [
                        {"Id": "expire-results", "Status": "Enabled", "Prefix": "results/", "ExpirationInDays": 1},
                        {
                            "Id": "abort-multipart",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        },
                    ]
                }
            },
        },
        "Notifications": {
            "Type": "Custom::BucketNotifications",
            "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]},
                "BucketName": {"Ref": "Bucket"},
                "QueueArn": {"Fn::GetAtt": ["Queue", "Arn"]},
                "Prefix": "uploads/",
                "Managed": True,
            },
        },
        "Jobs": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "job_id", "AttributeType": "S"}],
                "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            },
        },
    },
    "Outputs": {
        "BucketName": {"Value": {"Ref": "Bucket"}},
        "QueueUrl": {"Value": {"Ref": "Queue"}},
        "TableName": {"Value": {"Ref": "Jobs"}},
        "NotificationsId": {"Value": {"Ref": "Notifications"}},
        "NotificationsRequest": {"Value": {"Fn::GetAtt": ["Notifications", "Request"]}},
    },
}


def settled_stack(cloudformation, name: str) -> dict:
    def settled():
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        return None if stack["StackStatus"].endswith("_IN_PROGRESS") else stack

    return wait_for(settled, timeout=90, interval=0.5)


def outputs(stack: dict) -> dict[str, str]:
    return {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}


@pytest.fixture(scope="module")
def stack(aws):
    cloudformation = aws("cloudformation")
    name = unique("cutout-test")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(STACK_TEMPLATE))
    stack = settled_stack(cloudformation, name)
    yield stack
    cloudformation.delete_stack(StackName=name)
    assert settled_stack(cloudformation, stack["StackId"])["StackStatus"] == "DELETE_COMPLETE"


def test_stack_with_a_custom_resource_completes(stack):
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    assert outputs(stack)["NotificationsId"].startswith("notifications-")
    assert outputs(stack)["NotificationsRequest"] == "Create"


def test_custom_resource_really_configured_the_bucket_notification(aws, stack):
    s3, sqs = aws("s3"), aws("sqs")
    bucket, queue_url = outputs(stack)["BucketName"], outputs(stack)["QueueUrl"]

    configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
    assert len(configuration["QueueConfigurations"]) == 1

    s3.put_object(Bucket=bucket, Key="uploads/job-1", Body=b"photo")

    def object_created_record():
        # S3 first sends an s3:TestEvent (no Records) when a notification is configured, as AWS does.
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if records := json.loads(message["Body"]).get("Records"):
                return records[0]
        return None

    record = wait_for(object_created_record, timeout=20)
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["object"]["key"] == "uploads/job-1"


def test_bucket_lifecycle_configuration_is_applied(aws, stack):
    rules = aws("s3").get_bucket_lifecycle_configuration(Bucket=outputs(stack)["BucketName"])["Rules"]

    by_id = {rule["ID"]: rule for rule in rules}
    assert by_id["expire-results"]["Expiration"] == {"Days": 1}
    assert by_id["expire-results"]["Filter"] == {"Prefix": "results/"}
    assert by_id["abort-multipart"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_table_time_to_live_is_enabled(aws, stack):
    described = aws("dynamodb").describe_time_to_live(TableName=outputs(stack)["TableName"])
    assert described["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_failing_custom_resource_fails_the_stack(aws):
    cloudformation = aws("cloudformation")
    template = {
        "Resources": {
            "Role": ROLE,
            "Handler": function(FAILING_HANDLER),
            "Broken": {"Type": "Custom::Broken", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Handler", "Arn"]}}},
        }
    }
    name = unique("cutout-broken")
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))

    stack = settled_stack(cloudformation, name)

    assert stack["StackStatus"] in ("CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED")
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    reasons = [event.get("ResourceStatusReason", "") for event in events if event["LogicalResourceId"] == "Broken"]
    assert any("handler broke" in reason for reason in reasons), reasons
