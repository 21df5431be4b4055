"""Cutout's one stack: storage, jobs table, queues, functions, API and monitoring, wired by ``infra.wiring``."""

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.api import CutoutApi
from infra.functions import ServiceFunctions
from infra.jobs_table import JobsTable
from infra.monitoring import Monitoring
from infra.notifications import Notifications
from infra.queues import InferenceQueues
from infra.settings import StackSettings
from infra.storage import ImageStorage
from infra.tables import ApiTables
from infra.wiring import API, Table


class CutoutStack(Stack):
    def __init__(self, scope: Construct, id: str, settings: StackSettings, **kwargs):
        super().__init__(scope, id, description="Cutout: serverless background removal", **kwargs)
        storage = ImageStorage(self, "Storage", settings)
        jobs = JobsTable(self, "JobsTable", settings)
        api_tables = ApiTables(self, "ApiTables", settings)
        queues = InferenceQueues(self, "Queues", settings)
        notifications = Notifications(self, "Notifications", settings)
        functions = ServiceFunctions(
            self,
            "Functions",
            settings,
            table=jobs.table,
            owner_index_arn=jobs.owner_index_arn,
            other_tables=api_tables.by_wiring,
            bucket=storage.bucket,
            queues=queues,
            notifications=notifications,
        )
        api = CutoutApi(self, "Api", settings, function=functions.by_name[API.name], trigger=API.trigger)
        monitoring = Monitoring(
            self,
            "Monitoring",
            settings,
            functions=functions.by_name,
            queue=queues.queue,
            dead_letters=queues.dead_letters,
            notification_dead_letters=notifications.dead_letters,
            api=api.rest_api,
        )
        for name, value in {
            "ApiUrl": api.rest_api.url,
            "BucketName": storage.bucket.bucket_name,
            "TableName": jobs.table.table_name,
            "BatchTableName": api_tables.by_wiring[Table.BATCHES].table_name,
            "IdempotencyTableName": api_tables.by_wiring[Table.IDEMPOTENCY].table_name,
            "QueueUrl": queues.queue.queue_url,
            "DeadLetterQueueUrl": queues.dead_letters.queue_url,
            "AlarmTopicArn": monitoring.alarm_topic.topic_arn,
            "StatsTableName": api_tables.by_wiring[Table.STATS].table_name,
            "EventBusName": notifications.bus.event_bus_name,
            "WebhookSecretArn": notifications.secret.secret_arn,
            "WebhookQueueUrl": notifications.webhooks.queue_url,
            "DeadlineQueueUrl": notifications.deadlines.queue_url,
            "NotificationDeadLetterQueueUrl": notifications.dead_letters.queue_url,
        }.items():
            CfnOutput(self, name, value=value)
