"""Alarms on what needs a person (dead letters, a backed-up queue, failing functions) and a dashboard.

Every alarm notifies one SNS topic when it fires and when it clears (alarm and OK actions), so a
pager resolves its own incidents. The stack subscribes `alarm_email` to it when set; a pager, chat
or anything else is the operating team's subscription, made against the AlarmTopicArn output.
"""

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import StackSettings

PERIOD = Duration.minutes(1)
ERROR_PERIOD = Duration.minutes(5)
QUEUE_AGE_PERIODS = 3


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        settings: StackSettings,
        *,
        functions: Mapping[str, lambda_.IFunction],
        queue: sqs.IQueue,
        dead_letters: sqs.IQueue,
        notification_dead_letters: sqs.IQueue,
        api: apigateway.RestApi,
    ):
        super().__init__(scope, id)
        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm(
                "DeadLetters",
                "Jobs whose inference failed on every attempt are in the dead-letter queue",
                dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
            ),
            self._alarm(
                "NotificationDeadLetters",
                "Webhook deliveries ran out of attempts, deadline checks kept failing,"
                " or the notifier gave up on stream records",
                notification_dead_letters.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
            ),
            self._alarm(
                "ApiServerErrors",
                "The API answered 5xx: a bug, or an AWS service it calls failing",
                api.metric_server_error(period=ERROR_PERIOD, statistic="Sum"),
            ),
            self._alarm(
                "QueueAge",
                f"A job has waited over {settings.queue_age_alarm_s} s for inference",
                queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                threshold=settings.queue_age_alarm_s,
                evaluation_periods=QUEUE_AGE_PERIODS,
            ),
            *(
                self._alarm(
                    f"{name.title()}Errors",
                    f"The {name} function raised errors",
                    function.metric_errors(period=ERROR_PERIOD, statistic="Sum"),
                )
                for name, function in functions.items()
            ),
        ]
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(3))
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(period=PERIOD),
                    api.metric_client_error(period=PERIOD),
                    api.metric_server_error(period=PERIOD),
                ],
            ),
            cloudwatch.GraphWidget(
                title="API latency (p90)", left=[api.metric_latency(period=PERIOD, statistic="p90")]
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Inference queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=PERIOD),
                    dead_letters.metric_approximate_number_of_messages_visible(period=PERIOD, label="Dead letters"),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD)],
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p90)",
                left=[f.metric_duration(period=PERIOD, statistic="p90", label=name) for name, f in functions.items()],
            ),
            cloudwatch.GraphWidget(
                title="Function errors and throttles",
                left=[f.metric_errors(period=PERIOD, label=f"{name} errors") for name, f in functions.items()],
                right=[f.metric_throttles(period=PERIOD, label=f"{name} throttles") for name, f in functions.items()],
            ),
        )

        self.alarm_topic = sns.Topic(self, "Alarms", display_name=f"{settings.stack_name} alarms")
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        # Last, so that every alarm in self.alarms, whoever added it, notifies the topic.
        notify = cloudwatch_actions.SnsAction(self.alarm_topic)
        for alarm in self.alarms:
            alarm.add_alarm_action(notify)
            alarm.add_ok_action(notify)

    def _alarm(
        self, id: str, description: str, metric: cloudwatch.IMetric, threshold: float = 0, evaluation_periods: int = 1
    ) -> cloudwatch.Alarm:
        """An alarm when metric goes above threshold; no data (an idle stack) is no breach."""
        return cloudwatch.Alarm(
            self,
            id,
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=evaluation_periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
