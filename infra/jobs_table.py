"""The jobs table: one item per job, keyed by its id, expired by DynamoDB TTL."""

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from cutout.jobs import PARTITION_KEY, TTL_ATTRIBUTE
from infra.settings import StackSettings


class JobsTable(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        self.table = dynamodb.Table(
            self,
            "Jobs",
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            # Traffic is bursty and small: on-demand costs nothing while idle.
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=settings.point_in_time_recovery
            ),
            removal_policy=RemovalPolicy.DESTROY if settings.removal_policy == "destroy" else RemovalPolicy.RETAIN,
        )
