"""Least privilege: each function holds exactly the grants the wiring describes, and no policy anywhere
in the template allows a wildcard action or a wildcard resource where a specific ARN exists."""

import json

from cutout.clients import OWNER_INDEX
from infra.functions import INDEX_ACTIONS
from infra.wiring import (
    API,
    FUNCTIONS,
    AsyncFailureTrigger,
    DeadlineQueueTrigger,
    JobStreamTrigger,
    ObjectAccess,
    QueueTrigger,
    WebhookQueueTrigger,
)
from tests.support.stack_synthesis import POLICY_TYPES, USAGE_PLANS_ARN, as_list

# CDK's grant for each access, as it renders in the template.
OBJECT_ACTIONS = {
    ObjectAccess.READ: {"s3:GetBucket*", "s3:GetObject*", "s3:List*"},
    ObjectAccess.WRITE: {
        "s3:Abort*",
        "s3:PutObject",
        "s3:PutObjectLegalHold",
        "s3:PutObjectRetention",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
    },
    ObjectAccess.DELETE: {"s3:DeleteObject*"},
}
# X-Ray has no resource-level permissions: PutTraceSegments on "*" is the only form AWS accepts.
TRACING_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# ListStreams has no resource-level permission: the stream's event source needs it on "*".
STREAM_LISTING = "dynamodb:ListStreams"
# Nor has reading CloudWatch metrics: the API's operator stats read the queues' ages with it.
METRIC_READS = "cloudwatch:GetMetricStatistics"
RESOURCE_WILDCARD_ALLOWED = TRACING_ACTIONS | {STREAM_LISTING, METRIC_READS}
# CDK's grants on a queue, as they render in the template.
QUEUE_SEND = {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}
QUEUE_CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
# CDK's own custom-resource providers come with AWS's basic execution policy.
BASIC_EXECUTION = "AWSLambdaBasicExecutionRole"


def is_whole_bucket_objects(resource) -> bool:
    """`<bucket arn>/*`: every object, where Cutout's grants name a prefix."""
    join = resource.get("Fn::Join") if isinstance(resource, dict) else None
    return bool(join) and join[1][-1] == "/*"


def test_the_walk_finds_every_policy(any_stack):
    # A policy of a kind the walk does not read (an event bus's, a secret's, a topic's) would go unchecked.
    kinds = {r["Type"] for r in any_stack.resources.values() if r["Type"].endswith("Policy")}
    assert kinds <= set(POLICY_TYPES)
    owners = {key for key, _ in any_stack.policy_statements()}
    assert owners == set(any_stack.of_type("AWS::IAM::Policy")) | set(any_stack.of_type("AWS::S3::BucketPolicy")) | set(
        any_stack.of_type("AWS::SQS::QueuePolicy")
    )
    assert len(any_stack.policy_statements()) > 10


def test_no_policy_allows_a_wildcard_action(any_stack):
    for owner, statement in any_stack.policy_statements():
        if statement["Effect"] != "Allow":
            continue  # the SSL-only denials cover every action on purpose
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (owner, action)


def test_no_policy_allows_a_wildcard_resource_where_an_arn_exists(any_stack):
    bucket_key, _ = any_stack.only("AWS::S3::Bucket")
    auto_delete_roles = {
        key
        for key in any_stack.of_type("AWS::IAM::Role")
        if key.startswith("CustomS3AutoDeleteObjectsCustomResourceProvider")
    }
    for owner, statement in any_stack.policy_statements():
        if statement["Effect"] != "Allow":
            continue
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= RESOURCE_WILDCARD_ALLOWED, (owner, statement)
            elif is_whole_bucket_objects(resource):
                # Emptying the bucket on destroy is the one job that needs every object.
                principal = statement.get("Principal", {}).get("AWS", {}).get("Fn::GetAtt", [None])[0]
                assert principal in auto_delete_roles, (owner, statement)
    assert bucket_key


def test_only_cdk_custom_resource_roles_carry_managed_policies(any_stack):
    function_roles = {
        function["Properties"]["Role"]["Fn::GetAtt"][0]
        for function in (any_stack.function(w.name)[1] for w in FUNCTIONS)
    }
    for key, role in any_stack.of_type("AWS::IAM::Role").items():
        managed = role["Properties"].get("ManagedPolicyArns", [])
        if key in function_roles:
            assert managed == [], key
        else:
            assert all(BASIC_EXECUTION in json.dumps(arn) for arn in managed), key


