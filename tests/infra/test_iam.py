"""Least privilege: each function holds exactly the grants the wiring describes, and no policy anywhere
in the template allows a wildcard action or a wildcard resource where a specific ARN exists."""

import json

from cutout.clients import OWNER_INDEX
from infra.functions import INDEX_ACTIONS
from infra.wiring import API, FUNCTIONS, AsyncFailureTrigger, ObjectAccess, QueueTrigger

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
RESOURCE_WILDCARD_ALLOWED = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
# CDK's own custom-resource providers come with AWS's basic execution policy.
BASIC_EXECUTION = "AWSLambdaBasicExecutionRole"


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def all_statements(stack) -> list[tuple[str, dict]]:
    """Every statement of every identity and resource policy in the template, with where it is."""
    found = []
    for key, resource in stack.resources.items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in (
            "AWS::IAM::Policy",
            "AWS::IAM::ManagedPolicy",
            "AWS::S3::BucketPolicy",
            "AWS::SQS::QueuePolicy",
        ):
            documents.append(props["PolicyDocument"])
        if resource["Type"] == "AWS::IAM::Role":
            documents.extend(policy["PolicyDocument"] for policy in props.get("Policies", []))
        for document in documents:
            found.extend((key, statement) for statement in document["Statement"])
    return found


def is_whole_bucket_objects(resource) -> bool:
    """`<bucket arn>/*`: every object, where Cutout's grants name a prefix."""
    join = resource.get("Fn::Join") if isinstance(resource, dict) else None
    return bool(join) and join[1][-1] == "/*"


def test_the_walk_finds_every_policy(any_stack):
    owners = {key for key, _ in all_statements(any_stack)}
    assert owners == set(any_stack.of_type("AWS::IAM::Policy")) | set(any_stack.of_type("AWS::S3::BucketPolicy")) | set(
        any_stack.of_type("AWS::SQS::QueuePolicy")
    )
    assert len(all_statements(any_stack)) > 10


def test_no_policy_allows_a_wildcard_action(any_stack):
    for owner, statement in all_statements(any_stack):
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
    for owner, statement in all_statements(any_stack):
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
    queue_key, _ = any_stack.queue_keys()
    bucket_arn = {"Fn::GetAtt": [bucket_key, "Arn"]}
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        # Each table as the function's environment names it (tests/infra/test_resources.py checks those).
        env = function["Properties"]["Environment"]["Variables"]
        table_arn = {"Fn::GetAtt": [env["TABLE_NAME"]["Ref"], "Arn"]}
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
            expect({"Fn::GetAtt": [queue_key, "Arn"]}, {"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"})
        if isinstance(wiring.trigger, QueueTrigger):
            expect(
                {"Fn::GetAtt": [queue_key, "Arn"]},
                {
                    "sqs:ReceiveMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueUrl",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                },
            )
        for destination in FUNCTIONS:
            if destination.trigger == AsyncFailureTrigger(source=wiring.name):
                # Lambda delivers the failed events with the source function's own role.
                destination_arn = {"Fn::GetAtt": [any_stack.function(destination.name)[0], "Arn"]}
                expect(destination_arn, {"lambda:InvokeFunction"})
                expect({"Fn::Join": ["", [destination_arn, ":*"]]}, {"lambda:InvokeFunction"})
        expect({"Fn::GetAtt": [log_group, "Arn"]}, {"logs:CreateLogStream", "logs:PutLogEvents"})
        if any_stack.settings.tracing:
            expect("*", RESOURCE_WILDCARD_ALLOWED)
        assert granted == expected, wiring.name


def test_the_api_may_query_the_owner_index_and_no_function_any_other_index(any_stack):
    """CDK's table.grant would allow every granted action on every index (`index/*`)."""
    index_grants = [
        (owner, statement)
        for owner, statement in all_statements(any_stack)
        if "/index/" in json.dumps(statement["Resource"])
    ]
    ((_, statement),) = index_grants
    assert as_list(statement["Action"]) == ["dynamodb:Query"]
    assert statement["Resource"]["Fn::Join"][1][1] == f"/index/{OWNER_INDEX}"
    _, api_function = any_stack.function(API.name)
    assert statement in any_stack.role_statements(api_function["Properties"]["Role"]["Fn::GetAtt"][0])
