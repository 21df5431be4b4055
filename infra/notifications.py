"""What tells clients a job ended: the event bus, the webhook delivery queue, the deadline check
queue, their dead letters, and the secret that signs deliveries."""

from aws_cdk import aws_events as events
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.queues import dead_letter_queue, work_queue
from infra.settings import VISIBILITY_TIMEOUT_FACTOR, StackSettings

# Long enough that no receiver can guess or exhaust it; letters and digits only, so it pastes cleanly.
SECRET_LENGTH = 48


class Notifications(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        self.bus = events.EventBus(self, "Events", description="Cutout: jobs and batches that ended")
        self.secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description="Cutout: signs webhook deliveries (Cutout-Signature)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=SECRET_LENGTH, exclude_punctuation=True
            ),
            removal_policy=settings.cdk_removal_policy,
        )
        # Webhook deliveries that ran out of attempts, deadline checks that kept failing, and stream
        # records the notifier gave up on.
        self.dead_letters = dead_letter_queue(self, "DeadLetters")
        self.webhooks = work_queue(
            self,
            "Webhooks",
            visibility_timeout_s=VISIBILITY_TIMEOUT_FACTOR * settings.sizes["deliver"].timeout_s,
            max_receive_count=settings.service.webhook_attempts,
            dead_letters=self.dead_letters,
        )
        self.deadlines = work_queue(
            self,
            "Deadlines",
            visibility_timeout_s=VISIBILITY_TIMEOUT_FACTOR * settings.sizes["deadlines"].timeout_s,
            max_receive_count=settings.service.max_receive_count,
            dead_letters=self.dead_letters,
        )
