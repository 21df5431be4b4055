"""The jobs table: one item per job, keyed by its id, expired by DynamoDB TTL; with API keys, each
key's jobs are listed newest first from the owner index."""

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from cutout.clients import OWNER_ATTRIBUTE, OWNER_INDEX, OWNER_INDEX_SORT_KEY
from cutout.jobs import PARTITION_KEY, TTL_ATTRIBUTE
from infra.settings import StackSettings
from infra.tables import transient_table


class JobsTable(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        # The stream carries every transition, whoever made it, to the notifier (cutout_notify).
        self.table = transient_table(
            self,
            "Jobs",
            settings,
            partition_key=PARTITION_KEY,
            ttl_attribute=TTL_ATTRIBUTE,
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
        )
        # A job without an owner (created while the deployment had no keys) is not in the index.
        # ALL: a listed page is answered from the index alone, as GET /v1/jobs/{id} would show each job.
        self.table.add_global_secondary_index(
            index_name=OWNER_INDEX,
            partition_key=dynamodb.Attribute(name=OWNER_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=OWNER_INDEX_SORT_KEY, type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.owner_index_arn = f"{self.table.table_arn}/index/{OWNER_INDEX}"
