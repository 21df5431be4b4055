"""Each resource's properties, as the settings and the wiring description ask for them."""

import json
from dataclasses import fields, replace

from cutout.batches import BATCH_PARTITION_KEY, BATCH_TTL_ATTRIBUTE
from cutout.browser import CorsPolicy
from cutout.clients import OWNER_ATTRIBUTE, OWNER_INDEX, OWNER_INDEX_SORT_KEY
from cutout.errors import ErrorCode
from cutout.idempotency import IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE
from cutout.jobs import PARTITION_KEY, TTL_ATTRIBUTE
from cutout.keys import PREPARED_PREFIX, RESULTS_PREFIX, UPLOADS_PREFIX
from cutout.settings import Settings
from cutout.stats import STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE
from infra import PYTHON_VERSION
from infra.settings import VISIBILITY_TIMEOUT_FACTOR
from infra.wiring import (
    API,
    FUNCTIONS,
    INFERENCE,
    NORMALIZE,
    NORMALIZE_FAILURES,
    NOTIFY,
    ZIP_MODEL_DIR,
    ApiTrigger,
    DeadlineQueueTrigger,
    JobStreamTrigger,
    QueueTrigger,
    Table,
    WebhookQueueTrigger,
)
from tests.support.stack_synthesis import CDK_CONTEXT

# Each table by the Settings field that names it (its environment variable is that name upper-case).
TABLE_KEYS = {
    "table_name": (PARTITION_KEY, TTL_ATTRIBUTE),
    Table.BATCHES.value: (BATCH_PARTITION_KEY, BATCH_TTL_ATTRIBUTE),
    Table.IDEMPOTENCY.value: (IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE),
    Table.STATS.value: (STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE),
}
# The triggers Lambda polls for, each through one event source mapping.
POLLED_TRIGGERS = (QueueTrigger, JobStreamTrigger, WebhookQueueTrigger, DeadlineQueueTrigger)
# The usage plans cdk.json marks admin: their keys may read GET /v1/stats.
ADMIN_PLANS_OF_CDK_JSON = [name for name, plan in CDK_CONTEXT["usage_plans"].items() if plan.get("admin") is True]


def test_bucket_is_private_encrypted_and_ssl_only(any_stack):
    _, bucket = any_stack.only("AWS::S3::Bucket")
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    _, policy = any_stack.only("AWS::S3::BucketPolicy")
    denials = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert [s["Condition"] for s in denials] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_bucket_cors_lets_the_configured_origins_put_and_get(any_stack):
    _, bucket = any_stack.only("AWS::S3::Bucket")
    (rule,) = bucket["Properties"]["CorsConfiguration"]["CorsRules"]
    assert sorted(rule["AllowedMethods"]) == ["GET", "PUT"]
    assert rule["AllowedOrigins"] == any_stack.settings.allowed_origins
    assert rule["ExposedHeaders"] == ["ETag"]


def test_tuned_origins_reach_bucket_api_and_functions(tuned_stack):
    origins = ["https://a.example", "https://b.example"]
    assert tuned_stack.settings.allowed_origins == origins
    _, bucket = tuned_stack.only("AWS::S3::Bucket")
    assert bucket["Properties"]["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == origins
    for wiring in FUNCTIONS:
        _, function = tuned_stack.function(wiring.name)
        assert function["Properties"]["Environment"]["Variables"]["ALLOWED_ORIGINS"] == ",".join(origins)


def test_lifecycle_expires_each_prefix_and_aborts_multipart_uploads(any_stack):
    _, bucket = any_stack.only("AWS::S3::Bucket")
    rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    expiry = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules if "Prefix" in rule}
    assert expiry == {
        UPLOADS_PREFIX: 1,
        PREPARED_PREFIX: 1,
        RESULTS_PREFIX: any_stack.settings.results_lifecycle_days,
    }
    assert all(rule["Status"] == "Enabled" for rule in rules)
    assert [r["AbortIncompleteMultipartUpload"] for r in rules if "AbortIncompleteMultipartUpload" in r] == [
        {"DaysAfterInitiation": 1}
    ]


