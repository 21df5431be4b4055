"""What tells clients a job ended: the jobs table's stream read by the notifier, the event bus it
publishes to, the webhook queue the deliverer consumes, the deadline queue the deadline checker
consumes, their dead letters, the signing secret, the counters' table and the alarms on all of it;
each reachable by exactly the functions that use it."""

import json

import pytest

from cutout.jobs import PARTITION_KEY, TERMINAL_STATUSES
from cutout.stats import STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE
from infra.queues import DEAD_LETTER_RETENTION_DAYS
from infra.settings import VISIBILITY_TIMEOUT_FACTOR, SettingsError, StackSettings
from infra.wiring import (
    API,
    DEADLINES,
    DELIVER,
    FUNCTIONS,
    NOTIFY,
    DeadlineQueueTrigger,
    JobStreamTrigger,
    Table,
    WebhookQueueTrigger,
)
from tests.support.stack_synthesis import CDK_CONTEXT, app_for, arn_of

DAY_S = 86400


def test_the_notify_and_deliver_wiring_is_the_stream_and_the_webhook_queue():
    assert [w.name for w in FUNCTIONS if isinstance(w.trigger, JobStreamTrigger)] == [NOTIFY.name]
    assert [w.name for w in FUNCTIONS if isinstance(w.trigger, WebhookQueueTrigger)] == [DELIVER.name]
    assert [w.name for w in FUNCTIONS if w.publishes_events] == [NOTIFY.name]
    assert [w.name for w in FUNCTIONS if w.sends_webhooks] == [NOTIFY.name]
    assert [w.name for w in FUNCTIONS if w.signs_webhooks] == [DELIVER.name]
    assert DELIVER.folder == NOTIFY.folder


def test_the_deadlines_wiring_is_the_deadline_queue_fed_by_notify_and_by_itself():
    assert [w.name for w in FUNCTIONS if isinstance(w.trigger, DeadlineQueueTrigger)] == [DEADLINES.name]
    # The notifier schedules each new job's first check; a job still on time is checked again.
    assert [w.name for w in FUNCTIONS if w.schedules_deadlines] == [NOTIFY.name, DEADLINES.name]
    assert DEADLINES.folder == NOTIFY.folder
    assert DEADLINES.handler == "cutout_notify.handler.deadline_handler"
    assert DEADLINES.table_actions == ("dynamodb:GetItem", "dynamodb:UpdateItem")


def test_the_jobs_table_streams_every_change_with_both_images(any_stack):
    _, table = any_stack.table_keyed_by(PARTITION_KEY)
    assert table["Properties"]["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_notify_reads_the_jobs_stream_in_order_isolating_and_dead_lettering_a_failing_record(any_stack):
    notify_key, _ = any_stack.function(NOTIFY.name)
    table_key, _ = any_stack.table_keyed_by(PARTITION_KEY)
    _, dead_letters_key = any_stack.notification_queue_keys()
    _, mapping = any_stack.event_source(NOTIFY.name)
    props = dict(mapping["Properties"])
    del props["FilterCriteria"]  # its patterns: the next test
    assert props == {
        "EventSourceArn": {"Fn::GetAtt": [table_key, "StreamArn"]},
        "FunctionName": {"Ref": notify_key},
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 100,
        "BisectBatchOnFunctionError": True,
        "MaximumRetryAttempts": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [dead_letters_key, "Arn"]}}},
    }
    # The dead letters are a queue of their own, not the inference queue's.
    assert dead_letters_key not in any_stack.queue_keys()


