"""The stack's DynamoDB tables: jobs (``infra.jobs_table``), the batches, the idempotency records and
the operator counters. Every one holds transient items keyed by one string and expired by TTL."""

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from cutout.batches import BATCH_PARTITION_KEY, BATCH_TTL_ATTRIBUTE
from cutout.idempotency import IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE
from cutout.stats import STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE
from infra.settings import StackSettings
from infra.wiring import Table

# Each table of infra.wiring.Table: its partition key and TTL attribute, as the domain names them.
KEYS = {
    Table.BATCHES: (BATCH_PARTITION_KEY, BATCH_TTL_ATTRIBUTE),
    Table.IDEMPOTENCY: (IDEMPOTENCY_PARTITION_KEY, IDEMPOTENCY_TTL_ATTRIBUTE),
    Table.STATS: (STATS_PARTITION_KEY, STATS_TTL_ATTRIBUTE),
}


def transient_table(
    scope: Construct,
    id: str,
    settings: StackSettings,
    *,
    partition_key: str,
    ttl_attribute: str,
    stream: dynamodb.StreamViewType | None = None,
) -> dynamodb.Table:
    return dynamodb.Table(
        scope,
        id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        # Traffic is bursty and small: on-demand costs nothing while idle.
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        time_to_live_attribute=ttl_attribute,
        stream=stream,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=settings.point_in_time_recovery
        ),
        removal_policy=settings.cdk_removal_policy,
    )


class ApiTables(Construct):
    """The batches table (one item per batch, holding its jobs' ids), Powertools' idempotency records
    and the five-minute counters (cutout.stats)."""

    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        self.by_wiring: dict[Table, dynamodb.Table] = {
            table: transient_table(
                self, table.name.title(), settings, partition_key=partition_key, ttl_attribute=ttl_attribute
            )
            for table, (partition_key, ttl_attribute) in KEYS.items()
        }
