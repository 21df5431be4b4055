"""The functions as ``infra.wiring`` describes them: code, environment, grants and triggers."""

from collections.abc import Mapping

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cutout.jobs import TERMINAL_STATUSES
from infra import PYTHON_VERSION, REPO_ROOT
from infra.bundling import RUNTIME, bundled_code
from infra.notifications import Notifications
from infra.queues import InferenceQueues
from infra.settings import ARCHITECTURES, SERVICE_KEYS, StackSettings
from infra.wiring import (
    FUNCTIONS,
    SHARED_LAYER_FOLDER,
    AsyncFailureTrigger,
    DeadlineQueueTrigger,
    FunctionWiring,
    JobStreamTrigger,
    ObjectAccess,
    ObjectCreatedTrigger,
    QueueTrigger,
    Table,
    WebhookQueueTrigger,
)

# The stream's records of one job arrive in order; a failing record is retried this often (each
# retry with the records after it), then its batch is split to isolate it, and given up on into the
# dead-letter queue.
STREAM_RETRY_ATTEMPTS = 10
STREAM_BATCH_SIZE = 100
# One delivery per invocation: a slow receiver holds up no other job's webhook.
WEBHOOK_BATCH_SIZE = 1
DEADLINE_BATCH_SIZE = 10

# The table actions that also read a table's index (a query of the owner index is on the index's ARN).
INDEX_ACTIONS = frozenset({"dynamodb:Query", "dynamodb:Scan"})


def image_context_exclude(dockerfile: str) -> list[str]:
    """The Dockerfile's own ignore file, which BuildKit reads and CDK's staging does not.

    The build context is the repository root; the ignore file keeps it to what the image copies.
    The Dockerfile itself must survive staging: the build runs from the staged copy.
    """
    ignore_file = REPO_ROOT / f"{dockerfile}.dockerignore"
    lines = (line.strip() for line in ignore_file.read_text().splitlines())
    return [*(line for line in lines if line and not line.startswith("#")), f"!{dockerfile}"]


def service_environment(
    settings: StackSettings,
    table: dynamodb.ITable,
    bucket: s3.IBucket,
    queues: InferenceQueues,
    notifications: Notifications,
) -> dict:
    """What every function reads at start-up: ``cutout.settings.Settings`` and the Powertools knobs."""
    service = settings.service
    return {
        "TABLE_NAME": table.table_name,
        "BUCKET_NAME": bucket.bucket_name,
        "QUEUE_URL": queues.queue.queue_url,
        "DEAD_LETTER_QUEUE_URL": queues.dead_letters.queue_url,
        "NOTIFICATION_DEAD_LETTER_QUEUE_URL": notifications.dead_letters.queue_url,
        "DEADLINE_QUEUE_URL": notifications.deadlines.queue_url,
        "ADMIN_USAGE_PLANS": ",".join(settings.admin_usage_plans),
        "EVENT_BUS_NAME": notifications.bus.event_bus_name,
        "WEBHOOK_QUEUE_URL": notifications.webhooks.queue_url,
        "WEBHOOK_SECRET_ARN": notifications.secret.secret_arn,
        "ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
        **{key.upper(): str(getattr(service, key)) for key in SERVICE_KEYS},
        "S3_ADDRESSING_STYLE": settings.s3_addressing_style,
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
        "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
        "POWERTOOLS_TRACE_DISABLED": str(not settings.tracing).lower(),
    }


def stream_filters() -> list[dict]:
    """Only what the notifier acts on: new jobs, and writes that move a job into a terminal status
    (not the later writes to a job that had ended already, such as its webhook's delivery)."""
    terminal = sorted(status.value for status in TERMINAL_STATUSES)
    return [
        lambda_.FilterCriteria.filter({"eventName": lambda_.FilterRule.is_equal("INSERT")}),
        lambda_.FilterCriteria.filter(
            {
                "eventName": lambda_.FilterRule.is_equal("MODIFY"),
                "dynamodb": {
                    "NewImage": {"status": {"S": lambda_.FilterRule.or_(*terminal)}},
                    "OldImage": {"status": {"S": [{"anything-but": terminal}]}},
                },
            }
        ),
    ]


class ServiceFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        settings: StackSettings,
        *,
        table: dynamodb.ITable,
        owner_index_arn: str,
        other_tables: Mapping[Table, dynamodb.ITable],
        bucket: s3.IBucket,
        queues: InferenceQueues,
        notifications: Notifications,
    ):
        super().__init__(scope, id)
        self._settings = settings
        self._notifications = notifications
        self._queues = queues
        self._table = table
        self._environment = service_environment(settings, table, bucket, queues, notifications)
        queue = queues.queue
        self._owner_index_arn = owner_index_arn
        self._other_tables = other_tables
        self.shared_layer = lambda_.LayerVersion(
            self,
            "SharedLayer",
            description="Cutout's domain package, its AWS adapter and their third-party packages",
            code=bundled_code(
                f"{SHARED_LAYER_FOLDER}/python",
                prefix="python",
                requirements=self._requirements(f"{SHARED_LAYER_FOLDER}/requirements.txt"),
                architecture=settings.architecture,
            ),
            compatible_runtimes=[RUNTIME],
        )
        self.by_name: dict[str, lambda_.Function] = {}
        for wiring in FUNCTIONS:
            function = self._function(wiring)
            self._grant(wiring, function, table=table, bucket=bucket, queue=queue)
            self.by_name[wiring.name] = function
        # Once all exist: a trigger may be another of these functions.
        for wiring in FUNCTIONS:
            self._connect(wiring, self.by_name[wiring.name], bucket=bucket, queue=queue)

    def _requirements(self, path: str | None) -> str | None:
        return path if self._settings.bundle_dependencies else None

    def _function(self, wiring: FunctionWiring) -> lambda_.Function:
        size = self._settings.sizes[wiring.name]
        architecture = ARCHITECTURES[self._settings.architecture]
        environment = {
            **self._environment,
            "POWERTOOLS_SERVICE_NAME": f"cutout-{wiring.name}",
            **{table.value.upper(): self._other_tables[table].table_name for table in wiring.other_tables},
            **wiring.environment,
        }
        log_group = logs.LogGroup(
            self,
            f"{wiring.name.title()}Logs",
            retention=logs.RetentionDays[self._settings.log_retention],
            removal_policy=RemovalPolicy.DESTROY,
        )
        # Not the default role: its managed policy may write to every log group in the account.
        role = iam.Role(
            self,
            f"{wiring.name.title()}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Cutout {wiring.name} function",
        )
        log_group.grant_write(role)
        common = dict(
            role=role,
            log_group=log_group,
            memory_size=size.memory_mb,
            timeout=Duration.seconds(size.timeout_s),
            architecture=architecture.lambda_architecture,
            tracing=lambda_.Tracing.ACTIVE if self._settings.tracing else lambda_.Tracing.DISABLED,
            reserved_concurrent_executions=self._settings.reserved_concurrency[wiring.name],
        )
        if wiring.dockerfile and self._settings.inference_packaging == "image":
            return lambda_.DockerImageFunction(
                self,
                wiring.name.title(),
                code=lambda_.DockerImageCode.from_image_asset(
                    str(REPO_ROOT),
                    file=wiring.dockerfile,
                    build_args={"PYTHON_VERSION": PYTHON_VERSION},
                    cmd=[wiring.handler],
                    platform=architecture.image_platform,
                    exclude=image_context_exclude(wiring.dockerfile),
                    ignore_mode=IgnoreMode.DOCKER,
                ),
                environment=environment,
                **common,
            )
        return lambda_.Function(
            self,
            wiring.name.title(),
            runtime=RUNTIME,
            handler=wiring.handler,
            code=bundled_code(
                wiring.folder,
                requirements=self._requirements(wiring.requirements),
                extra_files=wiring.extra_files,
                architecture=self._settings.architecture,
            ),
            layers=[self.shared_layer],
            environment={**environment, **wiring.zip_environment},
            **common,
        )

    def _grant(
        self,
        wiring: FunctionWiring,
        function: lambda_.Function,
        *,
        table: dynamodb.ITable,
        bucket: s3.IBucket,
        queue: sqs.IQueue,
    ) -> None:
        grants = {
            ObjectAccess.READ: bucket.grant_read,
            ObjectAccess.WRITE: bucket.grant_put,
            ObjectAccess.DELETE: bucket.grant_delete,
        }
        for prefix, accesses in wiring.objects.items():
            for access in sorted(accesses, key=lambda a: a.value):
                grants[access](function, f"{prefix}*")
        # Not table.grant: on a table with an index it grants every action on every index too.
        iam.Grant.add_to_principal(
            grantee=function, actions=list(wiring.table_actions), resource_arns=[table.table_arn]
        )
        index_actions = [action for action in wiring.table_actions if action in INDEX_ACTIONS]
        if index_actions:
            iam.Grant.add_to_principal(grantee=function, actions=index_actions, resource_arns=[self._owner_index_arn])
        for other, actions in wiring.other_tables.items():
            self._other_tables[other].grant(function, *actions)
        if wiring.sends_to_queue:
            queue.grant_send_messages(function)
        if wiring.publishes_events:
            self._notifications.bus.grant_put_events_to(function)
        if wiring.sends_webhooks:
            self._notifications.webhooks.grant_send_messages(function)
        if wiring.signs_webhooks:
            self._notifications.secret.grant_read(function)
        if wiring.schedules_deadlines:
            self._notifications.deadlines.grant_send_messages(function)
        if wiring.reads_operator_stats:
            self._grant_operator_stats(function)

    def _grant_operator_stats(self, function: lambda_.Function) -> None:
        notifications = self._notifications
        for watched in (
            self._queues.queue,
            self._queues.dead_letters,
            notifications.webhooks,
            notifications.dead_letters,
        ):
            iam.Grant.add_to_principal(
                grantee=function, actions=["sqs:GetQueueAttributes"], resource_arns=[watched.queue_arn]
            )
        # Neither has resource-level permissions: CloudWatch's metric reads and listing a key's usage plans.
        iam.Grant.add_to_principal(grantee=function, actions=["cloudwatch:GetMetricStatistics"], resource_arns=["*"])
        stack = Stack.of(self)
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["apigateway:GET"],
            resource_arns=[f"arn:{stack.partition}:apigateway:{stack.region}::/usageplans"],
        )

    def _connect(
        self, wiring: FunctionWiring, function: lambda_.Function, *, bucket: s3.IBucket, queue: sqs.IQueue
    ) -> None:
        """S3, SQS and on-failure triggers; the API's routes are the ``CutoutApi`` construct's business."""
        match wiring.trigger:
            case ObjectCreatedTrigger(prefix=prefix):
                bucket.add_event_notification(
                    s3.EventType.OBJECT_CREATED,
                    s3_notifications.LambdaDestination(function),
                    s3.NotificationKeyFilter(prefix=prefix),
                )
            case QueueTrigger():
                function.add_event_source(
                    sources.SqsEventSource(
                        queue,
                        batch_size=self._settings.inference_batch_size,
                        max_concurrency=self._settings.inference_max_concurrency,
                        report_batch_item_failures=True,
                    )
                )
            case JobStreamTrigger():
                function.add_event_source(
                    sources.DynamoEventSource(
                        self._table,
                        starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                        batch_size=STREAM_BATCH_SIZE,
                        bisect_batch_on_error=True,
                        retry_attempts=STREAM_RETRY_ATTEMPTS,
                        report_batch_item_failures=True,
                        on_failure=sources.SqsDlq(self._notifications.dead_letters),
                        filters=stream_filters(),
                    )
                )
            case DeadlineQueueTrigger():
                function.add_event_source(
                    sources.SqsEventSource(
                        self._notifications.deadlines, batch_size=DEADLINE_BATCH_SIZE, report_batch_item_failures=True
                    )
                )
            case WebhookQueueTrigger():
                # Its visibility changes are the retry schedule: the event source's consume grant includes them.
                function.add_event_source(
                    sources.SqsEventSource(
                        self._notifications.webhooks, batch_size=WEBHOOK_BATCH_SIZE, report_batch_item_failures=True
                    )
                )
            case AsyncFailureTrigger(source=source):
                self.by_name[source].configure_async_invoke(on_failure=destinations.LambdaDestination(function))