def test_results_lifecycle_rounds_the_result_ttl_up_to_whole_days(image_stack, tuned_stack):
    assert image_stack.settings.results_lifecycle_days == 1  # a 1-hour TTL still needs a whole day
    assert tuned_stack.settings.results_lifecycle_days == 4  # 3 days and a second


def test_removal_policy_follows_the_setting(image_stack, tuned_stack):
    for stack, policy in ((image_stack, "Delete"), (tuned_stack, "Retain")):
        _, bucket = stack.only("AWS::S3::Bucket")
        assert bucket["DeletionPolicy"] == policy
        tables = stack.of_type("AWS::DynamoDB::Table")
        assert len(tables) == len(TABLE_KEYS)
        for key, table in tables.items():
            assert table["DeletionPolicy"] == policy, (key, policy)
        # The webhook secret too: receivers verify deliveries with it, a retained stack keeps it.
        _, secret = stack.only("AWS::SecretsManager::Secret")
        assert (secret["DeletionPolicy"], secret["UpdateReplacePolicy"]) == (policy, policy)
    assert len(image_stack.of_type("Custom::S3AutoDeleteObjects")) == 1
    assert tuned_stack.of_type("Custom::S3AutoDeleteObjects") == {}


def test_every_table_is_on_demand_with_its_ttl_and_switchable_recovery(image_stack, tuned_stack):
    for stack in (image_stack, tuned_stack):
        for partition_key, ttl_attribute in TABLE_KEYS.values():
            _, table = stack.table_keyed_by(partition_key)
            props = table["Properties"]
            assert {"AttributeName": partition_key, "AttributeType": "S"} in props["AttributeDefinitions"]
            assert props["BillingMode"] == "PAY_PER_REQUEST"
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl_attribute, "Enabled": True}
            assert (
                props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]
                is stack.settings.point_in_time_recovery
            )
    assert image_stack.settings.point_in_time_recovery is False
    assert tuned_stack.settings.point_in_time_recovery is True


