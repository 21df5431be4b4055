"""The inference queue and its dead-letter queue, and how the stack makes a queue."""

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import StackSettings

LONG_POLL_S = 20
# Keep a dead letter long enough for someone to look at it after a weekend.
DEAD_LETTER_RETENTION_DAYS = 14


def dead_letter_queue(scope: Construct, id: str) -> sqs.Queue:
    return sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(DEAD_LETTER_RETENTION_DAYS),
    )


def work_queue(
    scope: Construct, id: str, *, visibility_timeout_s: int, max_receive_count: int, dead_letters: sqs.IQueue, **options
) -> sqs.Queue:
    """An encrypted, TLS-only queue whose messages go to dead_letters after max_receive_count receives."""
    return sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(visibility_timeout_s),
        dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=dead_letters),
        **options,
    )


class InferenceQueues(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        self.dead_letters = dead_letter_queue(self, "DeadLetters")
        self.queue = work_queue(
            self,
            "Inference",
            visibility_timeout_s=settings.queue_visibility_timeout_s,
            max_receive_count=settings.service.max_receive_count,
            dead_letters=self.dead_letters,
            receive_message_wait_time=Duration.seconds(LONG_POLL_S),
        )