def test_notify_is_invoked_for_new_jobs_and_for_writes_that_leave_a_job_terminal(any_stack):
    _, mapping = any_stack.event_source(NOTIFY.name)
    patterns = [json.loads(f["Pattern"]) for f in mapping["Properties"]["FilterCriteria"]["Filters"]]
    insert, modify = sorted(patterns, key=lambda pattern: pattern["eventName"])
    assert insert == {"eventName": ["INSERT"]}
    statuses = modify["dynamodb"]["NewImage"]["status"]["S"]
    (was_not,) = modify["dynamodb"]["OldImage"]["status"]["S"]
    earlier = was_not["anything-but"]
    assert modify == {
        "eventName": ["MODIFY"],
        "dynamodb": {
            "NewImage": {"status": {"S": statuses}},
            # A write to a job that had ended already (its webhook's delivery, say) is no new end.
            "OldImage": {"status": {"S": [{"anything-but": earlier}]}},
        },
    }
    terminal = {status.value for status in TERMINAL_STATUSES}
    for listed in (statuses, earlier):
        assert len(listed) == len(set(listed))
        assert set(listed) == terminal
    assert {"succeeded", "failed", "cancelled", "expired"} == terminal


def test_deliver_consumes_the_webhook_queue_one_delivery_at_a_time(any_stack):
    deliver_key, _ = any_stack.function(DELIVER.name)
    webhooks_key, _ = any_stack.notification_queue_keys()
    _, mapping = any_stack.event_source(DELIVER.name)
    assert mapping["Properties"] == {
        "EventSourceArn": {"Fn::GetAtt": [webhooks_key, "Arn"]},
        "FunctionName": {"Ref": deliver_key},
        "BatchSize": 1,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    assert webhooks_key not in any_stack.queue_keys()


def test_deadlines_consumes_the_deadline_queue_in_batches_reporting_each_failure(any_stack):
    deadlines_key, _ = any_stack.function(DEADLINES.name)
    queue_key = any_stack.deadline_queue_key()
    _, mapping = any_stack.event_source(DEADLINES.name)
    assert mapping["Properties"] == {
        "EventSourceArn": {"Fn::GetAtt": [queue_key, "Arn"]},
        "FunctionName": {"Ref": deadlines_key},
        "BatchSize": 10,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
    }
    # A queue of its own: neither the inference queue, its dead letters, nor a notification queue.
    assert queue_key not in {*any_stack.queue_keys(), *any_stack.notification_queue_keys()}
    assert len(any_stack.of_type("AWS::SQS::Queue")) == 5
    # The queue the functions schedule checks on is the one the checker consumes.
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        assert function["Properties"]["Environment"]["Variables"]["DEADLINE_QUEUE_URL"] == {"Ref": queue_key}


def test_a_deadline_check_that_keeps_failing_goes_to_the_notification_dead_letters(any_stack, tuned_stack):
    for stack in (any_stack, tuned_stack):
        _, dead_letters_key = stack.notification_queue_keys()
        deadlines = stack.resources[stack.deadline_queue_key()]["Properties"]
        assert deadlines["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters_key, "Arn"]},
            "maxReceiveCount": stack.settings.service.max_receive_count,
        }
        # Hidden while a whole batch may still be retried (AWS's guidance for SQS event sources).
        _, function = stack.function(DEADLINES.name)
        timeout_s = function["Properties"]["Timeout"]
        assert timeout_s == stack.settings.sizes[DEADLINES.name].timeout_s
        assert deadlines["VisibilityTimeout"] == VISIBILITY_TIMEOUT_FACTOR * timeout_s == 6 * timeout_s
        assert deadlines["SqsManagedSseEnabled"] is True
    # Tuned apart from the deliverer's and the webhook attempts, so that a mix-up shows.
    assert (tuned_stack.settings.sizes[DEADLINES.name].timeout_s, tuned_stack.settings.service.max_receive_count) == (
        40,
        5,
    )
    assert tuned_stack.resources[tuned_stack.deadline_queue_key()]["Properties"]["VisibilityTimeout"] == 240


def test_only_notify_and_deadlines_may_schedule_deadline_checks(any_stack):
    deadlines_arn = arn_of(any_stack.deadline_queue_key())
    senders = {role for role, resource in any_stack.holders_of("sqs:SendMessage") if resource in (deadlines_arn, '"*"')}
    assert senders == {any_stack.role_of(NOTIFY.name), any_stack.role_of(DEADLINES.name)}


def test_the_webhook_queue_dead_letters_a_delivery_after_its_last_attempt(any_stack):
    webhooks_key, dead_letters_key = any_stack.notification_queue_keys()
    webhooks = any_stack.resources[webhooks_key]["Properties"]
    attempts = any_stack.settings.service.webhook_attempts
    assert webhooks["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_letters_key, "Arn"]},
        "maxReceiveCount": attempts,
    }
    # The deliverer counts its attempts against the same number (its last one sends the message on).
    _, deliver = any_stack.function(DELIVER.name)
    assert deliver["Properties"]["Environment"]["Variables"]["WEBHOOK_ATTEMPTS"] == str(attempts)
    dead_letters = any_stack.resources[dead_letters_key]["Properties"]
    assert dead_letters["MessageRetentionPeriod"] == DEAD_LETTER_RETENTION_DAYS * DAY_S
    assert "RedrivePolicy" not in dead_letters


def test_webhook_attempts_come_from_cdk_json_or_the_command_line(image_stack, tuned_stack):
    for stack, attempts in ((image_stack, CDK_CONTEXT["webhook_attempts"]), (tuned_stack, 11)):
        webhooks_key, _ = stack.notification_queue_keys()
        assert stack.resources[webhooks_key]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == attempts
    assert CDK_CONTEXT["webhook_attempts"] != 11
    # Not the inference queue's count: the two are separate knobs.
    assert tuned_stack.settings.service.max_receive_count != 11


def test_a_delivery_stays_hidden_while_the_deliverer_may_still_be_working_on_it(any_stack, tuned_stack):
    for stack in (any_stack, tuned_stack):
        webhooks_key, _ = stack.notification_queue_keys()
        visibility = stack.resources[webhooks_key]["Properties"]["VisibilityTimeout"]
        _, deliver = stack.function(DELIVER.name)
        assert visibility >= deliver["Properties"]["Timeout"] == stack.settings.sizes["deliver"].timeout_s
    assert tuned_stack.settings.sizes["deliver"].timeout_s == 45


def test_one_event_bus_and_only_notify_may_put_events_on_it(any_stack):
    bus_key, _ = any_stack.only("AWS::Events::EventBus")
    assert any_stack.holders_of("events:PutEvents") == {(any_stack.role_of(NOTIFY.name), arn_of(bus_key))}
    assert any_stack.of_type("AWS::Events::EventBusPolicy") == {}


def test_one_generated_secret_and_only_deliver_may_read_it(any_stack):
    secret_key, secret = any_stack.only("AWS::SecretsManager::Secret")
    props = secret["Properties"]
    # Generated by Secrets Manager at deploy time: the template never holds the value.
    assert "SecretString" not in props
    assert props["GenerateSecretString"]["PasswordLength"] >= 32
    secret_arn = json.dumps({"Ref": secret_key})
    assert any_stack.holders_of("secretsmanager:GetSecretValue") == {(any_stack.role_of(DELIVER.name), secret_arn)}
    assert any_stack.of_type("AWS::SecretsManager::ResourcePolicy") == {}


def test_only_notify_may_queue_webhook_deliveries(any_stack):
    webhooks_key, _ = any_stack.notification_queue_keys()
    senders = {
        role for role, resource in any_stack.holders_of("sqs:SendMessage") if resource in (arn_of(webhooks_key), '"*"')
    }
    assert senders == {any_stack.role_of(NOTIFY.name)}


def test_the_notification_resources_reach_the_functions_that_use_them(any_stack):
    bus_key, _ = any_stack.only("AWS::Events::EventBus")
    secret_key, _ = any_stack.only("AWS::SecretsManager::Secret")
    webhooks_key, _ = any_stack.notification_queue_keys()
    stats_key, _ = any_stack.table_keyed_by(STATS_PARTITION_KEY)
    users = {
        "EVENT_BUS_NAME": ([w for w in FUNCTIONS if w.publishes_events], bus_key),
        "WEBHOOK_QUEUE_URL": (
            [w for w in FUNCTIONS if w.sends_webhooks or isinstance(w.trigger, WebhookQueueTrigger)],
            webhooks_key,
        ),
        "WEBHOOK_SECRET_ARN": ([w for w in FUNCTIONS if w.signs_webhooks], secret_key),
        Table.STATS.value.upper(): ([w for w in FUNCTIONS if Table.STATS in w.other_tables], stats_key),
    }
    assert {variable: [w.name for w in wirings] for variable, (wirings, _) in users.items()} == {
        "EVENT_BUS_NAME": [NOTIFY.name],
        "WEBHOOK_QUEUE_URL": [NOTIFY.name, DELIVER.name],  # the deliverer reschedules its retries on it
        "WEBHOOK_SECRET_ARN": [DELIVER.name],
        "STATS_TABLE_NAME": [API.name, NOTIFY.name],  # the API reads the counters the notifier keeps
    }
    for variable, (wirings, key) in users.items():
        for wiring in wirings:
            _, function = any_stack.function(wiring.name)
            assert function["Properties"]["Environment"]["Variables"][variable] == {"Ref": key}, (wiring.name, variable)


def test_the_stats_table_is_keyed_and_expired_as_cutout_stats_names_it(any_stack):
    stats_key, table = any_stack.table_keyed_by(STATS_PARTITION_KEY)
    props = table["Properties"]
    assert props["AttributeDefinitions"] == [{"AttributeName": STATS_PARTITION_KEY, "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": STATS_TTL_ATTRIBUTE, "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert any_stack.json["Outputs"]["StatsTableName"]["Value"] == {"Ref": stats_key}


def alarm_actions(alarm: dict) -> tuple:
    return alarm["AlarmActions"], alarm["OKActions"]


def test_notification_dead_letters_raise_an_alarm_on_the_topic(any_stack):
    _, dead_letters_key = any_stack.notification_queue_keys()
    topic_key, _ = any_stack.only("AWS::SNS::Topic")
    dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_letters_key, "QueueName"]}}
    (alarm,) = [
        a["Properties"]
        for a in any_stack.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and dimension in a["Properties"]["Dimensions"]
    ]
    assert (alarm["Namespace"], alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "AWS/SQS",
        "Maximum",
        0,
        "GreaterThanThreshold",
    )
    assert alarm_actions(alarm) == ([{"Ref": topic_key}], [{"Ref": topic_key}])


