"""One contract for both storage backends, exercised through the real HTTP path of presigned URLs:
the local folder via its ASGI app, and S3 via boto3 against a moto server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import pytest

from shared.errors import AppError, BadRequest, NotFound
from shared.infra.storage import (
    LocalStorage,
    PresignedRequest,
    S3Storage,
    Storage,
    UploadedPart,
    get_storage,
    reset_storage,
)
from shared.infra.storage.local_http import app as default_storage_app
from shared.infra.storage.local_http import create_storage_app
from shared.infra.storage.rules import (
    BadDigest,
    IncompleteBody,
    InvalidObjectKey,
    InvalidPart,
    InvalidStorageArgument,
    NoSuchUpload,
    ObjectKeyConflict,
    ObjectNotFound,
    multipart_etag,
)
from tests.support.aws import create_bucket

MiB = 1024 * 1024
LOCAL_BASE_URL = "http://localhost:3000"
SECRET = b"s" * 48


class FakeClock:
    """A clock the test moves forward, so expiry needs no sleeping."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    name: str
    storage: Storage
    http: httpx.AsyncClient
    clock: FakeClock | None = None  # local only: moto accepts any signature and any expiry
    prefix: str = field(default_factory=lambda: f"t/{uuid.uuid4().hex}")

    @property
    def verifies_signatures(self) -> bool:
        return self.clock is not None

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    async def call(
        self, request: PresignedRequest, content: bytes | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        merged = {**request.headers, **(headers or {})}
        return await self.http.request(request.method, request.url, content=content, headers=merged)


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        clock = FakeClock()
        storage = LocalStorage(tmp_path / "storage", base_url=LOCAL_BASE_URL, secret=SECRET, clock=clock)

        async def provider() -> Storage:
            return storage

        transport = httpx.ASGITransport(app=create_storage_app(provider))
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE_URL) as http:
            yield Backend("local", storage, http, clock=clock)
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    request.getfixturevalue("aws_env")
    s3 = S3Storage(bucket=create_bucket(endpoint), endpoint_url=endpoint, region="us-east-1")
    async with httpx.AsyncClient(trust_env=False, timeout=30) as http:
        yield Backend("s3", s3, http)


def error_code(error: pytest.ExceptionInfo[AppError]) -> str:
    return error.value.code


