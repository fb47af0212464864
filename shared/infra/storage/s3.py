"""Object storage on the S3 API (AWS S3, Supabase Storage's S3 endpoint, R2, MinIO) through boto3."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from shared.infra.storage.base import PresignedRequest, StoredObject, UploadedPart
from shared.infra.storage.rules import (
    CHECKSUM_SHA256_HEADER,
    DEFAULT_CONTENT_TYPE,
    MAX_PART_BYTES,
    MAX_SINGLE_PUT_BYTES,
    EntityTooSmall,
    InvalidPart,
    NoSuchUpload,
    ObjectNotFound,
    check_completion_parts,
    checksum_sha256_value,
    content_disposition,
    resolve_expires_in,
    validate_content_length,
    validate_content_type,
    validate_key,
    validate_part_number,
    validate_prefix,
)

AddressingStyle = Literal["auto", "path", "virtual"]


def _translate(error: Exception, operation: str) -> Exception | None:
    """Our error for an S3 error code the caller can act on; None to let the original propagate."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return None
    code = str(response.get("Error", {}).get("Code", ""))
    if code == "NoSuchKey" or (operation in ("head_object", "download_file") and code in ("404", "NotFound")):
        return ObjectNotFound("No object is stored under this key.")
    if code == "NoSuchUpload":
        return NoSuchUpload("The upload does not exist (completed, aborted or never created).")
    if code in ("InvalidPart", "InvalidPartOrder"):
        return InvalidPart(str(response.get("Error", {}).get("Message") or "Invalid part."))
    if code == "EntityTooSmall":
        return EntityTooSmall("All parts but the last need at least 5 MiB.")
    return None


@contextlib.contextmanager
def _s3_errors(operation: str) -> Iterator[None]:
    try:
        yield
    except Exception as error:
        translated = _translate(error, operation)
        if translated is None:
            raise
        raise translated from error