def test_the_apis_server_errors_raise_an_alarm_on_the_topic(any_stack):
    _, rest_api = any_stack.only("AWS::ApiGateway::RestApi")
    topic_key, _ = any_stack.only("AWS::SNS::Topic")
    (alarm,) = [
        a["Properties"]
        for a in any_stack.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "5XXError"
    ]
    assert alarm["Namespace"] == "AWS/ApiGateway"
    # API Gateway dimensions its metrics by the API's name: the stack's, so that two stacks' never mix.
    assert alarm["Dimensions"] == [{"Name": "ApiName", "Value": any_stack.settings.stack_name}]
    assert rest_api["Properties"]["Name"] == any_stack.settings.stack_name
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == ("Sum", 0, "GreaterThanThreshold")
    assert alarm_actions(alarm) == ([{"Ref": topic_key}], [{"Ref": topic_key}])


def settings_with(**overrides) -> StackSettings:
    return StackSettings.from_context(app_for(overrides).node)


@pytest.mark.parametrize("webhook_timeout_s", ["20", "15"])
def test_a_deliverer_that_cannot_outwait_connecting_and_answering_fails_at_synth(webhook_timeout_s):
    with pytest.raises(
        SettingsError,
        match=r"^deliver_timeout_s must exceed twice webhook_timeout_s \(connecting, then waiting for the answer\)$",
    ):
        settings_with(webhook_timeout_s=webhook_timeout_s, deliver_timeout_s="30")


def test_a_deliverer_that_outwaits_both_is_accepted():
    settings = settings_with(webhook_timeout_s="14", deliver_timeout_s="30")
    assert (settings.service.webhook_timeout_s, settings.sizes["deliver"].timeout_s) == (14, 30)