def tamper(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
    query.update(changes)
    from urllib.parse import urlencode

    return urlunsplit(parts._replace(query=urlencode(query)))


# --- objects written by the platform -------------------------------------------------------------------


async def test_put_get_head_delete(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("manifests/master.m3u8")
    data = b"#EXTM3U\n#EXT-X-VERSION:7\n"

    stored = await storage.put_bytes(key, data, content_type="application/vnd.apple.mpegurl")

    assert stored.key == key and stored.size == len(data)
    assert stored.etag == f'"{hashlib.md5(data).hexdigest()}"'
    assert await storage.get_bytes(key) == data
    head = await storage.head(key)
    assert head is not None
    assert (head.size, head.etag, head.content_type) == (
        len(data),
        stored.etag,
        "application/vnd.apple.mpegurl",
    )

    await storage.put_bytes(key, b"v2")  # overwrite; no content type given means octet-stream
    assert await storage.get_bytes(key) == b"v2"
    head = await storage.head(key)
    assert head is not None and head.size == 2 and head.content_type == "application/octet-stream"

    await storage.delete(key)
    assert await storage.head(key) is None
    with pytest.raises(NotFound) as missing:
        await storage.get_bytes(key)
    assert isinstance(missing.value, ObjectNotFound) and missing.value.code == "object_not_found"
    await storage.delete(key)  # absent is fine


async def test_check_passes(backend: Backend) -> None:
    await backend.storage.check()


# --- presigned single transfers ------------------------------------------------------------------------


async def test_presigned_upload_then_download(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/source.mp4")
    body = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and a bit, crossing the local write buffer

    upload = await storage.presign_upload(key, content_type="video/mp4", expires_in=300)
    assert (
        upload.method == "PUT"
        and upload.headers == {"Content-Type": "video/mp4"}
        and upload.expires_in == 300
    )
    put = await backend.call(upload, content=body)
    assert put.status_code == 200, put.text
    expected_etag = f'"{hashlib.md5(body).hexdigest()}"'
    assert put.headers["etag"] == expected_etag

    head = await storage.head(key)
    assert head is not None
    assert (head.size, head.etag, head.content_type) == (len(body), expected_etag, "video/mp4")

    download = await storage.presign_download(key)
    assert download.method == "GET" and download.expires_in == 3600
    got = await backend.call(download)
    assert got.status_code == 200
    assert got.content == body
    assert got.headers["content-type"] == "video/mp4"
    assert got.headers["etag"] == expected_etag

    named = await storage.presign_download(key, filename="Le Film (2024).mp4")
    got = await backend.call(named)
    assert got.status_code == 200 and got.content == body
    disposition = got.headers["content-disposition"]
    assert (
        disposition.startswith("attachment;") and "filename*=UTF-8''Le%20Film%20%282024%29.mp4" in disposition
    )


async def test_presigned_upload_binds_content_type(backend: Backend) -> None:
    key = backend.key("uploads/bound.mp4")
    upload = await backend.storage.presign_upload(key, content_type="video/mp4")
    if not backend.verifies_signatures:
        # moto does not verify presigned signatures; what S3 verifies is that content-type is signed.
        signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert "content-type" in signed
        return
    refused = await backend.call(upload, content=b"<html>", headers={"Content-Type": "text/html"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "content_type_mismatch"
    missing = await backend.http.put(upload.url, content=b"x")  # no Content-Type at all
    assert missing.status_code == 403
    assert await backend.storage.head(key) is None


async def test_range_request(backend: Backend) -> None:
    key = backend.key("segments/seg-1.m4s")
    data = bytes(range(100))
    await backend.storage.put_bytes(key, data, content_type="video/iso.segment")
    download = await backend.storage.presign_download(key)

    part = await backend.call(download, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == data[10:20]
    assert part.headers["content-range"] == "bytes 10-19/100"

    tail = await backend.call(download, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == data[-5:]
    open_ended = await backend.call(download, headers={"Range": "bytes=95-"})
    assert open_ended.status_code == 206 and open_ended.content == data[95:]
    beyond = await backend.call(download, headers={"Range": "bytes=90-500"})
    assert beyond.status_code == 206 and beyond.content == data[90:]
    unsatisfiable = await backend.call(download, headers={"Range": "bytes=200-300"})
    assert unsatisfiable.status_code == 416
    open_ended_past_the_end = await backend.call(download, headers={"Range": "bytes=200-"})
    assert open_ended_past_the_end.status_code == 416


async def test_presigned_upload_binds_length_and_sha256(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/bound-body.mp4")
    body = b"the announced file" * 100
    digest = hashlib.sha256(body).hexdigest()
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()

    upload = await storage.presign_upload(
        key, content_type="video/mp4", content_length=len(body), sha256=digest.upper()
    )

    # The client sends the checksum header; Content-Length is the body's own (browsers set it).
    assert upload.headers == {"Content-Type": "video/mp4", "x-amz-checksum-sha256": checksum}
    if not backend.verifies_signatures:
        # moto verifies neither signatures nor checksums; S3 refuses a body other than the signed
        # Content-Length (SignatureDoesNotMatch) and hashes it against x-amz-checksum-sha256 (BadDigest).
        signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
        assert {"content-length", "content-type", "x-amz-checksum-sha256"} <= set(signed)
        put = await backend.call(upload, content=body)
        assert put.status_code == 200, put.text
        assert await storage.get_bytes(key) == body
        return
    same_size_other_bytes = body[:-1] + b"!"
    wrong = await backend.call(upload, content=same_size_other_bytes)
    assert wrong.status_code == 400 and wrong.json()["code"] == "bad_digest"
    assert await storage.head(key) is None
    shorter = await backend.call(upload, content=body[:-1])
    assert shorter.status_code == 403 and shorter.json()["code"] == "content_length_mismatch"
    no_checksum = await backend.http.put(upload.url, content=body, headers={"Content-Type": "video/mp4"})
    assert no_checksum.status_code == 403 and no_checksum.json()["code"] == "checksum_header_mismatch"
    other_checksum = base64.b64encode(hashlib.sha256(same_size_other_bytes).digest()).decode()
    forged_header = await backend.call(
        upload, content=same_size_other_bytes, headers={"x-amz-checksum-sha256": other_checksum}
    )
    assert forged_header.status_code == 403 and forged_header.json()["code"] == "checksum_header_mismatch"

    async def streamed() -> AsyncIterator[bytes]:  # chunked: no Content-Length, as S3 refuses too
        yield body

    chunked = await backend.http.put(upload.url, content=streamed(), headers=upload.headers)
    assert chunked.status_code == 403 and chunked.json()["code"] == "content_length_mismatch"
    for forged in (tamper(upload.url, len=str(len(body) + 1)), tamper(upload.url, sha="0" * 64)):
        refused = await backend.http.put(forged, content=body, headers=upload.headers)
        assert refused.status_code == 403 and refused.json()["code"] == "invalid_signature"
    assert await storage.head(key) is None
    assert isinstance(storage, LocalStorage) and not any((storage.root / ".tmp").iterdir())

    put = await backend.call(upload, content=body)
    assert put.status_code == 200, put.text
    assert put.headers["x-amz-checksum-sha256"] == checksum
    stored = await storage.head(key)
    assert stored is not None and stored.size == len(body)

    # Used again after the upload, the URL cannot replace the file with anything else.
    again = await backend.call(upload, content=same_size_other_bytes)
    assert again.status_code == 400 and again.json()["code"] == "bad_digest"
    assert await storage.get_bytes(key) == body
    assert (await storage.head(key)) == stored


async def test_presign_upload_refuses_bad_bindings(backend: Backend) -> None:
    key = backend.key("uploads/args.mp4")
    storage = backend.storage
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.presign_upload(key, content_type="video/mp4", content_length=-1),
        lambda: storage.presign_upload(key, content_type="video/mp4", content_length=5 * 1024**3 + 1),
        lambda: storage.presign_upload(key, content_type="video/mp4", sha256="ab" * 31),
        lambda: storage.presign_upload(key, content_type="video/mp4", sha256="zz" * 32),
        lambda: storage.presign_upload_part(key, "a" * 32, 1, content_length=-5),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidStorageArgument):
            await attempt()


async def test_local_body_length_checked_while_writing(local: Backend) -> None:
    storage = local.storage
    assert isinstance(storage, LocalStorage)
    key = local.key("direct.bin")

    async def body(*chunks: bytes) -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    for chunks in ((b"x" * 9,), (b"x" * 6, b"x" * 5)):
        with pytest.raises(IncompleteBody):
            await storage.write_object_stream(
                key, body(*chunks), content_type="text/plain", content_length=10
            )
    with pytest.raises(BadDigest):
        await storage.write_object_stream(
            key, body(b"x" * 10), content_type="text/plain", sha256=hashlib.sha256(b"y" * 10).hexdigest()
        )
    assert await storage.head(key) is None
    assert not any((storage.root / ".tmp").iterdir())
    stored = await storage.write_object_stream(
        key,
        body(b"x" * 4, b"x" * 6),
        content_type="text/plain",
        content_length=10,
        sha256=hashlib.sha256(b"x" * 10).hexdigest(),
    )
    assert stored.size == 10


# --- multipart -----------------------------------------------------------------------------------------


async def upload_part(backend: Backend, key: str, upload_id: str, number: int, body: bytes) -> str:
    request = await backend.storage.presign_upload_part(key, upload_id, number)
    assert request.method == "PUT"
    response = await backend.call(request, content=body)
    assert response.status_code == 200, response.text
    etag: str = response.headers["etag"]
    assert etag == f'"{hashlib.md5(body).hexdigest()}"'
    return etag


async def test_multipart_upload_with_resume(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/big.mkv")
    first, second = b"a" * (5 * MiB), b"the last part may be small"

    upload_id = await storage.create_multipart_upload(key, content_type="video/x-matroska")
    assert upload_id
    etag1 = await upload_part(backend, key, upload_id, 1, first)

    # The browser reloads: it asks what was uploaded and carries on from there.
    resumed = await storage.list_parts(key, upload_id)
    assert resumed == [UploadedPart(part_number=1, etag=etag1, size=len(first))]
    etag2 = await upload_part(backend, key, upload_id, 2, second)
    parts = await storage.list_parts(key, upload_id)
    assert [(p.part_number, p.etag, p.size) for p in parts] == [
        (1, etag1, len(first)),
        (2, etag2, len(second)),
    ]

    stored = await storage.complete_multipart_upload(key, upload_id, parts)

    assert re.fullmatch(r'"[0-9a-f]{32}-2"', stored.etag)
    assert stored.etag == multipart_etag([etag1, etag2])
    assert stored.size == len(first) + len(second)
    assert stored.content_type == "video/x-matroska"
    assert await storage.get_bytes(key) == first + second
    head = await storage.head(key)
    assert head is not None and head.etag == stored.etag and head.content_type == "video/x-matroska"
    with pytest.raises(NotFound):
        await storage.list_parts(key, upload_id)  # completed uploads are gone


async def test_part_urls_bind_their_length(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/bound-parts.mp4")
    first, last = b"1" * (5 * MiB), b"the remainder"
    upload_id = await storage.create_multipart_upload(key, content_type="video/mp4")
    one = await storage.presign_upload_part(key, upload_id, 1, content_length=len(first))
    two = await storage.presign_upload_part(key, upload_id, 2, content_length=len(last))
    assert one.headers == {} and two.headers == {}
    if not backend.verifies_signatures:
        for request in (one, two):
            signed = parse_qs(urlsplit(request.url).query)["X-Amz-SignedHeaders"][0].split(";")
            assert "content-length" in signed  # S3 refuses another length (SignatureDoesNotMatch)
    else:
        for request, content in ((one, first[:-1]), (two, last + b"!"), (two, first)):
            refused = await backend.call(request, content=content)
            assert refused.status_code == 403 and refused.json()["code"] == "content_length_mismatch"
        assert await storage.list_parts(key, upload_id) == []
        forged = tamper(two.url, len=str(len(first)))
        assert (await backend.http.put(forged, content=first)).json()["code"] == "invalid_signature"
    for request, content in ((one, first), (two, last)):
        assert (await backend.call(request, content=content)).status_code == 200
    parts = await storage.list_parts(key, upload_id)
    assert [(p.part_number, p.size) for p in parts] == [(1, len(first)), (2, len(last))]
    stored = await storage.complete_multipart_upload(key, upload_id, parts)
    assert stored.size == len(first) + len(last)


async def test_multipart_completion_checks_parts(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/checked.mp4")
    upload_id = await storage.create_multipart_upload(key, content_type="video/mp4")
    etag1 = await upload_part(backend, key, upload_id, 1, b"1" * (5 * MiB))
    etag2 = await upload_part(backend, key, upload_id, 2, b"2" * 10)

    wrong_etag = [UploadedPart(1, etag1, 5 * MiB), UploadedPart(2, '"' + "0" * 32 + '"', 10)]
    with pytest.raises(BadRequest) as error:
        await storage.complete_multipart_upload(key, upload_id, wrong_etag)
    assert error.value.code == "invalid_part"

    not_uploaded = [UploadedPart(1, etag1, 5 * MiB), UploadedPart(3, etag2, 10)]
    with pytest.raises(InvalidPart):
        await storage.complete_multipart_upload(key, upload_id, not_uploaded)

    out_of_order = [UploadedPart(2, etag2, 10), UploadedPart(1, etag1, 5 * MiB)]
    with pytest.raises(InvalidPart):
        await storage.complete_multipart_upload(key, upload_id, out_of_order)
    with pytest.raises(InvalidPart):
        await storage.complete_multipart_upload(key, upload_id, [])

    # The failures left the upload intact: it still completes, with unquoted ETags too (S3 accepts both).
    parts = [UploadedPart(1, etag1.strip('"'), 5 * MiB), UploadedPart(2, etag2.strip('"'), 10)]
    stored = await storage.complete_multipart_upload(key, upload_id, parts)
    assert stored.size == 5 * MiB + 10


async def test_multipart_parts_below_minimum_refused(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/small-parts.bin")
    upload_id = await storage.create_multipart_upload(key, content_type="application/octet-stream")
    etag1 = await upload_part(backend, key, upload_id, 1, b"small")
    etag2 = await upload_part(backend, key, upload_id, 2, b"also small")
    with pytest.raises(BadRequest) as error:
        await storage.complete_multipart_upload(
            key, upload_id, [UploadedPart(1, etag1, 5), UploadedPart(2, etag2, 10)]
        )
    assert error.value.code == "entity_too_small"
    # A single part may be any size: it is the last one.
    single = await storage.complete_multipart_upload(key, upload_id, [UploadedPart(1, etag1, 5)])
    assert single.size == 5 and re.fullmatch(r'"[0-9a-f]{32}-1"', single.etag)
    assert await storage.get_bytes(key) == b"small"


async def test_multipart_abort(backend: Backend) -> None:
    storage, key = backend.storage, backend.key("uploads/abandoned.mp4")
    upload_id = await storage.create_multipart_upload(key, content_type="video/mp4")
    await upload_part(backend, key, upload_id, 1, b"x" * 1000)

    await storage.abort_multipart_upload(key, upload_id)

    with pytest.raises(NotFound) as error:
        await storage.list_parts(key, upload_id)
    assert isinstance(error.value, NoSuchUpload) and error.value.code == "no_such_upload"
    if backend.name == "local":  # moto 5.2.5 answers 500 (a KeyError) here; AWS answers NoSuchUpload
        with pytest.raises(NoSuchUpload):
            await storage.complete_multipart_upload(
                key, upload_id, [UploadedPart(1, '"' + "0" * 32 + '"', 1000)]
            )
    assert await storage.head(key) is None
    await storage.abort_multipart_upload(key, upload_id)  # twice is fine
    if backend.verifies_signatures:
        late = await backend.call(await storage.presign_upload_part(key, upload_id, 2), content=b"late")
        assert late.status_code == 404 and late.json()["code"] == "no_such_upload"


# --- signatures and expiry -----------------------------------------------------------------------------


async def test_expired_url_refused(backend: Backend) -> None:
    key = backend.key("expiring.txt")
    await backend.storage.put_bytes(key, b"soon gone", content_type="text/plain")
    download = await backend.storage.presign_download(key, expires_in=60)
    upload = await backend.storage.presign_upload(key, content_type="text/plain", expires_in=60)
    if backend.clock is None:
        # moto ignores expiry; S3 enforces X-Amz-Expires, which must carry the requested lifetime.
        assert parse_qs(urlsplit(download.url).query)["X-Amz-Expires"] == ["60"]
        assert parse_qs(urlsplit(upload.url).query)["X-Amz-Expires"] == ["60"]
        return
    assert (await backend.call(download)).status_code == 200
    backend.clock.advance(61)
    for request in (download, upload):
        refused = await backend.call(request, content=b"new" if request.method == "PUT" else None)
        assert refused.status_code == 403
        assert refused.json()["code"] == "url_expired"
    assert await backend.storage.get_bytes(key) == b"soon gone"


async def test_presign_downloads_signs_many_keys_in_order(backend: Backend) -> None:
    keys = [backend.key(f"many/{index}.txt") for index in range(5)]
    for index, key in enumerate(keys):
        await backend.storage.put_bytes(key, f"object {index}".encode(), content_type="text/plain")
    signed = await backend.storage.presign_downloads([*keys, keys[0]], expires_in=120)
    assert [request.method for request in signed] == ["GET"] * 6
    assert {request.expires_in for request in signed} == {120}
    for index, request in enumerate(signed):
        fetched = await backend.call(request)
        assert fetched.status_code == 200 and fetched.content == f"object {index % 5}".encode()
    assert await backend.storage.presign_downloads([]) == []
    with pytest.raises(InvalidObjectKey):
        await backend.storage.presign_downloads([keys[0], "../escape"])
    if backend.clock is not None:  # one expiry for the whole batch
        backend.clock.advance(121)
        assert (await backend.call(signed[0])).status_code == 403


async def test_tampered_url_refused(backend: Backend) -> None:
    key = backend.key("private/file.txt")
    await backend.storage.put_bytes(key, b"secret", content_type="text/plain")
    download = await backend.storage.presign_download(key)
    if not backend.verifies_signatures:
        # moto accepts any signature; check the URL is SigV4 with the host signed, as S3 verifies.
        query = parse_qs(urlsplit(download.url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert "host" in query["X-Amz-SignedHeaders"][0].split(";")
        assert re.fullmatch(r"[0-9a-f]{64}", query["X-Amz-Signature"][0])
        return
    sig = parse_qs(urlsplit(download.url).query)["sig"][0]
    other = await backend.storage.presign_download(backend.key("other.txt"))
    forged = [
        tamper(download.url, sig=sig[:-2] + ("AA" if not sig.endswith("AA") else "BB")),
        tamper(download.url, exp=str(int(parse_qs(urlsplit(download.url).query)["exp"][0]) + 3600)),
        tamper(download.url, sig=""),
        tamper(download.url, sig="é" * 43),
        tamper(download.url, op="put"),
        download.url.replace("private/file.txt", "private/other.txt"),
        tamper(other.url, sig=sig),
    ]
    for url in forged:
        refused = await backend.http.get(url)
        assert refused.status_code == 403, url
        assert refused.json()["code"] == "invalid_signature"
    # A GET URL does not allow a PUT, and an upload URL does not allow a GET.
    put_on_get = await backend.http.put(download.url, content=b"overwrite")
    assert put_on_get.status_code == 403
    upload = await backend.storage.presign_upload(key, content_type="text/plain")
    assert (await backend.http.get(upload.url)).status_code == 403
    assert await backend.storage.get_bytes(key) == b"secret"


BAD_KEYS = [
    "",
    "../etc/passwd",
    "a/../../b",
    "a/./b",
    "/etc/passwd",
    "a\\b",
    "..\\windows",
    "a\x00b",
    "a//b",
    "a/",
    "a b",
    "a\nb",
    "é",
    ".meta/x",
    "x/.multipart/y",
    "k" * 1025,
    "a/" + "s" * 256,
]


@pytest.mark.parametrize("bad", BAD_KEYS, ids=lambda key: repr(key)[:30])
async def test_unsafe_keys_refused(backend: Backend, bad: str) -> None:
    storage = backend.storage
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.put_bytes(bad, b"x"),
        lambda: storage.get_bytes(bad),
        lambda: storage.head(bad),
        lambda: storage.delete(bad),
        lambda: storage.presign_download(bad),
        lambda: storage.presign_upload(bad, content_type="text/plain"),
        lambda: storage.create_multipart_upload(bad, content_type="text/plain"),
        lambda: storage.presign_upload_part(bad, "0" * 32, 1),
        lambda: storage.list_parts(bad, "0" * 32),
        lambda: storage.abort_multipart_upload(bad, "0" * 32),
    ]
    for attempt in attempts:
        with pytest.raises(BadRequest) as error:
            await attempt()
        assert isinstance(error.value, InvalidObjectKey)
        assert (error.value.status, error.value.code) == (400, "invalid_object_key")


async def test_key_limits_accepted(backend: Backend) -> None:
    stem = backend.key("")
    longest = stem + "/".join(["k" * 200] * 4) + "/"
    longest += "k" * (1024 - len(longest))
    assert len(longest) == 1024
    await backend.storage.put_bytes(longest, b"ok")
    assert await backend.storage.get_bytes(longest) == b"ok"
    odd = backend.key("a-b_c.d~e!(f)=g+h@i,j.ts")
    await backend.storage.put_bytes(odd, b"odd", content_type="video/mp2t")
    got = await backend.call(await backend.storage.presign_download(odd))
    assert got.status_code == 200 and got.content == b"odd"


# --- local only: the HTTP details of the dev server ----------------------------------------------------


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Backend]:
    clock = FakeClock()
    storage = LocalStorage(tmp_path / "storage", base_url=LOCAL_BASE_URL, secret=SECRET, clock=clock)

    async def provider() -> Storage:
        return storage

    transport = httpx.ASGITransport(app=create_storage_app(provider))
    async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE_URL) as http:
        yield Backend("local", storage, http, clock=clock)


async def test_local_path_traversal_over_http(local: Backend) -> None:
    for path in ("/_storage/%2E%2E/signing-secret", "/_storage/a/%2e%2e/%2e%2e/x", "/_storage/.meta/x"):
        response = await local.http.get(path + "?op=get&exp=9999999999&sig=x")
        assert response.status_code == 400, path
        assert response.json()["code"] == "invalid_object_key"
    assert (await local.http.get("/_storage/a?op=get")).json()["code"] == "invalid_signature"
    assert (await local.http.get("/_storage/a")).status_code == 403


async def test_local_url_shape_and_head(local: Backend) -> None:
    storage = local.storage
    assert isinstance(storage, LocalStorage)
    key = local.key("v/master.m3u8")
    stored = await storage.put_bytes(key, b"#EXTM3U\n", content_type="application/vnd.apple.mpegurl")
    download = await storage.presign_download(key, expires_in=120)
    parts = urlsplit(download.url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}" == LOCAL_BASE_URL
    assert parts.path == f"/_storage/{key}"
    assert query["op"] == ["get"] and int(query["exp"][0]) == int(storage._clock()) + 120
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["sig"][0])

    head = await local.http.head(download.url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "8"
    assert head.headers["etag"] == stored.etag
    assert head.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert head.headers["x-content-type-options"] == "nosniff"
    not_modified = await local.call(download, headers={"If-None-Match": stored.etag})
    assert not_modified.status_code == 304
    stale_if_range = await local.call(download, headers={"Range": "bytes=0-1", "If-Range": '"old"'})
    assert stale_if_range.status_code == 200 and stale_if_range.content == b"#EXTM3U\n"

    part_url = await storage.presign_upload_part(key, "a" * 32, 7)
    part_query = parse_qs(urlsplit(part_url.url).query)
    assert part_query["op"] == ["part"] and part_query["upload"] == ["a" * 32] and part_query["part"] == ["7"]
    upload_url = await storage.presign_upload(key, content_type="video/mp4")
    assert parse_qs(urlsplit(upload_url.url).query)["ct"] == ["video/mp4"]


async def test_local_cors(local: Backend) -> None:
    key = local.key("cors/part.bin")
    upload_id = await local.storage.create_multipart_upload(key, content_type="video/mp4")
    request = await local.storage.presign_upload_part(key, upload_id, 1)
    preflight = await local.http.options(
        request.url,
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert "x-amz-checksum-sha256" in preflight.headers["access-control-allow-headers"].lower()

    put = await local.call(request, content=b"chunk", headers={"Origin": "http://localhost:5173"})
    assert put.status_code == 200
    assert "ETag" in put.headers["access-control-expose-headers"]
    assert put.headers["access-control-allow-origin"] == "*"


async def test_local_size_limits(local: Backend) -> None:
    storage = local.storage
    assert isinstance(storage, LocalStorage)
    storage.max_object_size = 10
    storage.max_part_size = 10
    key = local.key("limited.bin")
    upload = await storage.presign_upload(key, content_type="application/octet-stream")
    declared = await local.call(upload, content=b"x" * 11)
    assert declared.status_code == 413 and declared.json()["code"] == "object_too_large"

    async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while streaming
        for _ in range(3):
            yield b"x" * 5

    chunked = await local.http.put(upload.url, content=streamed(), headers=upload.headers)
    assert chunked.status_code == 413
    assert await storage.head(key) is None
    assert not any((storage.root / ".tmp").iterdir())  # the partial body was removed

    upload_id = await storage.create_multipart_upload(key, content_type="application/octet-stream")
    part = await local.call(await storage.presign_upload_part(key, upload_id, 1), content=b"y" * 11)
    assert part.status_code == 413
    assert await storage.list_parts(key, upload_id) == []


async def test_local_object_and_prefix_conflict(local: Backend) -> None:
    storage = local.storage
    await storage.put_bytes(local.key("a"), b"file")
    with pytest.raises(ObjectKeyConflict) as error:
        await storage.put_bytes(local.key("a/b"), b"nested")
    assert error.value.status == 409
    await storage.delete(local.key("a"))
    await storage.put_bytes(local.key("a/b"), b"nested")
    await storage.delete(local.key("a/b"))
    await storage.put_bytes(local.key("a"), b"file again")  # the emptied folder was pruned
    assert await storage.get_bytes(local.key("a")) == b"file again"


async def test_local_etag_survives_missing_metadata(local: Backend) -> None:
    storage = local.storage
    assert isinstance(storage, LocalStorage)
    key = local.key("handmade.bin")
    path = storage.root / key
    path.parent.mkdir(parents=True)
    path.write_bytes(b"copied in by hand")
    head = await storage.head(key)
    assert head is not None
    assert head.etag == f'"{hashlib.md5(b"copied in by hand").hexdigest()}"'
    assert head.content_type == "application/octet-stream"


# --- choosing the backend from settings ----------------------------------------------------------------


async def test_get_storage_follows_settings(settings_env: Any, moto_endpoint: str, aws_env: None) -> None:
    from shared.settings import get_settings

    try:
        settings_env(STORAGE_BACKEND="local", PUBLIC_BASE_URL="http://localhost:3000")
        await reset_storage()
        storage = await get_storage()
        assert isinstance(storage, LocalStorage)
        assert storage.root == (get_settings().data_dir / "storage").absolute()
        assert storage.base_url == "http://localhost:3000"
        assert storage.default_expires_in == get_settings().storage_url_ttl_seconds
        assert await get_storage() is storage  # one per event loop

        # The module-level app the dev server mounts serves this very storage.
        key = f"t/{uuid.uuid4().hex}/via-default-app.txt"
        await storage.put_bytes(key, b"hello", content_type="text/plain")
        transport = httpx.ASGITransport(app=default_storage_app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE_URL) as http:
            response = await http.get((await storage.presign_download(key)).url)
        assert response.status_code == 200 and response.content == b"hello"
        await storage.delete(key)

        bucket = create_bucket(moto_endpoint)
        settings_env(
            STORAGE_BACKEND="s3",
            S3_BUCKET=bucket,
            S3_ENDPOINT_URL=moto_endpoint,
            STORAGE_URL_TTL_SECONDS="600",
        )
        await reset_storage()
        s3 = await get_storage()
        assert isinstance(s3, S3Storage)
        assert (s3.bucket, s3.endpoint_url, s3.region) == (bucket, moto_endpoint, "us-east-1")
        assert s3.addressing_style == "path" and s3.default_expires_in == 600
        await s3.check()
        await s3.put_bytes("t/settings.txt", b"s3")
        assert await s3.get_bytes("t/settings.txt") == b"s3"

        # The dev server's storage app refuses to serve when the backend is not the local folder.
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_BASE_URL) as http:
            response = await http.get("/_storage/t/x?op=get&exp=1&sig=x")
        assert response.status_code == 404
    finally:
        await reset_storage()


async def test_s3_check_fails_without_bucket(moto_endpoint: str, aws_env: None) -> None:
    storage = S3Storage(bucket=f"missing-{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint)
    with pytest.raises(Exception, match=r"404|Not Found|NoSuchBucket"):
        await storage.check()