def test_each_function_holds_exactly_the_grants_its_wiring_describes(any_stack):
    bucket_key, _ = any_stack.only("AWS::S3::Bucket")
    queue_key, dead_letters_key = any_stack.queue_keys()
    webhooks_key, notification_dead_letters_key = any_stack.notification_queue_keys()
    deadlines_key = any_stack.deadline_queue_key()
    bus_key, _ = any_stack.only("AWS::Events::EventBus")
    secret_key, _ = any_stack.only("AWS::SecretsManager::Secret")
    bucket_arn = {"Fn::GetAtt": [bucket_key, "Arn"]}
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        # Each table as the function's environment names it (tests/infra/test_resources.py checks those).
        env = function["Properties"]["Environment"]["Variables"]
        table_key = env["TABLE_NAME"]["Ref"]
        table_arn = {"Fn::GetAtt": [table_key, "Arn"]}
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        statements = any_stack.role_statements(function["Properties"]["Role"]["Fn::GetAtt"][0])
        granted: dict[str, set[str]] = {}
        for statement in statements:
            for resource in as_list(statement["Resource"]):
                granted.setdefault(json.dumps(resource, sort_keys=True), set()).update(as_list(statement["Action"]))

        expected: dict[str, set[str]] = {}

        def expect(resource, actions):
            expected.setdefault(json.dumps(resource, sort_keys=True), set()).update(actions)

        for prefix, accesses in wiring.objects.items():
            for access in accesses:
                expect({"Fn::Join": ["", [bucket_arn, f"/{prefix}*"]]}, OBJECT_ACTIONS[access])
                if access is ObjectAccess.READ:
                    expect(bucket_arn, OBJECT_ACTIONS[access])
        expect(table_arn, wiring.table_actions)
        if index_actions := INDEX_ACTIONS & set(wiring.table_actions):
            expect({"Fn::Join": ["", [table_arn, f"/index/{OWNER_INDEX}"]]}, index_actions)
        for table, actions in wiring.other_tables.items():
            expect({"Fn::GetAtt": [env[table.value.upper()]["Ref"], "Arn"]}, actions)
        if wiring.sends_to_queue:
            expect({"Fn::GetAtt": [queue_key, "Arn"]}, QUEUE_SEND)
        if isinstance(wiring.trigger, QueueTrigger):
            expect({"Fn::GetAtt": [queue_key, "Arn"]}, QUEUE_CONSUME)
        if isinstance(wiring.trigger, JobStreamTrigger):
            expect(
                {"Fn::GetAtt": [table_key, "StreamArn"]},
                {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"},
            )
            expect("*", {STREAM_LISTING})
            # The records the event source gives up on go to the dead letters with the function's role.
            expect({"Fn::GetAtt": [notification_dead_letters_key, "Arn"]}, QUEUE_SEND)
        if isinstance(wiring.trigger, WebhookQueueTrigger):
            expect({"Fn::GetAtt": [webhooks_key, "Arn"]}, QUEUE_CONSUME)
        if isinstance(wiring.trigger, DeadlineQueueTrigger):
            expect({"Fn::GetAtt": [deadlines_key, "Arn"]}, QUEUE_CONSUME)
        if wiring.schedules_deadlines:
            expect({"Fn::GetAtt": [deadlines_key, "Arn"]}, QUEUE_SEND)
        if wiring.reads_operator_stats:
            for watched in (queue_key, dead_letters_key, webhooks_key, notification_dead_letters_key):
                expect({"Fn::GetAtt": [watched, "Arn"]}, {"sqs:GetQueueAttributes"})
            expect("*", {METRIC_READS})
            expect(USAGE_PLANS_ARN, {"apigateway:GET"})
        if wiring.publishes_events:
            expect({"Fn::GetAtt": [bus_key, "Arn"]}, {"events:PutEvents"})
        if wiring.sends_webhooks:
            expect({"Fn::GetAtt": [webhooks_key, "Arn"]}, QUEUE_SEND)
        if wiring.signs_webhooks:
            expect({"Ref": secret_key}, {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"})
        for destination in FUNCTIONS:
            if destination.trigger == AsyncFailureTrigger(source=wiring.name):
                # Lambda delivers the failed events with the source function's own role.
                destination_arn = {"Fn::GetAtt": [any_stack.function(destination.name)[0], "Arn"]}
                expect(destination_arn, {"lambda:InvokeFunction"})
                expect({"Fn::Join": ["", [destination_arn, ":*"]]}, {"lambda:InvokeFunction"})
        expect({"Fn::GetAtt": [log_group, "Arn"]}, {"logs:CreateLogStream", "logs:PutLogEvents"})
        if any_stack.settings.tracing:
            expect("*", TRACING_ACTIONS)
        assert granted == expected, wiring.name


def test_the_api_may_query_the_owner_index_and_no_function_any_other_index(any_stack):
    """CDK's table.grant would allow every granted action on every index (`index/*`)."""
    index_grants = [
        (owner, statement)
        for owner, statement in any_stack.policy_statements()
        if "/index/" in json.dumps(statement["Resource"])
    ]
    ((_, statement),) = index_grants
    assert as_list(statement["Action"]) == ["dynamodb:Query"]
    assert statement["Resource"]["Fn::Join"][1][1] == f"/index/{OWNER_INDEX}"
    _, api_function = any_stack.function(API.name)
    assert statement in any_stack.role_statements(api_function["Properties"]["Role"]["Fn::GetAtt"][0])
