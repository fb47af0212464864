"""The object storage interface: presigned direct transfers, never bytes through a function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class PresignedRequest:
    """A URL the client calls directly, with the method and headers it must send."""

    url: str
    method: str
    headers: dict[str, str]
    expires_in: int


@dataclass(frozen=True)
class StoredObject:
    """Metadata of a stored object."""

    key: str
    size: int
    etag: str
    content_type: str | None


@dataclass(frozen=True)
class UploadedPart:
    """One part of a multipart upload."""

    part_number: int
    etag: str
    size: int


class Storage(Protocol):
    """Object storage: S3 (AWS, Supabase Storage, R2) in production, a local folder by default."""

    async def check(self) -> None:
        """Raise when the storage is not usable (health)."""
        ...

    async def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> StoredObject:
        """Store small objects written by the platform itself (manifests, thumbnails)."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """Read an object; NotFound when absent."""
        ...

    async def head(self, key: str) -> StoredObject | None:
        """Metadata, or None when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Delete an object (absent is fine)."""
        ...

    async def download_file(self, key: str, path: Path) -> StoredObject:
        """Stream an object into a local file (large media: never whole in memory); NotFound when absent."""
        ...

    async def upload_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        """Stream a local file into an object (multipart on S3 for large files)."""
        ...

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix` (a non-empty string prefix, as S3 means it), sorted."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (non-empty); return how many."""
        ...

    async def presign_download(
        self, key: str, *, expires_in: int | None = None, filename: str | None = None
    ) -> PresignedRequest:
        """A GET URL for the object."""
        ...

    async def presign_downloads(
        self, keys: Sequence[str], *, expires_in: int | None = None
    ) -> list[PresignedRequest]:
        """GET URLs for many objects, in the order of `keys` (signed together: one worker thread on S3)."""
        ...

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        expires_in: int | None = None,
        content_length: int | None = None,
        sha256: str | None = None,
    ) -> PresignedRequest:
        """A single PUT URL for an object up to the backend's single-request limit.

        `content_length` binds the exact body size and `sha256` (hex) the body's digest: storage refuses
        any other body, and the client must send the returned headers (x-amz-checksum-sha256).
        """
        ...

    async def create_multipart_upload(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; return its upload id."""
        ...

    async def presign_upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int | None = None,
        content_length: int | None = None,
    ) -> PresignedRequest:
        """A PUT URL for one part (1..10000); `content_length` binds the part's exact size."""
        ...

    async def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Parts uploaded so far (to resume an upload)."""
        ...

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: list[UploadedPart]
    ) -> StoredObject:
        """Assemble the parts into the object."""
        ...

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Discard an unfinished upload and its parts."""
        ...