def test_the_jobs_table_indexes_each_owners_jobs_by_creation_time(any_stack):
    _, table = any_stack.table_keyed_by(PARTITION_KEY)
    props = table["Properties"]
    assert props["GlobalSecondaryIndexes"] == [
        {
            "IndexName": OWNER_INDEX,
            "KeySchema": [
                {"AttributeName": OWNER_ATTRIBUTE, "KeyType": "HASH"},
                {"AttributeName": OWNER_INDEX_SORT_KEY, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (PARTITION_KEY, OWNER_ATTRIBUTE, OWNER_INDEX_SORT_KEY)
        ],
        key=lambda a: a["AttributeName"],
    )


def test_the_other_tables_have_no_index_and_no_stream(any_stack):
    """Only the jobs table streams (tests/infra/test_notifications.py): the notifier reads jobs' changes."""
    for table in Table:
        partition_key, _ = TABLE_KEYS[table.value]
        _, props = any_stack.table_keyed_by(partition_key)
        assert props["Properties"]["AttributeDefinitions"] == [{"AttributeName": partition_key, "AttributeType": "S"}]
        assert "GlobalSecondaryIndexes" not in props["Properties"]
        assert "StreamSpecification" not in props["Properties"]


def test_inference_queue_redrives_to_the_dead_letter_queue(any_stack):
    queues = any_stack.of_type("AWS::SQS::Queue")
    queue_key, dead_key = any_stack.queue_keys()
    props = queues[queue_key]["Properties"]
    settings = any_stack.settings
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_key, "Arn"]},
        "maxReceiveCount": settings.service.max_receive_count,
    }
    assert props["VisibilityTimeout"] == VISIBILITY_TIMEOUT_FACTOR * settings.sizes["inference"].timeout_s
    assert props["ReceiveMessageWaitTimeSeconds"] == 20
    for queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_max_receive_count_reaches_queue_and_functions_alike(tuned_stack):
    assert tuned_stack.settings.service.max_receive_count == 5
    queue = tuned_stack.resources[tuned_stack.queue_keys()[0]]
    assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    assert queue["Properties"]["VisibilityTimeout"] == 6 * 200
    deadlines = tuned_stack.resources[tuned_stack.deadline_queue_key()]
    assert deadlines["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    for wiring in FUNCTIONS:
        _, function = tuned_stack.function(wiring.name)
        assert function["Properties"]["Environment"]["Variables"]["MAX_RECEIVE_COUNT"] == "5"


# The inference package's own: its image's Dockerfile or its zip environment (the wiring) sets them.
MODEL_SETTINGS = ("CUTOUT_MODEL_DIR",)


def test_every_function_gets_every_service_setting(any_stack):
    settings = any_stack.settings
    expected = replace(
        settings.service,
        allowed_origins=tuple(settings.allowed_origins),
        s3_addressing_style=settings.s3_addressing_style,
        admin_usage_plans=",".join(ADMIN_PLANS_OF_CDK_JSON),
    )
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        env = function["Properties"]["Environment"]["Variables"]
        # A table's name only where the function uses the table.
        unused_tables = {table.value.upper() for table in Table if table not in wiring.other_tables}
        for variable in {field.name.upper() for field in fields(Settings)} - set(MODEL_SETTINGS) - unused_tables:
            assert variable in env, (wiring.name, variable)
        assert not unused_tables & set(env), wiring.name
        shared = {k: v for k, v in env.items() if isinstance(v, str) and k not in MODEL_SETTINGS}
        assert Settings.from_env(shared) == expected
        assert env["POWERTOOLS_LOG_LEVEL"] == settings.log_level
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == settings.metrics_namespace
        assert env["POWERTOOLS_TRACE_DISABLED"] == str(not settings.tracing).lower()
        for key, value in wiring.environment.items():
            assert env[key] == value


def test_resource_names_reach_the_functions(any_stack):
    table_key, _ = any_stack.table_keyed_by(PARTITION_KEY)
    bucket_key, _ = any_stack.only("AWS::S3::Bucket")
    queue_key, dead_letters_key = any_stack.queue_keys()
    _, notification_dead_letters_key = any_stack.notification_queue_keys()
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        env = function["Properties"]["Environment"]["Variables"]
        assert env["TABLE_NAME"] == {"Ref": table_key}
        assert env["BUCKET_NAME"] == {"Ref": bucket_key}
        assert env["QUEUE_URL"] == {"Ref": queue_key}
        assert env["DEAD_LETTER_QUEUE_URL"] == {"Ref": dead_letters_key}
        assert env["NOTIFICATION_DEAD_LETTER_QUEUE_URL"] == {"Ref": notification_dead_letters_key}
        assert env["DEADLINE_QUEUE_URL"] == {"Ref": any_stack.deadline_queue_key()}
        for table in wiring.other_tables:
            other_key, _ = any_stack.table_keyed_by(TABLE_KEYS[table.value][0])
            assert env[table.value.upper()] == {"Ref": other_key}, (wiring.name, table)


def test_each_other_table_is_used_by_the_functions_that_need_it_alone():
    assert set(API.other_tables) == {Table.BATCHES, Table.IDEMPOTENCY, Table.STATS}
    assert set(NOTIFY.other_tables) == {Table.BATCHES, Table.STATS}
    users = {table: [w.name for w in FUNCTIONS if table in w.other_tables] for table in Table}
    assert users == {
        Table.BATCHES: [API.name, NOTIFY.name],  # the API creates batches, the notifier completes them
        Table.IDEMPOTENCY: [API.name],
        Table.STATS: [API.name, NOTIFY.name],  # the notifier counts, GET /v1/stats reads the counts
    }
    # The API only reads the counters.
    assert API.other_tables[Table.STATS] == ("dynamodb:BatchGetItem",)


def test_api_auth_and_the_batch_limit_reach_the_api_function(any_stack):
    _, function = any_stack.function(API.name)
    env = function["Properties"]["Environment"]["Variables"]
    assert env["API_AUTH"] == any_stack.settings.service.api_auth == "api_key"
    assert env["MAX_BATCH_JOBS"] == str(any_stack.settings.service.max_batch_jobs) == "100"


def test_function_sizes_come_from_settings(any_stack):
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        size = any_stack.settings.sizes[wiring.name]
        assert function["Properties"]["MemorySize"] == size.memory_mb
        assert function["Properties"]["Timeout"] == size.timeout_s


def test_zip_functions_use_their_handler_and_the_shared_layer(any_stack):
    layer_key, _ = any_stack.only("AWS::Lambda::LayerVersion")
    zipped = [w for w in FUNCTIONS if not (w.dockerfile and any_stack.settings.inference_packaging == "image")]
    for wiring in zipped:
        _, function = any_stack.function(wiring.name)
        props = function["Properties"]
        assert props["Handler"] == wiring.handler
        assert props["Runtime"] == f"python{PYTHON_VERSION}"
        assert props["Layers"] == [{"Ref": layer_key}]
        for key, value in wiring.zip_environment.items():
            assert props["Environment"]["Variables"][key] == value


def test_image_packaging_builds_inference_from_its_dockerfile(image_stack):
    _, function = image_stack.function(INFERENCE.name)
    props = function["Properties"]
    assert props["PackageType"] == "Image"
    assert props["ImageConfig"] == {"Command": [INFERENCE.handler]}
    assert "Layers" not in props and "Handler" not in props
    assert "CUTOUT_MODEL_DIR" not in props["Environment"]["Variables"]


def test_zip_packaging_points_the_engine_at_the_models_next_to_the_handler(zip_stack):
    """What the folder holds: tests/infra/test_wiring.py bundles it."""
    _, function = zip_stack.function(INFERENCE.name)
    assert function["Properties"]["Environment"]["Variables"]["CUTOUT_MODEL_DIR"] == ZIP_MODEL_DIR


def test_uploads_trigger_normalize(any_stack):
    normalize_key, _ = any_stack.function(NORMALIZE.name)
    bucket_key, _ = any_stack.only("AWS::S3::Bucket")
    _, notifications = any_stack.only("Custom::S3BucketNotifications")
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": bucket_key}
    assert props["NotificationConfiguration"] == {
        "LambdaFunctionConfigurations": [
            {
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": NORMALIZE.trigger.prefix}]}},
                "LambdaFunctionArn": {"Fn::GetAtt": [normalize_key, "Arn"]},
            }
        ]
    }
    assert NORMALIZE.trigger.prefix == UPLOADS_PREFIX


def test_each_polled_trigger_has_its_one_event_source_mapping_and_nothing_else_has_one(any_stack):
    polled = [w for w in FUNCTIONS if isinstance(w.trigger, POLLED_TRIGGERS)]
    assert len(polled) == 4
    mappings = {any_stack.event_source(w.name)[0] for w in polled}
    assert mappings == set(any_stack.of_type("AWS::Lambda::EventSourceMapping"))


def test_inference_consumes_the_queue_with_partial_batch_failures(any_stack):
    inference_key, function = any_stack.function(INFERENCE.name)
    queue_key, _ = any_stack.queue_keys()
    _, mapping = any_stack.event_source(INFERENCE.name)
    settings = any_stack.settings
    assert mapping["Properties"] == {
        "EventSourceArn": {"Fn::GetAtt": [queue_key, "Arn"]},
        "FunctionName": {"Ref": inference_key},
        "BatchSize": settings.inference_batch_size,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": settings.inference_max_concurrency},
    }
    reserved = function["Properties"].get("ReservedConcurrentExecutions")
    assert reserved == settings.reserved_concurrency[INFERENCE.name]


def test_tuned_concurrency_and_batch_reach_the_template(tuned_stack):
    _, mapping = tuned_stack.event_source(INFERENCE.name)
    assert mapping["Properties"]["BatchSize"] == 4
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 10}
    _, function = tuned_stack.function(INFERENCE.name)
    assert function["Properties"]["ReservedConcurrentExecutions"] == 20


