"""Alarm targets: every alarm notifies the stack's one SNS topic when it fires and when it clears,
cdk.json's `alarm_email` is the only subscription the stack makes, and the topic's ARN is an output."""

import pytest

from infra.settings import SettingsError, StackSettings
from infra.wiring import FUNCTIONS
from tests.support.stack_synthesis import Synthesized, app_for

ONCALL = "oncall@example.com"


@pytest.fixture(scope="module")
def emailing_stack() -> Synthesized:
    return Synthesized({"alarm_email": ONCALL})


def topic_ref(stack: Synthesized) -> dict:
    key, _ = stack.only("AWS::SNS::Topic")
    return {"Ref": key}


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears(any_stack):
    alarms = {key: a["Properties"] for key, a in any_stack.of_type("AWS::CloudWatch::Alarm").items()}
    assert len(alarms) >= 2 + len(FUNCTIONS)  # dead letters, queue age and one per function
    topic = topic_ref(any_stack)
    actions = {key: (alarm.get("AlarmActions"), alarm.get("OKActions")) for key, alarm in alarms.items()}
    assert actions == dict.fromkeys(alarms, ([topic], [topic]))


def test_without_alarm_email_the_topic_has_no_subscription(image_stack):
    assert image_stack.settings.alarm_email is None
    assert image_stack.of_type("AWS::SNS::Subscription") == {}


def test_alarm_email_is_subscribed_to_the_topic(emailing_stack):
    _, subscription = emailing_stack.only("AWS::SNS::Subscription")
    assert subscription["Properties"] == {
        "Protocol": "email",
        "Endpoint": ONCALL,
        "TopicArn": topic_ref(emailing_stack),
    }


@pytest.mark.parametrize(
    "address", ["oncall", "oncall@example", "@example.com", "a@b.com, c@d.com", "on call@example.com", "null"]
)
def test_an_alarm_email_that_is_no_address_fails_at_synth(address):
    with pytest.raises(SettingsError, match=r"alarm_email must be one email address \(or null\)"):
        StackSettings.from_context(app_for({"alarm_email": address}).node)


def test_an_empty_alarm_email_is_named():
    with pytest.raises(SettingsError, match="'alarm_email': expected a non-empty string"):
        StackSettings.from_context(app_for({"alarm_email": ""}).node)


def test_the_topic_arn_is_a_stack_output(image_stack):
    assert image_stack.json["Outputs"]["AlarmTopicArn"]["Value"] == topic_ref(image_stack)
