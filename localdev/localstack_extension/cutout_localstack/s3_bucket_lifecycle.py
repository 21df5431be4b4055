"""Apply an AWS::S3::Bucket's LifecycleConfiguration, which LocalStack's free provider ignores.

The free S3 bucket provider creates the bucket, notifications, versioning, CORS, tags and website,
but not the lifecycle rules. A second provider registered under the same plugin name would win or
lose by entry-point order, so instead the provider's `create` is wrapped (LocalStack's own patch
mechanism, the way its extensions change behaviour) to put the rules once the bucket exists.
Updates of an existing bucket are not re-applied: LocalStack does not implement bucket updates.
"""

from localstack.runtime import hooks
from localstack.utils.patch import patch


def _filter(rule: dict) -> dict:
    conditions = {}
    if "Prefix" in rule:
        conditions["Prefix"] = rule["Prefix"]
    if rule.get("TagFilters"):
        conditions["Tags"] = rule["TagFilters"]
    for size in ("ObjectSizeGreaterThan", "ObjectSizeLessThan"):
        if size in rule:
            conditions[size] = int(rule[size])
    if len(conditions) > 1 or ("Tags" in conditions and len(conditions["Tags"]) > 1):
        return {"And": conditions}
    if "Tags" in conditions:
        return {"Tag": conditions["Tags"][0]}
    return conditions or {"Prefix": ""}


def _transition(transition: dict, noncurrent: bool) -> dict:
    converted = {"StorageClass": transition["StorageClass"]}
    if "TransitionInDays" in transition:
        converted["NoncurrentDays" if noncurrent else "Days"] = int(transition["TransitionInDays"])
    if "TransitionDate" in transition:
        converted["Date"] = transition["TransitionDate"]
    if "NewerNoncurrentVersions" in transition:
        converted["NewerNoncurrentVersions"] = int(transition["NewerNoncurrentVersions"])
    return converted


def s3_lifecycle_rule(rule: dict) -> dict:
    """One CloudFormation lifecycle rule in the shape of S3's PutBucketLifecycleConfiguration."""
    converted = {"Status": rule["Status"], "Filter": _filter(rule)}
    if "Id" in rule:
        converted["ID"] = rule["Id"]
    expiration = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = int(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = str(rule["ExpiredObjectDeleteMarker"]).lower() == "true"
    if expiration:
        converted["Expiration"] = expiration
    if abort := rule.get("AbortIncompleteMultipartUpload"):
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    noncurrent = dict(rule.get("NoncurrentVersionExpiration") or {})
    if "NoncurrentVersionExpirationInDays" in rule:
        noncurrent["NoncurrentDays"] = rule["NoncurrentVersionExpirationInDays"]
    if noncurrent:
        converted["NoncurrentVersionExpiration"] = {key: int(value) for key, value in noncurrent.items()}
    if rule.get("Transitions"):
        converted["Transitions"] = [_transition(t, noncurrent=False) for t in rule["Transitions"]]
    if rule.get("NoncurrentVersionTransitions"):
        converted["NoncurrentVersionTransitions"] = [
            _transition(t, noncurrent=True) for t in rule["NoncurrentVersionTransitions"]
        ]
    return converted


@hooks.on_infra_start()
def apply_lifecycle_configuration_on_create():
    from localstack.services.cloudformation.resource_provider import OperationStatus
    from localstack.services.s3.resource_providers.aws_s3_bucket import S3BucketProvider

    @patch(S3BucketProvider.create)
    def create_with_lifecycle(create, self, request):
        event = create(self, request)
        lifecycle = request.desired_state.get("LifecycleConfiguration")
        if event.status == OperationStatus.SUCCESS and lifecycle:
            arguments = {
                "Bucket": event.resource_model["BucketName"],
                "LifecycleConfiguration": {"Rules": [s3_lifecycle_rule(rule) for rule in lifecycle["Rules"]]},
            }
            if minimum_size := lifecycle.get("TransitionDefaultMinimumObjectSize"):
                arguments["TransitionDefaultMinimumObjectSize"] = minimum_size
            request.aws_client_factory.s3.put_bucket_lifecycle_configuration(**arguments)
        return event