def test_reserved_concurrency_comes_from_settings(any_stack, tuned_stack):
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        reserved = function["Properties"].get("ReservedConcurrentExecutions")
        assert reserved == any_stack.settings.reserved_concurrency[wiring.name], wiring.name
    tuned = {
        w.name: tuned_stack.function(w.name)[1]["Properties"].get("ReservedConcurrentExecutions") for w in FUNCTIONS
    }
    assert tuned == {
        "api": 30,
        "normalize": 8,
        "normalize_failures": None,
        "inference": 20,
        "notify": 2,
        "deliver": 4,
        "deadlines": 3,
    }


def test_normalize_hands_the_events_it_gives_up_on_to_its_failure_handler(any_stack):
    normalize_key, _ = any_stack.function(NORMALIZE.name)
    failures_key, failures = any_stack.function(NORMALIZE_FAILURES.name)
    _, config = any_stack.only("AWS::Lambda::EventInvokeConfig")
    assert config["Properties"] == {
        "FunctionName": {"Ref": normalize_key},
        "Qualifier": "$LATEST",
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [failures_key, "Arn"]}}},
    }
    assert NORMALIZE_FAILURES.trigger.source == NORMALIZE.name
    assert NORMALIZE_FAILURES.folder == NORMALIZE.folder
    assert failures["Properties"]["Handler"] == "cutout_normalize.handler.gave_up_handler"


