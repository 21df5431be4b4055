"""The functions as ``infra.wiring`` describes them: code, environment, grants and triggers."""

from collections.abc import Mapping

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3_notifications
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import PYTHON_VERSION, REPO_ROOT
from infra.bundling import RUNTIME, bundled_code
from infra.settings import SERVICE_KEYS, StackSettings
from infra.wiring import (
    FUNCTIONS,
    SHARED_LAYER_FOLDER,
    AsyncFailureTrigger,
    FunctionWiring,
    ObjectAccess,
    ObjectCreatedTrigger,
    QueueTrigger,
    Table,
)

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


def service_environment(settings: StackSettings, table: dynamodb.ITable, bucket: s3.IBucket, queue: sqs.IQueue) -> dict:
    """What every function reads at start-up: ``cutout.settings.Settings`` and the Powertools knobs."""
    service = settings.service
    return {
        "TABLE_NAME": table.table_name,
        "BUCKET_NAME": bucket.bucket_name,
        "QUEUE_URL": queue.queue_url,
        "ALLOWED_ORIGINS": ",".join(settings.allowed_origins),
        **{key.upper(): str(getattr(service, key)) for key in SERVICE_KEYS},
        "S3_ADDRESSING_STYLE": settings.s3_addressing_style,
        "POWERTOOLS_LOG_LEVEL": settings.log_level,
        "POWERTOOLS_METRICS_NAMESPACE": settings.metrics_namespace,
        "POWERTOOLS_TRACE_DISABLED": str(not settings.tracing).lower(),
    }


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
        queue: sqs.IQueue,
    ):
        super().__init__(scope, id)
        self._settings = settings
        self._environment = service_environment(settings, table, bucket, queue)
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
            architecture=lambda_.Architecture.X86_64,
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
                    platform=ecr_assets.Platform.LINUX_AMD64,
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
                wiring.folder, requirements=self._requirements(wiring.requirements), extra_files=wiring.extra_files
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
            case AsyncFailureTrigger(source=source):
                self.by_name[source].configure_async_invoke(on_failure=destinations.LambdaDestination(function))
