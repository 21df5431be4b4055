"""Presigned PUTs are checked as AWS checks them (S3_SKIP_SIGNATURE_VALIDATION=0 in localstack.yml)."""

import pytest
import requests

from tests.support.localstack_calls import unique


@pytest.fixture
def upload_url(aws):
    s3 = aws("s3")
    bucket = unique("uploads")
    s3.create_bucket(Bucket=bucket)
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": "uploads/job-1", "ContentLength": 5, "ContentType": "image/jpeg"},
        ExpiresIn=300,
    )
    return url


def test_presigned_put_accepts_the_signed_length_and_type(upload_url):
    response = requests.put(upload_url, data=b"12345", headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert response.status_code == 200, response.text


def test_presigned_put_refuses_other_bytes(upload_url):
    response = requests.put(upload_url, data=b"123456", headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text


def test_presigned_put_refuses_another_content_type(upload_url):
    response = requests.put(upload_url, data=b"12345", headers={"Content-Type": "image/png"}, timeout=10)
    assert response.status_code == 403