def test_tracing_is_switchable(image_stack, tuned_stack):
    for wiring in FUNCTIONS:
        assert image_stack.function(wiring.name)[1]["Properties"]["TracingConfig"] == {"Mode": "Active"}
        assert "TracingConfig" not in tuned_stack.function(wiring.name)[1]["Properties"]


def test_each_function_logs_to_its_own_retained_log_group(any_stack):
    groups = any_stack.of_type("AWS::Logs::LogGroup")
    for wiring in FUNCTIONS:
        _, function = any_stack.function(wiring.name)
        group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_ref]["Properties"]["RetentionInDays"] == 14
        assert groups[group_ref]["DeletionPolicy"] == "Delete"


def test_api_routes_proxy_to_the_api_function(any_stack):
    api_key, _ = any_stack.function("api")
    assert isinstance(FUNCTIONS[0].trigger, ApiTrigger)
    methods = any_stack.methods_by_route()
    served = {route: method["Integration"] for route, method in methods.items() if route[0] != "OPTIONS"}
    routes = FUNCTIONS[0].trigger.routes
    assert set(served) == {(route.method, route.path) for route in routes}
    for integration in served.values():
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert api_key in str(integration["Uri"])
    preflights = {path for verb, path in methods if verb == "OPTIONS"}
    assert {route.path for route in routes} <= preflights


def test_the_rest_api_is_named_after_the_stack(image_stack, tuned_stack):
    """Its metrics are dimensioned by that name (the alarm on its 5xx answers: test_notifications)."""
    for stack, name in ((image_stack, CDK_CONTEXT["stack_name"]), (tuned_stack, "CutoutTuned")):
        _, rest_api = stack.only("AWS::ApiGateway::RestApi")
        assert rest_api["Properties"]["Name"] == stack.settings.stack_name == name


def test_cors_preflight_answers_every_configured_origin(any_stack):
    origins = any_stack.settings.allowed_origins
    preflights = [
        m["Properties"]
        for m in any_stack.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "OPTIONS"
    ]
    assert preflights
    for preflight in preflights:
        (response,) = preflight["Integration"]["IntegrationResponses"]
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{origins[0]}'"
        assert headers["method.response.header.Access-Control-Allow-Methods"] == "'DELETE,GET,POST'"
        # API Gateway answers with the first origin; a template echoes any other listed one.
        for other in origins[1:]:
            assert f'$origin == "{other}"' in response["ResponseTemplates"]["application/json"]


def gateway_responses(stack) -> dict[str, dict]:
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in stack.of_type("AWS::ApiGateway::GatewayResponse").values()
    }


