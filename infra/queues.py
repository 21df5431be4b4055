"""The inference queue and its dead-letter queue."""

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import StackSettings

LONG_POLL_S = 20
# Keep a dead letter long enough for someone to look at it after a weekend.
DEAD_LETTER_RETENTION_DAYS = 14


class InferenceQueues(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(DEAD_LETTER_RETENTION_DAYS),
        )
        self.queue = sqs.Queue(
            self,
            "Inference",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(settings.queue_visibility_timeout_s),
            receive_message_wait_time=Duration.seconds(LONG_POLL_S),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.service.max_receive_count, queue=self.dead_letters
            ),
        )
