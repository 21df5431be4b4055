"""The one description of how Cutout is wired: which function, which trigger, which prefix, which queue.

The stack is built from it and the infrastructure tests assert the synthesized template against
it, so the two cannot drift. Sizes and limits are deployment settings (``infra.settings``);
what lives here is the shape of the system, which changes only with the code.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from cutout.keys import PREPARED_PREFIX, RESULTS_PREFIX, UPLOADS_PREFIX
from cutout.models import MODELS, networks_of


class ObjectAccess(Enum):
    """What a function may do to the objects under one bucket prefix (each maps to a CDK grant)."""

    READ = "read"
    WRITE = "write"
    DELETE = "delete"


class Table(Enum):
    """A table of the stack beside the jobs table, by the ``cutout.settings.Settings`` field that
    names it (its environment variable is that name upper-case)."""

    BATCHES = "batch_table_name"
    IDEMPOTENCY = "idempotency_table_name"
    STATS = "stats_table_name"


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API Gateway resource path, parameters in braces
    costly: bool = False  # costly routes get the lower per-method throttle
    # Answered without an API key even when the deployment requires keys (api_auth api_key).
    public: bool = False


@dataclass(frozen=True)
class ApiTrigger:
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class ObjectCreatedTrigger:
    prefix: str


@dataclass(frozen=True)
class QueueTrigger:
    """Messages of the inference queue, in batches, reporting per-message failures."""


@dataclass(frozen=True)
class JobStreamTrigger:
    """Every change of the jobs table, old and new item, in batches, reporting per-record failures."""


@dataclass(frozen=True)
class WebhookQueueTrigger:
    """Messages of the webhook delivery queue, in batches, reporting per-message failures."""


@dataclass(frozen=True)
class DeadlineQueueTrigger:
    """Messages of the deadline check queue, in batches, reporting per-message failures."""


@dataclass(frozen=True)
class AsyncFailureTrigger:
    """The on-failure destination of another function's asynchronous invocations: Lambda's record
    of each event it gave up on (retries exhausted, or older than the maximum event age)."""

    source: str  # the wiring name of that function


@dataclass(frozen=True)
class FunctionWiring:
    name: str
    folder: str  # the function's project folder (its package inside), relative to the repository root
    handler: str
    trigger: (
        ApiTrigger
        | ObjectCreatedTrigger
        | QueueTrigger
        | JobStreamTrigger
        | WebhookQueueTrigger
        | DeadlineQueueTrigger
        | AsyncFailureTrigger
    )
    objects: Mapping[str, frozenset[ObjectAccess]]  # bucket prefix → allowed access
    table_actions: tuple[str, ...]  # on the jobs table (and its owner index, the actions that read one)
    # The other tables the function uses, with its actions on each; each table's name reaches its environment.
    other_tables: Mapping[Table, tuple[str, ...]] = field(default_factory=dict)
    sends_to_queue: bool = False
    # Puts events on the stack's event bus, queues webhook deliveries, reads the webhook secret.
    publishes_events: bool = False
    sends_webhooks: bool = False
    signs_webhooks: bool = False
    # Sends deadline checks (cutout.jobs.check_delay_s) to the deadline queue.
    schedules_deadlines: bool = False
    # Reads what GET /v1/stats shows: the queues' attributes and ages, and which usage plans a key is in.
    reads_operator_stats: bool = False
    # Third-party packages the function needs beyond the shared layer, bundled into its zip.
    requirements: str | None = None
    # Files from the repository copied into the zip, by path inside the zip.
    extra_files: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, str] = field(default_factory=dict)
    # Built as a container image from this Dockerfile unless the deployment asks for zips.
    dockerfile: str | None = None
    zip_environment: Mapping[str, str] = field(default_factory=dict)


READ, WRITE, DELETE = ObjectAccess.READ, ObjectAccess.WRITE, ObjectAccess.DELETE
# Every network of every model: a job may name any of them.
NETWORK_FILES = [network.file_name for network in networks_of(list(MODELS))]
# Inside the zip, next to the handler; Lambda runs handlers with the task root as working directory.
ZIP_MODEL_DIR = "models"

API = FunctionWiring(
    name="api",
    folder="functions/api",
    handler="cutout_api.handler.lambda_handler",
    trigger=ApiTrigger(
        routes=(
            Route("POST", "/v1/jobs", costly=True),
            Route("GET", "/v1/jobs"),
            Route("GET", "/v1/jobs/{job_id}"),
            Route("DELETE", "/v1/jobs/{job_id}"),
            Route("POST", "/v1/batches", costly=True),
            Route("GET", "/v1/batches/{batch_id}"),
            Route("GET", "/v1/stats"),
            Route("GET", "/v1/health", public=True),
            Route("GET", "/v1/limits"),
            Route("GET", "/v1/models"),
            Route("GET", "/v1/openapi.json"),
        )
    ),
    # Presigning needs the permission the presigned request will use.
    objects={UPLOADS_PREFIX: frozenset({WRITE}), RESULTS_PREFIX: frozenset({READ})},
    table_actions=(
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",  # the owner index, for listing
        "dynamodb:BatchGetItem",
        "dynamodb:BatchWriteItem",
    ),
    other_tables={
        Table.BATCHES: ("dynamodb:GetItem", "dynamodb:PutItem"),
        # Powertools' idempotency records: written conditionally, completed, deleted when the call fails.
        Table.IDEMPOTENCY: ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
        Table.STATS: ("dynamodb:BatchGetItem",),
    },
    reads_operator_stats=True,
)

NORMALIZE = FunctionWiring(
    name="normalize",
    folder="functions/normalize",
    handler="cutout_normalize.handler.lambda_handler",
    trigger=ObjectCreatedTrigger(prefix=UPLOADS_PREFIX),
    objects={UPLOADS_PREFIX: frozenset({READ, DELETE}), PREPARED_PREFIX: frozenset({WRITE})},
    table_actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
    sends_to_queue=True,
    requirements="functions/normalize/requirements.txt",
)

# A second entry point of the normalize code: it fails the job of an upload normalize gave up on.
NORMALIZE_FAILURES = FunctionWiring(
    name="normalize_failures",
    folder=NORMALIZE.folder,
    handler="cutout_normalize.handler.gave_up_handler",
    trigger=AsyncFailureTrigger(source=NORMALIZE.name),
    # Reading tells a replaced upload from the one to delete (and, with the listing CDK's read
    # grant brings, a missing object from a refused one).
    objects={UPLOADS_PREFIX: frozenset({READ, DELETE}), PREPARED_PREFIX: frozenset({DELETE})},
    table_actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
    requirements=NORMALIZE.requirements,
)

INFERENCE = FunctionWiring(
    name="inference",
    folder="functions/inference",
    handler="cutout_inference.handler.lambda_handler",
    trigger=QueueTrigger(),
    objects={PREPARED_PREFIX: frozenset({READ, DELETE}), RESULTS_PREFIX: frozenset({WRITE})},
    table_actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
    requirements="functions/inference/requirements.txt",
    extra_files={f"{ZIP_MODEL_DIR}/{file_name}": f"models/{file_name}" for file_name in NETWORK_FILES},
    # onnxruntime writes under $HOME at import; only /tmp is writable on Lambda.
    environment={"HOME": "/tmp"},
    dockerfile="functions/inference/Dockerfile",
    zip_environment={"CUTOUT_MODEL_DIR": ZIP_MODEL_DIR},
)

# What follows a job's end: its event, webhook and counters, from the jobs table's stream.
NOTIFY = FunctionWiring(
    name="notify",
    folder="functions/notify",
    handler="cutout_notify.handler.stream_handler",
    trigger=JobStreamTrigger(),
    objects={},
    table_actions=("dynamodb:BatchGetItem",),  # a batch's jobs, to tell whether the last one ended
    other_tables={
        Table.BATCHES: ("dynamodb:UpdateItem",),  # the ended jobs and the completion, both conditional
        Table.STATS: ("dynamodb:UpdateItem",),
    },
    publishes_events=True,
    sends_webhooks=True,
    schedules_deadlines=True,
)

# A second entry point of the notify code: POSTs a job's view, with a fresh result URL, to its callback URL.
DELIVER = FunctionWiring(
    name="deliver",
    folder=NOTIFY.folder,
    handler="cutout_notify.handler.delivery_handler",
    trigger=WebhookQueueTrigger(),
    objects={RESULTS_PREFIX: frozenset({READ})},  # presigning needs the permission the URL will use
    table_actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
    signs_webhooks=True,
)

# A third entry point of the notify code: moves a job on when its deadline passes, so a job nobody
# polls still ends (and is announced); a job still on time is checked again when it is due.
DEADLINES = FunctionWiring(
    name="deadlines",
    folder=NOTIFY.folder,
    handler="cutout_notify.handler.deadline_handler",
    trigger=DeadlineQueueTrigger(),
    objects={},
    table_actions=("dynamodb:GetItem", "dynamodb:UpdateItem"),
    schedules_deadlines=True,
)

FUNCTIONS = (API, NORMALIZE, NORMALIZE_FAILURES, INFERENCE, NOTIFY, DELIVER, DEADLINES)
SHARED_LAYER_FOLDER = "layers/shared"