def test_gateway_errors_answer_in_the_apis_error_body(any_stack):
    responses = gateway_responses(any_stack)

    assert set(responses) == {
        "THROTTLED",
        "INVALID_API_KEY",
        "QUOTA_EXCEEDED",
        "MISSING_AUTHENTICATION_TOKEN",
        "REQUEST_TOO_LARGE",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
    }
    codes = {}
    for response_type, response in responses.items():
        # API Gateway substitutes its message as a quoted JSON string.
        body = json.loads(
            response["ResponseTemplates"]["application/json"].replace(
                "$context.error.messageString", '"Too Many Requests"'
            )
        )
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
        codes[response_type] = body["error"]["code"]
    assert codes == {
        "THROTTLED": ErrorCode.TOO_MANY_REQUESTS,
        "INVALID_API_KEY": ErrorCode.FORBIDDEN,
        "QUOTA_EXCEEDED": ErrorCode.TOO_MANY_REQUESTS,
        "MISSING_AUTHENTICATION_TOKEN": ErrorCode.NOT_FOUND,
        "REQUEST_TOO_LARGE": ErrorCode.PAYLOAD_TOO_LARGE,
        "DEFAULT_4XX": ErrorCode.BAD_REQUEST,
        "DEFAULT_5XX": ErrorCode.INTERNAL_ERROR,
    }
    statuses = {"MISSING_AUTHENTICATION_TOKEN": "404", "INVALID_API_KEY": "403", "QUOTA_EXCEEDED": "429"}
    assert {t: r["StatusCode"] for t, r in responses.items() if "StatusCode" in r} == statuses, (
        "the others keep API Gateway's own status"
    )


def test_gateway_errors_carry_cors_for_the_one_allowed_origin(zip_stack):
    (origin,) = zip_stack.settings.allowed_origins
    for response in gateway_responses(zip_stack).values():
        assert response["ResponseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'",
            "gatewayresponse.header.Cache-Control": "'no-store'",
            "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
        }


def test_gateway_errors_answer_each_of_several_origins(tuned_stack):
    assert len(tuned_stack.settings.allowed_origins) > 1
    for response in gateway_responses(tuned_stack).values():
        assert response["ResponseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "method.request.header.Origin",
            "gatewayresponse.header.Vary": "'Origin'",
            "gatewayresponse.header.Cache-Control": "'no-store'",
            "gatewayresponse.header.X-Content-Type-Options": "'nosniff'",
        }


def test_the_function_and_the_gateway_share_one_cors_policy(tuned_stack):
    policy = CorsPolicy(tuple(tuned_stack.settings.allowed_origins))
    _, function = tuned_stack.function("api")
    environment = {"ALLOWED_ORIGINS": function["Properties"]["Environment"]["Variables"]["ALLOWED_ORIGINS"]}
    assert CorsPolicy(Settings.from_env(environment).allowed_origins) == policy
    methods = [m["Properties"] for m in tuned_stack.of_type("AWS::ApiGateway::Method").values()]
    for preflight in [method for method in methods if method["HttpMethod"] == "OPTIONS"]:
        (response,) = preflight["Integration"]["IntegrationResponses"]
        headers = response["ResponseParameters"]
        assert headers["method.response.header.Access-Control-Allow-Headers"] == f"'{','.join(policy.allow_headers)}'"
        assert headers["method.response.header.Access-Control-Max-Age"] == f"'{policy.max_age_s}'"


def test_creating_jobs_is_throttled_below_reading_them(any_stack):
    _, stage = any_stack.only("AWS::ApiGateway::Stage")
    settings = any_stack.settings
    by_target = {(s["ResourcePath"], s["HttpMethod"]): s for s in stage["Properties"]["MethodSettings"]}
    costly = {(route.path.replace("/", "~1"), route.method) for route in API.trigger.routes if route.costly}
    assert costly == {("~1v1~1jobs", "POST"), ("~1v1~1batches", "POST")}
    assert set(by_target) == {("/*", "*")} | {(f"/{path}", method) for path, method in costly}
    stage_default = by_target.pop(("/*", "*"))
    assert (stage_default["ThrottlingRateLimit"], stage_default["ThrottlingBurstLimit"]) == (
        settings.api_throttle_rate,
        settings.api_throttle_burst,
    )
    for create in by_target.values():
        assert (create["ThrottlingRateLimit"], create["ThrottlingBurstLimit"]) == (
            settings.create_job_throttle_rate,
            settings.create_job_throttle_burst,
        )
        assert create["ThrottlingRateLimit"] < stage_default["ThrottlingRateLimit"]
        assert create["ThrottlingBurstLimit"] < stage_default["ThrottlingBurstLimit"]


