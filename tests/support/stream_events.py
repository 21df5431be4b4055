"""DynamoDB stream events as Lambda delivers them to the notifier: changes of real job items."""

import itertools

from boto3.dynamodb.types import TypeSerializer

from cutout.jobs import PARTITION_KEY
from tests.support.fake_aws import ENVIRONMENT

STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{ENVIRONMENT['TABLE_NAME']}/stream/2026-01-01T00:00:00.000"
_SERIALIZER = TypeSerializer()
_SEQUENCE = itertools.count(1)


def _image(item: dict) -> dict:
    """An item as read by boto3's resource (Decimals, sets, maps) in the stream's attribute-value form."""
    return {name: _SERIALIZER.serialize(value) for name, value in item.items()}


def change_record(event_name: str, old_item: dict | None = None, new_item: dict | None = None) -> dict:
    """One record of a NEW_AND_OLD_IMAGES stream: INSERT (new only), MODIFY (both), REMOVE (old only)."""
    item = new_item if new_item is not None else old_item
    sequence = next(_SEQUENCE)
    change = {
        "ApproximateCreationDateTime": 1767225600.0,
        "Keys": _image({PARTITION_KEY: item[PARTITION_KEY]}),
        "SequenceNumber": f"{sequence:021d}",
        "SizeBytes": 256,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new_item is not None:
        change["NewImage"] = _image(new_item)
    if old_item is not None:
        change["OldImage"] = _image(old_item)
    return {
        "eventID": f"event-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": STREAM_ARN,
    }


def inserted(item: dict) -> dict:
    return change_record("INSERT", new_item=item)


def modified(old_item: dict, new_item: dict) -> dict:
    return change_record("MODIFY", old_item, new_item)


def removed(item: dict) -> dict:
    return change_record("REMOVE", old_item=item)


def stream_event(*records: dict) -> dict:
    return {"Records": list(records)}
