"""Streaming file transfer and prefix listing/deletion, on both backends (local folder, S3 via moto)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.infra.storage import LocalStorage, S3Storage, Storage
from shared.infra.storage.rules import InvalidObjectKey, ObjectNotFound
from tests.support.aws import create_bucket


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "storage", base_url="http://localhost:3000", secret=b"s" * 48)
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("aws_env")
    yield S3Storage(bucket=create_bucket(endpoint), endpoint_url=endpoint, region="us-east-1")


async def test_upload_and_download_file(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    stored = await storage.upload_file(
        "media/a/seg-00001.m4s", source, content_type="video/iso.segment", cache_control="public, max-age=60"
    )
    assert stored.size == len(data)
    head = await storage.head("media/a/seg-00001.m4s")
    assert head is not None and head.content_type == "video/iso.segment"
    target = tmp_path / "out.bin"
    fetched = await storage.download_file("media/a/seg-00001.m4s", target)
    assert target.read_bytes() == data and fetched.size == len(data)
    with pytest.raises(ObjectNotFound):
        await storage.download_file("media/a/missing", tmp_path / "missing")
    assert not (tmp_path / "missing").exists()


async def test_list_and_delete_prefix(storage: Storage) -> None:
    for key in ("m/x/1.txt", "m/x/sub/2.txt", "m/xy/3.txt", "m/y/4.txt"):
        await storage.put_bytes(key, b"k", content_type="text/plain")
    assert await storage.list_keys("m/x/") == ["m/x/1.txt", "m/x/sub/2.txt"]
    assert await storage.list_keys("m/x") == ["m/x/1.txt", "m/x/sub/2.txt", "m/xy/3.txt"]
    assert await storage.list_keys("m/none/") == []
    assert await storage.delete_prefix("m/x/") == 2
    assert await storage.list_keys("m/") == ["m/xy/3.txt", "m/y/4.txt"]
    for bad in ("", "/", "../m/"):
        with pytest.raises(InvalidObjectKey):
            await storage.list_keys(bad)
