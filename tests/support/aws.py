"""Environment for boto3 against moto: nothing may leave 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

REGION = "us-east-1"


def use_fake_aws(monkeypatch: pytest.MonkeyPatch, scratch: Path) -> None:
    """Dummy credentials, no profiles, no instance metadata, no proxies, no endpoint overrides."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(scratch / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "aws-credentials"))
    for name in (
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SQS",
        "AWS_ENDPOINT_URL_S3",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def create_bucket(endpoint: str, prefix: str = "cinema-test") -> str:
    """A new, uniquely named bucket on the S3 endpoint (moto); its name."""
    import uuid

    import boto3

    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)
    client.create_bucket(Bucket=bucket)
    return bucket
