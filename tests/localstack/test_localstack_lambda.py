"""The Cutout runtime executor: zip functions with layers run as processes of the project's Python on the host."""

import json

import pytest
from botocore.exceptions import ClientError

from infra import PYTHON_VERSION
from tests.support.localstack_calls import RUNTIME, create_function, invoke, unique, wait_for, zip_files

PROBE_HANDLER = """
import os, sys
import boto3
import layer_probe, shadowed

def handler(event, context):
    return {
        "event": event,
        "python": list(sys.version_info[:2]),
        "layer": layer_probe.VALUE,
        "shadowed": shadowed.ORIGIN,
        "home": os.environ["HOME"],
        "setting": os.environ["CUTOUT_SETTING"],
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "queues": boto3.client("sqs").list_queues().get("QueueUrls", []),
    }
"""


def publish_layer(aws) -> str:
    # Lambda mounts a layer at /opt; its python/ folder is on the path after the function code.
    content = zip_files(
        {
            "python/layer_probe.py": "VALUE = 'from the layer'\n",
            "python/shadowed.py": "ORIGIN = 'layer'\n",
        }
    )
    layer = aws("lambda").publish_layer_version(
        LayerName=unique("layer"), Content={"ZipFile": content}, CompatibleRuntimes=[RUNTIME]
    )
    return layer["LayerVersionArn"]


def test_zip_function_with_layer_runs_on_the_runtimes_python_and_reaches_localstack(aws):
    queue_url = aws("sqs").create_queue(QueueName=unique("probe"))["QueueUrl"]
    name = create_function(
        aws,
        {"handler.py": PROBE_HANDLER, "shadowed.py": "ORIGIN = 'function'\n"},
        layers=[publish_layer(aws)],
        env={"CUTOUT_SETTING": "on"},
    )

    response, result = invoke(aws, name, {"hello": "world"})

    assert "FunctionError" not in response, result
    assert result["event"] == {"hello": "world"}
    assert result["python"] == [int(part) for part in PYTHON_VERSION.split(".")]
    assert result["layer"] == "from the layer"
    assert result["shadowed"] == "function"
    assert "/.localstack/" in result["home"]
    assert result["setting"] == "on"
    assert 0 < result["remaining_ms"] <= 10_000
    assert queue_url in result["queues"]


def test_handler_exception_is_a_function_error_with_its_type(aws):
    name = create_function(aws, {"handler.py": "def handler(event, context):\n    raise KeyError('job-42')\n"})

    response, result = invoke(aws, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "KeyError"
    assert "job-42" in result["errorMessage"]


def test_import_error_is_reported_as_lambda_does(aws):
    name = create_function(aws, {"handler.py": "import not_a_module\ndef handler(event, context):\n    pass\n"})

    response, result = invoke(aws, name, {})

    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Runtime.ImportModuleError"


def test_timeout_kills_the_invocation_and_the_next_one_gets_a_fresh_runtime(aws):
    handler = "import time\ndef handler(event, context):\n    time.sleep(event['sleep'])\n    return 'done'\n"
    name = create_function(aws, {"handler.py": handler}, timeout=1)

    response, result = invoke(aws, name, {"sleep": 5})
    assert response["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in result["errorMessage"]

    response, result = invoke(aws, name, {"sleep": 0})
    assert "FunctionError" not in response
    assert result == "done"


def test_sqs_event_source_mapping_invokes_and_sends_poison_messages_to_the_dlq(aws):
    sqs, s3 = aws("sqs"), aws("s3")
    bucket = unique("processed")
    s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=unique("jobs"),
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    handler = (
        "import os, boto3\n"
        "def handler(event, context):\n"
        "    for record in event['Records']:\n"
        "        if record['body'] == 'poison':\n"
        "            raise ValueError('cannot process')\n"
        "        boto3.client('s3').put_object(Bucket=os.environ['BUCKET'], Key=record['body'], Body=b'ok')\n"
    )
    name = create_function(aws, {"handler.py": handler}, env={"BUCKET": bucket})
    aws("lambda").create_event_source_mapping(FunctionName=name, EventSourceArn=queue_arn, BatchSize=1)

    sqs.send_message(QueueUrl=queue_url, MessageBody="job-1")
    sqs.send_message(QueueUrl=queue_url, MessageBody="poison")

    wait_for(lambda: s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 1, timeout=30)
    dead = wait_for(lambda: sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages"), timeout=40)
    assert [message["Body"] for message in dead] == ["poison"]
    assert [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["job-1"]


def test_a_function_of_another_runtime_is_refused_not_run_on_the_venvs_python(aws):
    """Tests must run the Python Lambda runs: the executor will not stand in for another version."""
    other_runtime = "python3.12" if PYTHON_VERSION != "3.12" else "python3.13"
    name = create_function(
        aws, {"handler.py": "def handler(event, context):\n    return 'ran'\n"}, runtime=other_runtime
    )

    with pytest.raises(
        ClientError, match=f"runtime {other_runtime}, but CUTOUT_LAMBDA_PYTHON is python{PYTHON_VERSION}"
    ):
        invoke(aws, name, {})