def test_alarms_watch_dead_letters_queue_age_and_every_function(any_stack):
    queue_key, dead_key = any_stack.queue_keys()
    alarms = [a["Properties"] for a in any_stack.of_type("AWS::CloudWatch::Alarm").values()]

    def on(metric: str, dimension: dict) -> list[dict]:
        return [a for a in alarms if a["MetricName"] == metric and dimension in a["Dimensions"]]

    (dead,) = on(
        "ApproximateNumberOfMessagesVisible", {"Name": "QueueName", "Value": {"Fn::GetAtt": [dead_key, "QueueName"]}}
    )
    assert (dead["Threshold"], dead["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    (age,) = on(
        "ApproximateAgeOfOldestMessage", {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_key, "QueueName"]}}
    )
    assert (age["Threshold"], age["ComparisonOperator"]) == (
        any_stack.settings.queue_age_alarm_s,
        "GreaterThanThreshold",
    )
    for wiring in FUNCTIONS:
        key, _ = any_stack.function(wiring.name)
        (errors,) = on("Errors", {"Name": "FunctionName", "Value": {"Ref": key}})
        assert (errors["Threshold"], errors["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    # And the notifications' dead letters and the API's 5xx answers (tests/infra/test_notifications.py).
    assert len(alarms) == 4 + len(FUNCTIONS)
    any_stack.only("AWS::CloudWatch::Dashboard")


def test_outputs_name_what_a_client_and_an_operator_need(any_stack):
    outputs = any_stack.json["Outputs"]
    assert set(outputs) == {
        "ApiUrl",
        "BucketName",
        "TableName",
        "BatchTableName",
        "IdempotencyTableName",
        "QueueUrl",
        "DeadLetterQueueUrl",
        "StatsTableName",
        "EventBusName",
        "WebhookSecretArn",
        "WebhookQueueUrl",
        "DeadlineQueueUrl",
        "NotificationDeadLetterQueueUrl",
        "AlarmTopicArn",
    }
    bucket_key, _ = any_stack.only("AWS::S3::Bucket")
    queue_key, dead_key = any_stack.queue_keys()
    webhooks_key, notification_dead_key = any_stack.notification_queue_keys()
    refs = {
        "BucketName": bucket_key,
        "QueueUrl": queue_key,
        "DeadLetterQueueUrl": dead_key,
        "EventBusName": any_stack.only("AWS::Events::EventBus")[0],
        "WebhookSecretArn": any_stack.only("AWS::SecretsManager::Secret")[0],
        "WebhookQueueUrl": webhooks_key,
        "DeadlineQueueUrl": any_stack.deadline_queue_key(),
        "NotificationDeadLetterQueueUrl": notification_dead_key,
    }
    for output, key in refs.items():
        assert outputs[output]["Value"] == {"Ref": key}, output
    for output, partition_key in (
        ("TableName", PARTITION_KEY),
        ("BatchTableName", BATCH_PARTITION_KEY),
        ("IdempotencyTableName", IDEMPOTENCY_PARTITION_KEY),
        ("StatsTableName", STATS_PARTITION_KEY),
    ):
        table_key, _ = any_stack.table_keyed_by(partition_key)
        assert outputs[output]["Value"] == {"Ref": table_key}
    rest_key, _ = any_stack.only("AWS::ApiGateway::RestApi")
    assert {"Ref": rest_key} in outputs["ApiUrl"]["Value"]["Fn::Join"][1]
