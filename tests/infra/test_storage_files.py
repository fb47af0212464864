"""Streaming file transfer and prefix listing/deletion, on both backends (local folder, S3 via moto)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.infra.storage import LocalStorage, S3Storage, Storage
from shared.infra.storage.rules import InvalidObjectKey, ObjectNotFound


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "storage", base_url="http://localhost:3000", secret=b"s" * 48)
        return
    import boto3

    endpoint = request.getfixturevalue("moto_server")
    request.getfixturevalue("aws_env")
    bucket = f"cinema-test-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    yield S3Storage(bucket=bucket, endpoint_url=endpoint, region="us-east-1")


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
