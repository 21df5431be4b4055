"""The image bucket: private, encrypted, SSL-only, browsers upload to it directly, nothing lingers."""

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cutout.keys import PREPARED_PREFIX, RESULTS_PREFIX, UPLOADS_PREFIX
from infra.settings import StackSettings

# Intermediates are deleted as soon as they are used; the lifecycle only catches what a failure left.
INTERMEDIATE_DAYS = 1
INCOMPLETE_UPLOAD_DAYS = 1
CORS_MAX_AGE_S = 3000


class ImageStorage(Construct):
    def __init__(self, scope: Construct, id: str, settings: StackSettings):
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Images",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            cors=[
                s3.CorsRule(
                    # Uploads are presigned PUTs; results are presigned GETs the page may fetch.
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET],
                    allowed_origins=settings.allowed_origins,
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=CORS_MAX_AGE_S,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
                ),
                *(
                    s3.LifecycleRule(id=f"expire-{prefix.rstrip('/')}", prefix=prefix, expiration=Duration.days(days))
                    for prefix, days in (
                        (UPLOADS_PREFIX, INTERMEDIATE_DAYS),
                        (PREPARED_PREFIX, INTERMEDIATE_DAYS),
                        (RESULTS_PREFIX, settings.results_lifecycle_days),
                    )
                ),
            ],
            removal_policy=settings.cdk_removal_policy,
            auto_delete_objects=settings.auto_delete_objects,
        )