class S3Storage:
    """S3 through boto3 on worker threads; the client is created on first use, once per instance."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        addressing_style: AddressingStyle | None = None,
        default_expires_in: int = 3600,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        # Custom endpoints (Supabase Storage, MinIO, moto) answer path-style URLs only; AWS itself
        # prefers virtual hosts (path style is deprecated there).
        self.addressing_style: AddressingStyle = addressing_style or ("path" if endpoint_url else "virtual")
        self.default_expires_in = resolve_expires_in(None, default_expires_in)
        # None means boto3's own chain: AWS_ACCESS_KEY_ID/..., profiles, the Lambda role.
        self._credentials = {
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "aws_session_token": session_token,
        }
        self._client_lock = threading.Lock()
        self._client_instance: Any = None

    def _client(self) -> Any:
        """The boto3 client, created once; callers are on worker threads, hence the lock."""
        with self._client_lock:
            if self._client_instance is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    signature_version="s3v4",
                    s3={"addressing_style": self.addressing_style},
                    # Checksums only when S3 demands them: S3-compatible stores (Supabase, R2) reject
                    # the CRC trailers that newer botocore adds by default.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    retries={"max_attempts": 3, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=60,
                )
                # A private session: boto3's default session is not safe to share across threads.
                session = boto3.session.Session(region_name=self.region, **self._credentials)
                self._client_instance = session.client("s3", endpoint_url=self.endpoint_url, config=config)
            return self._client_instance

    def _call(self, operation: str, **params: Any) -> Any:
        with _s3_errors(operation):
            return getattr(self._client(), operation)(Bucket=self.bucket, **params)

    def _presign(self, operation: str, params: dict[str, Any], expires_in: int) -> str:
        client = self._client()
        url: str = client.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires_in
        )
        return url

    async def check(self) -> None:
        """Raise when the bucket is missing or unreachable with our credentials."""
        await asyncio.to_thread(self._call, "head_bucket")

    async def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> StoredObject:
        """Store small objects written by the platform itself (manifests, thumbnails)."""
        validate_key(key)
        content_type = validate_content_type(content_type or DEFAULT_CONTENT_TYPE)
        response = await asyncio.to_thread(
            self._call, "put_object", Key=key, Body=data, ContentType=content_type
        )
        return StoredObject(key=key, size=len(data), etag=str(response["ETag"]), content_type=content_type)

    async def get_bytes(self, key: str) -> bytes:
        """Read an object; ObjectNotFound (a NotFound) when absent."""
        validate_key(key)
        return await asyncio.to_thread(self._get_bytes_sync, key)

    def _get_bytes_sync(self, key: str) -> bytes:
        response = self._call("get_object", Key=key)
        with contextlib.closing(response["Body"]) as body:
            data: bytes = body.read()
            return data

    async def head(self, key: str) -> StoredObject | None:
        """Metadata, or None when absent."""
        validate_key(key)
        try:
            response = await asyncio.to_thread(self._call, "head_object", Key=key)
        except ObjectNotFound:
            return None
        return StoredObject(
            key=key,
            size=int(response["ContentLength"]),
            etag=str(response["ETag"]),
            content_type=response.get("ContentType"),
        )

    async def delete(self, key: str) -> None:
        """Delete an object (absent is fine)."""
        validate_key(key)
        await asyncio.to_thread(self._call, "delete_object", Key=key)

    async def download_file(self, key: str, path: Path) -> StoredObject:
        """Stream the object into a local file (boto3's ranged transfer); ObjectNotFound when absent."""
        validate_key(key)
        return await asyncio.to_thread(self._download_sync, key, Path(path))

    def _download_sync(self, key: str, path: Path) -> StoredObject:
        head = self._call("head_object", Key=key)
        with _s3_errors("download_file"):
            self._client().download_file(self.bucket, key, str(path))
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            etag=str(head["ETag"]),
            content_type=head.get("ContentType"),
        )

    async def upload_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        """Stream a local file into the object (multipart above boto3's threshold)."""
        validate_key(key)
        validate_content_type(content_type)
        return await asyncio.to_thread(self._upload_sync, key, Path(path), content_type, cache_control)

    def _upload_sync(
        self, key: str, path: Path, content_type: str, cache_control: str | None
    ) -> StoredObject:
        extra = {"ContentType": content_type}
        if cache_control:
            extra["CacheControl"] = cache_control
        with _s3_errors("upload_file"):
            self._client().upload_file(str(path), self.bucket, key, ExtraArgs=extra)
        head = self._call("head_object", Key=key)
        return StoredObject(
            key=key, size=int(head["ContentLength"]), etag=str(head["ETag"]), content_type=content_type
        )

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix`, sorted."""
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list_keys_sync, prefix)

    def _list_keys_sync(self, prefix: str) -> list[str]:
        keys: list[str] = []
        with _s3_errors("list_objects_v2"):
            paginator = self._client().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(str(item["Key"]) for item in page.get("Contents", []))
        return sorted(keys)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (batches of 1000); return how many."""
        keys = await self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            answer = await asyncio.to_thread(
                self._call, "delete_objects", Delete={"Objects": batch, "Quiet": True}
            )
            # delete_objects answers 200 even when some keys failed: they are listed under Errors.
            if failed := answer.get("Errors"):
                raise OSError(f"{len(failed)} object(s) under {prefix!r} were not deleted: {failed[0]}")
        return len(keys)

    async def presign_download(
        self, key: str, *, expires_in: int | None = None, filename: str | None = None
    ) -> PresignedRequest:
        """A GET URL for the object; `filename` makes the browser save it under that name."""
        validate_key(key)
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        params: dict[str, Any] = {"Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        url = await asyncio.to_thread(self._presign, "get_object", params, lifetime)
        return PresignedRequest(url=url, method="GET", headers={}, expires_in=lifetime)

    async def presign_downloads(
        self, keys: Sequence[str], *, expires_in: int | None = None
    ) -> list[PresignedRequest]:
        """GET URLs for many objects, in order: signed in one worker-thread hop, not one per key.

        Presigning is local CPU work in boto3 (no request); a page of catalog cards has ~200 keys, and
        a thread hop each costs more than the signing itself.
        """
        for key in keys:
            validate_key(key)
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        if not keys:
            return []
        urls = await asyncio.to_thread(self._presign_downloads, list(keys), lifetime)
        return [PresignedRequest(url=url, method="GET", headers={}, expires_in=lifetime) for url in urls]

    def _presign_downloads(self, keys: list[str], expires_in: int) -> list[str]:
        return [self._presign("get_object", {"Key": key}, expires_in) for key in keys]

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        expires_in: int | None = None,
        content_length: int | None = None,
        sha256: str | None = None,
    ) -> PresignedRequest:
        """A PUT URL for one object up to 5 GiB; Content-Type (and Content-Length, the checksum) are signed.

        With `sha256`, S3 hashes the body itself and refuses a different one (BadDigest), so the URL can
        only ever store the announced file, even when used again after the upload completed.
        """
        validate_key(key)
        validate_content_type(content_type)
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        params: dict[str, Any] = {"Key": key, "ContentType": content_type}
        headers = {"Content-Type": content_type}
        if content_length is not None:
            # A signed header: the browser sets it from the body, so it is not among the headers to send.
            params["ContentLength"] = validate_content_length(content_length, MAX_SINGLE_PUT_BYTES)
        if sha256 is not None:
            params["ChecksumSHA256"] = headers[CHECKSUM_SHA256_HEADER] = checksum_sha256_value(sha256)
        url = await asyncio.to_thread(self._presign, "put_object", params, lifetime)
        return PresignedRequest(url=url, method="PUT", headers=headers, expires_in=lifetime)

    async def create_multipart_upload(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; return its upload id."""
        validate_key(key)
        validate_content_type(content_type)
        response = await asyncio.to_thread(
            self._call, "create_multipart_upload", Key=key, ContentType=content_type
        )
        return str(response["UploadId"])

    async def presign_upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int | None = None,
        content_length: int | None = None,
    ) -> PresignedRequest:
        """A PUT URL for one part (1..10000), its Content-Length signed when given; ETag is needed later."""
        validate_key(key)
        validate_part_number(part_number)
        if not upload_id:
            raise NoSuchUpload("The upload id is empty.")
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        params: dict[str, Any] = {"Key": key, "UploadId": upload_id, "PartNumber": part_number}
        if content_length is not None:
            params["ContentLength"] = validate_content_length(content_length, MAX_PART_BYTES)
        url = await asyncio.to_thread(self._presign, "upload_part", params, lifetime)
        return PresignedRequest(url=url, method="PUT", headers={}, expires_in=lifetime)

    async def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Parts uploaded so far, by ascending part number (to resume an upload)."""
        validate_key(key)
        return await asyncio.to_thread(self._list_parts_sync, key, upload_id)

    def _list_parts_sync(self, key: str, upload_id: str) -> list[UploadedPart]:
        parts = []
        with _s3_errors("list_parts"):
            paginator = self._client().get_paginator("list_parts")
            for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=upload_id):
                for part in page.get("Parts", []):
                    parts.append(
                        UploadedPart(
                            part_number=int(part["PartNumber"]),
                            etag=str(part["ETag"]),
                            size=int(part["Size"]),
                        )
                    )
        return sorted(parts, key=lambda part: part.part_number)

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: list[UploadedPart]
    ) -> StoredObject:
        """Assemble the parts into the object (S3 checks each ETag and the 5 MiB minimum)."""
        validate_key(key)
        check_completion_parts(parts)
        return await asyncio.to_thread(self._complete_sync, key, upload_id, parts)

    def _complete_sync(self, key: str, upload_id: str, parts: list[UploadedPart]) -> StoredObject:
        listed = [{"PartNumber": part.part_number, "ETag": part.etag} for part in parts]
        response = self._call(
            "complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload={"Parts": listed}
        )
        # The completion answer has no size or type; one HEAD gives both.
        head = self._call("head_object", Key=key)
        return StoredObject(
            key=key,
            size=int(head["ContentLength"]),
            etag=str(response.get("ETag") or head["ETag"]),
            content_type=head.get("ContentType"),
        )

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Discard an unfinished upload and its parts (an unknown upload is fine)."""
        validate_key(key)
        try:
            await asyncio.to_thread(self._call, "abort_multipart_upload", Key=key, UploadId=upload_id)
        except NoSuchUpload:
            return  # aborting twice, or after completion, is not an error worth surfacing
