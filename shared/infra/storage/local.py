"""Object storage in a local folder, with HMAC-signed URLs that the dev server serves (see local_http)."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast
from urllib.parse import quote, urlencode

from shared.infra.storage.base import PresignedRequest, StoredObject, UploadedPart
from shared.infra.storage.rules import (
    CHECKSUM_SHA256_HEADER,
    DEFAULT_CONTENT_TYPE,
    MAX_PART_BYTES,
    MAX_SINGLE_PUT_BYTES,
    MIN_PART_BYTES,
    STORAGE_PATH_PREFIX,
    BadDigest,
    EntityTooSmall,
    IncompleteBody,
    InvalidPart,
    InvalidSignature,
    MiB,
    NoSuchUpload,
    ObjectKeyConflict,
    ObjectNotFound,
    ObjectTooLarge,
    UrlExpired,
    check_completion_parts,
    checksum_sha256_value,
    content_disposition,
    multipart_etag,
    normalize_etag,
    quote_etag,
    resolve_expires_in,
    validate_content_length,
    validate_content_type,
    validate_key,
    validate_part_number,
    validate_prefix,
    validate_sha256,
)

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_DIGITS = re.compile(r"[0-9]{1,12}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WRITE_BUFFER = 1 * MiB
_COPY_BUFFER = 4 * MiB
SignedOp = Literal["get", "put", "part"]


@dataclass(frozen=True)
class SignedGrant:
    """What a verified signed URL allows."""

    op: SignedOp
    key: str
    expires_at: int
    upload_id: str = ""
    part_number: int = 0
    content_type: str = ""
    filename: str = ""
    content_length: int | None = None  # the exact body size the upload must have, when bound
    sha256: str = ""  # hex digest the body must hash to (put only), when bound


@dataclass
class OpenedObject:
    """An object opened for reading: the handle pins this version even if the key is overwritten."""

    file: BinaryIO
    info: StoredObject
    modified: float


def _md5_file(handle: BinaryIO) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    handle.seek(0)
    while chunk := handle.read(_COPY_BUFFER):
        digest.update(chunk)
    handle.seek(0)
    return quote_etag(digest.hexdigest())


def _write_chunk(handle: BinaryIO, digest: Any, data: bytes, extra: Any = None) -> None:
    handle.write(data)
    digest.update(data)
    if extra is not None:
        extra.update(data)


class LocalStorage:
    """Objects as files under `root`; presigned URLs are HMAC-signed and served by local_http."""

    def __init__(
        self,
        root: Path,
        *,
        base_url: str,
        secret: bytes,
        default_expires_in: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the signing secret must be at least 32 bytes")
        self.root = Path(root).absolute()
        self.base_url = str(base_url).rstrip("/")
        self.default_expires_in = resolve_expires_in(None, default_expires_in)
        self.max_object_size = MAX_SINGLE_PUT_BYTES
        self.max_part_size = MAX_PART_BYTES
        self.min_part_size = MIN_PART_BYTES
        self._secret = secret
        self._clock = clock

    # --- layout -------------------------------------------------------------------------------------
    # Data files live at root/<key>; their metadata mirrors the same tree under root/.meta, so the two
    # trees can only collide where the data itself would. Hidden folders cannot be reached by a key.

    def _object_path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self.root / ".meta" / validate_key(key)

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise NoSuchUpload("The upload id is not one this storage issued.")
        return self.root / ".multipart" / upload_id

    # --- the Storage protocol -----------------------------------------------------------------------

    async def check(self) -> None:
        """Raise when the storage folder cannot be created or written."""
        await asyncio.to_thread(self._check_sync)

    async def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> StoredObject:
        """Store small objects written by the platform itself (manifests, thumbnails)."""
        validate_key(key)
        content_type = validate_content_type(content_type or DEFAULT_CONTENT_TYPE)
        return await asyncio.to_thread(self._put_bytes_sync, key, data, content_type)

    async def get_bytes(self, key: str) -> bytes:
        """Read an object; ObjectNotFound (a NotFound) when absent."""
        opened = await self.open_object(key)
        with opened.file:
            return await asyncio.to_thread(opened.file.read)

    async def head(self, key: str) -> StoredObject | None:
        """Metadata, or None when absent."""
        validate_key(key)
        return await asyncio.to_thread(self._head_sync, key)

    async def delete(self, key: str) -> None:
        """Delete an object (absent is fine)."""
        validate_key(key)
        await asyncio.to_thread(self._delete_sync, key)

    async def presign_download(
        self, key: str, *, expires_in: int | None = None, filename: str | None = None
    ) -> PresignedRequest:
        """A signed GET URL (HEAD works too); `filename` makes the browser save it under that name."""
        validate_key(key)
        if filename is not None:
            content_disposition(filename)  # validates
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        url = self.sign_url("get", key, expires_at=self._now() + lifetime, filename=filename or "")
        return PresignedRequest(url=url, method="GET", headers={}, expires_in=lifetime)

    async def presign_downloads(
        self, keys: Sequence[str], *, expires_in: int | None = None
    ) -> list[PresignedRequest]:
        """Signed GET URLs for many objects, in order, all with the same expiry."""
        for key in keys:
            validate_key(key)
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        expires_at = self._now() + lifetime
        urls = [self.sign_url("get", key, expires_at=expires_at) for key in keys]
        return [PresignedRequest(url=url, method="GET", headers={}, expires_in=lifetime) for url in urls]

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        expires_in: int | None = None,
        content_length: int | None = None,
        sha256: str | None = None,
    ) -> PresignedRequest:
        """A signed PUT URL for one object up to 5 GiB; Content-Type (and length, checksum) are the grant.

        As on S3: a bound length must be the request's Content-Length, and a bound SHA-256 must be sent
        as x-amz-checksum-sha256 and match the body (checked while writing; nothing is stored otherwise).
        """
        validate_key(key)
        validate_content_type(content_type)
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        headers = {"Content-Type": content_type}
        if content_length is not None:
            validate_content_length(content_length, MAX_SINGLE_PUT_BYTES)
        if sha256 is not None:
            sha256 = validate_sha256(sha256)
            headers[CHECKSUM_SHA256_HEADER] = checksum_sha256_value(sha256)
        url = self.sign_url(
            "put",
            key,
            expires_at=self._now() + lifetime,
            content_type=content_type,
            content_length=content_length,
            sha256=sha256 or "",
        )
        return PresignedRequest(url=url, method="PUT", headers=headers, expires_in=lifetime)

    async def create_multipart_upload(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; return its upload id."""
        validate_key(key)
        validate_content_type(content_type)
        return await asyncio.to_thread(self._create_upload_sync, key, content_type)

    async def presign_upload_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int | None = None,
        content_length: int | None = None,
    ) -> PresignedRequest:
        """A signed PUT URL for one part (1..10000) of up to 5 GiB, of exactly `content_length` when given."""
        validate_key(key)
        self._upload_dir(upload_id)
        validate_part_number(part_number)
        if content_length is not None:
            validate_content_length(content_length, MAX_PART_BYTES)
        lifetime = resolve_expires_in(expires_in, self.default_expires_in)
        url = self.sign_url(
            "part",
            key,
            expires_at=self._now() + lifetime,
            upload_id=upload_id,
            part_number=part_number,
            content_length=content_length,
        )
        return PresignedRequest(url=url, method="PUT", headers={}, expires_in=lifetime)

    async def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        """Parts uploaded so far, by ascending part number (to resume an upload)."""
        validate_key(key)
        return await asyncio.to_thread(self._list_parts_sync, key, upload_id)

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: list[UploadedPart]
    ) -> StoredObject:
        """Check the listed parts against the uploaded ones and assemble them into the object."""
        validate_key(key)
        check_completion_parts(parts)
        return await asyncio.to_thread(self._complete_sync, key, upload_id, parts)

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        """Discard an unfinished upload and its parts (an unknown upload is fine)."""
        validate_key(key)
        await asyncio.to_thread(self._abort_sync, key, upload_id)

    async def download_file(self, key: str, path: Path) -> StoredObject:
        """Copy the object into a local file (written beside it, then renamed); ObjectNotFound when absent."""
        validate_key(key)
        return await asyncio.to_thread(self._download_sync, key, Path(path))

    async def upload_file(
        self, key: str, path: Path, *, content_type: str, cache_control: str | None = None
    ) -> StoredObject:
        """Copy a local file into the object, atomically (Cache-Control kept in its metadata)."""
        validate_key(key)
        validate_content_type(content_type)
        return await asyncio.to_thread(self._upload_sync, key, Path(path), content_type, cache_control)

    async def list_keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix`, sorted."""
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list_keys_sync, prefix)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix`; return how many."""
        keys = await self.list_keys(prefix)
        for key in keys:
            await asyncio.to_thread(self._delete_sync, key)
        return len(keys)

    # --- used by the HTTP side (local_http) ---------------------------------------------------------

    def sign_url(
        self,
        op: SignedOp,
        key: str,
        *,
        expires_at: int,
        upload_id: str = "",
        part_number: int = 0,
        content_type: str = "",
        filename: str = "",
        content_length: int | None = None,
        sha256: str = "",
    ) -> str:
        """Build a signed URL for `op` on `key` valid until the unix time `expires_at`."""
        validate_key(key)
        length = "" if content_length is None else str(content_length)
        params: dict[str, str] = {"op": op}
        if op == "part":
            params.update(upload=upload_id, part=str(part_number))
        if content_type:
            params["ct"] = content_type
        if filename:
            params["fn"] = filename
        if length:
            params["len"] = length
        if sha256:
            params["sha"] = sha256
        params["exp"] = str(expires_at)
        params["sig"] = self._signature(
            op,
            key,
            str(expires_at),
            upload_id,
            str(part_number) if part_number else "",
            content_type,
            filename,
            length,
            sha256,
        )
        return f"{self.base_url}{STORAGE_PATH_PREFIX}{quote(key, safe='/')}?{urlencode(params)}"

    def verify(self, key: str, params: Mapping[str, str], *, method: str) -> SignedGrant:
        """Check a signed URL's signature, expiry and method; return what it grants."""
        validate_key(key)
        op, sig, exp = params.get("op", ""), params.get("sig", ""), params.get("exp", "")
        upload_id, part = params.get("upload", ""), params.get("part", "")
        content_type, filename = params.get("ct", ""), params.get("fn", "")
        length, sha256 = params.get("len", ""), params.get("sha", "")
        if op not in ("get", "put", "part") or not sig or not _DIGITS.fullmatch(exp):
            raise InvalidSignature("This is not a signed storage URL.")
        if (op == "part") != bool(upload_id and _DIGITS.fullmatch(part)):
            raise InvalidSignature("This is not a signed storage URL.")
        if (length and not _DIGITS.fullmatch(length)) or (sha256 and not _SHA256.fullmatch(sha256)):
            raise InvalidSignature("This is not a signed storage URL.")
        expected = self._signature(op, key, exp, upload_id, part, content_type, filename, length, sha256)
        # Both sides as bytes: compare_digest refuses non-ASCII str, which a forged URL may carry.
        if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
            raise InvalidSignature("The URL's signature does not match.")
        if int(exp) < self._now():
            raise UrlExpired("The signed URL has expired.")
        allowed = ("GET", "HEAD") if op == "get" else ("PUT",)
        if method not in allowed:
            raise InvalidSignature(f"This URL was signed for {' or '.join(allowed)}, not {method}.")
        return SignedGrant(
            op=cast(SignedOp, op),  # checked against the three ops above
            key=key,
            expires_at=int(exp),
            upload_id=upload_id,
            part_number=int(part) if op == "part" else 0,
            content_type=content_type,
            filename=filename,
            content_length=int(length) if length else None,
            sha256=sha256,
        )

    async def open_object(self, key: str) -> OpenedObject:
        """Open an object for streaming; ObjectNotFound when absent. The caller closes `file`."""
        validate_key(key)
        return await asyncio.to_thread(self._open_sync, key)

    async def write_object_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str,
        content_length: int | None = None,
        sha256: str | None = None,
    ) -> StoredObject:
        """Store a streamed body as the object, atomically, refusing more than `max_object_size`.

        With `content_length` the body must have exactly that size (IncompleteBody), with `sha256` that
        digest (BadDigest); a refused body leaves nothing behind and an earlier object untouched.
        """
        validate_key(key)
        validate_content_type(content_type)
        temp, etag = await self._receive(
            chunks,
            self.max_object_size,
            content_length=content_length,
            sha256=validate_sha256(sha256) if sha256 else None,
        )
        try:
            return await asyncio.to_thread(self._publish_object, key, temp, etag, content_type)
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def write_part_stream(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        chunks: AsyncIterable[bytes],
        *,
        content_length: int | None = None,
    ) -> UploadedPart:
        """Store a streamed part of a multipart upload (replacing an earlier upload of that part)."""
        validate_key(key)
        validate_part_number(part_number)
        await asyncio.to_thread(self._load_upload, key, upload_id)  # fail before reading the body
        temp, etag = await self._receive(chunks, self.max_part_size, content_length=content_length)
        try:
            return await asyncio.to_thread(self._publish_part, key, upload_id, part_number, temp, etag)
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    # --- internals ----------------------------------------------------------------------------------

    def _now(self) -> int:
        return int(self._clock())

    def _signature(
        self,
        op: str,
        key: str,
        exp: str,
        upload_id: str,
        part: str,
        content_type: str,
        filename: str,
        length: str,
        sha256: str,
    ) -> str:
        # JSON keeps the canonical form unambiguous whatever the fields contain.
        canonical = json.dumps(
            ["cinema-storage-v2", op, key, exp, upload_id, part, content_type, filename, length, sha256],
            separators=(",", ":"),
        )
        mac = hmac.new(self._secret, canonical.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    async def _receive(
        self,
        chunks: AsyncIterable[bytes],
        limit: int,
        *,
        content_length: int | None = None,
        sha256: str | None = None,
    ) -> tuple[Path, str]:
        """Stream a body into a temp file (md5, and sha256 when bound, on the way); return it and its ETag."""
        temp, handle = await asyncio.to_thread(self._new_temp)
        digest = hashlib.md5(usedforsecurity=False)
        checksum = hashlib.sha256() if sha256 else None
        size = 0
        buffer = bytearray()
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise ObjectTooLarge(f"The body exceeds the limit of {limit} bytes.")
                if content_length is not None and size > content_length:
                    raise IncompleteBody(f"The body is longer than the {content_length} bytes announced.")
                buffer += chunk
                # Batch the many small ASGI chunks so each thread hop writes about a megabyte.
                if len(buffer) >= _WRITE_BUFFER:
                    await asyncio.to_thread(_write_chunk, handle, digest, bytes(buffer), checksum)
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(_write_chunk, handle, digest, bytes(buffer), checksum)
            await asyncio.to_thread(handle.close)
            if content_length is not None and size != content_length:
                raise IncompleteBody(f"{size} bytes arrived; the upload was signed for {content_length}.")
            if checksum is not None and not hmac.compare_digest(checksum.hexdigest(), sha256 or ""):
                raise BadDigest("The body's SHA-256 does not match the checksum the upload was signed for.")
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise
        return temp, quote_etag(digest.hexdigest())

    def _new_temp(self) -> tuple[Path, BinaryIO]:
        folder = self.root / ".tmp"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / secrets.token_hex(16)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return path, os.fdopen(fd, "wb")

    def _place(self, temp: Path, final: Path) -> None:
        """Move a finished temp file over `final` atomically, creating its folders."""
        for attempt in range(3):
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, final)
                return
            except FileNotFoundError:
                # A concurrent delete pruned the parent folder between mkdir and replace: try again.
                if attempt == 2 or not temp.exists():
                    raise
            except OSError as error:
                if error.errno in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENOTEMPTY):
                    raise ObjectKeyConflict(
                        "Locally a key cannot be both an object and a prefix of other keys."
                    ) from error
                raise

    def _write_json(self, final: Path, data: dict[str, Any]) -> None:
        temp, handle = self._new_temp()
        try:
            with handle:
                handle.write(json.dumps(data).encode())
            self._place(temp, final)
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _publish_object(self, key: str, temp: Path, etag: str, content_type: str) -> StoredObject:
        info = temp.stat()
        self._place(temp, self._object_path(key))
        # Data first, then metadata: a reader in between sees a size/mtime mismatch and rehashes.
        self._write_json(
            self._meta_path(key),
            {"content_type": content_type, "etag": etag, "size": info.st_size, "mtime_ns": info.st_mtime_ns},
        )
        return StoredObject(key=key, size=info.st_size, etag=etag, content_type=content_type)

    def _describe(self, key: str, handle: BinaryIO, info: os.stat_result) -> StoredObject:
        meta = self._read_json(self._meta_path(key))
        etag = meta.get("etag")
        fresh = meta.get("size") == info.st_size and meta.get("mtime_ns") == info.st_mtime_ns
        if not (fresh and isinstance(etag, str)):
            etag = _md5_file(handle)  # written by hand, or overwritten while we looked
        content_type = meta.get("content_type")
        if not isinstance(content_type, str):
            content_type = DEFAULT_CONTENT_TYPE
        return StoredObject(key=key, size=info.st_size, etag=etag, content_type=content_type)

    def _open_sync(self, key: str) -> OpenedObject:
        try:
            handle: BinaryIO = open(self._object_path(key), "rb")  # noqa: SIM115  # the caller closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(f"No object is stored under {key!r}.") from None
        try:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ObjectNotFound(f"No object is stored under {key!r}.")
            return OpenedObject(file=handle, info=self._describe(key, handle, info), modified=info.st_mtime)
        except BaseException:
            handle.close()
            raise

    def _head_sync(self, key: str) -> StoredObject | None:
        try:
            opened = self._open_sync(key)
        except ObjectNotFound:
            return None
        with opened.file:
            return opened.info

    def _check_sync(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"storage folder {self.root} is not writable")

    def _put_bytes_sync(self, key: str, data: bytes, content_type: str) -> StoredObject:
        temp, handle = self._new_temp()
        try:
            with handle:
                handle.write(data)
            etag = quote_etag(hashlib.md5(data, usedforsecurity=False).hexdigest())
            return self._publish_object(key, temp, etag, content_type)
        finally:
            temp.unlink(missing_ok=True)

    def _download_sync(self, key: str, path: Path) -> StoredObject:
        opened = self._open_sync(key)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            with opened.file, open(temp, "wb") as target:
                shutil.copyfileobj(opened.file, target, _COPY_BUFFER)
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
        return opened.info

    def _upload_sync(
        self, key: str, path: Path, content_type: str, cache_control: str | None
    ) -> StoredObject:
        temp, handle = self._new_temp()
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with handle, open(path, "rb") as source:
                while chunk := source.read(_COPY_BUFFER):
                    _write_chunk(handle, digest, chunk)
            stored = self._publish_object(key, temp, quote_etag(digest.hexdigest()), content_type)
        finally:
            temp.unlink(missing_ok=True)
        if cache_control:
            meta = self._read_json(self._meta_path(key))
            self._write_json(self._meta_path(key), {**meta, "cache_control": cache_control})
        return stored

    def _list_keys_sync(self, prefix: str) -> list[str]:
        # Walk only the folder the prefix names (up to its last '/'); a partial last segment filters.
        folder = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        keys: list[str] = []
        if not folder.is_dir():
            return keys
        for current, dirs, files in os.walk(folder):
            # .meta, .tmp and .multipart hold no objects (no key segment may start with '.').
            dirs[:] = [name for name in dirs if not name.startswith(".")]
            base = Path(current).relative_to(self.root).as_posix()
            for name in files:
                if name.startswith("."):
                    continue
                key = name if base == "." else f"{base}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def _delete_sync(self, key: str) -> None:
        for path, top in ((self._object_path(key), self.root), (self._meta_path(key), self.root / ".meta")):
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            self._prune(path.parent, top)

    @staticmethod
    def _prune(folder: Path, top: Path) -> None:
        """Remove folders left empty, so a deleted "a/b" does not block a later object "a"."""
        while folder != top and top in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _create_upload_sync(self, key: str, content_type: str) -> str:
        upload_id = secrets.token_hex(16)
        folder = self._upload_dir(upload_id)
        folder.mkdir(parents=True)
        self._write_json(folder / "upload.json", {"key": key, "content_type": content_type})
        return upload_id

    def _load_upload(self, key: str, upload_id: str) -> dict[str, Any]:
        upload = self._read_json(self._upload_dir(upload_id) / "upload.json")
        if upload.get("key") != key:
            raise NoSuchUpload("The upload does not exist (completed, aborted or never created).")
        return upload

    def _publish_part(
        self, key: str, upload_id: str, part_number: int, temp: Path, etag: str
    ) -> UploadedPart:
        self._load_upload(key, upload_id)
        folder = self._upload_dir(upload_id)
        info = temp.stat()
        try:
            os.replace(temp, folder / str(part_number))
        except FileNotFoundError:
            raise NoSuchUpload("The upload was completed or aborted during the transfer.") from None
        self._write_json(
            folder / f"{part_number}.json", {"etag": etag, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
        )
        return UploadedPart(part_number=part_number, etag=etag, size=info.st_size)

    def _list_parts_sync(self, key: str, upload_id: str) -> list[UploadedPart]:
        self._load_upload(key, upload_id)
        folder = self._upload_dir(upload_id)
        parts = []
        for entry in os.scandir(folder):
            if not (entry.name.isascii() and entry.name.isdigit()) or not entry.is_file():
                continue
            with open(entry.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                meta = self._read_json(folder / f"{entry.name}.json")
                etag = meta.get("etag")
                if not (
                    isinstance(etag, str)
                    and meta.get("size") == info.st_size
                    and meta.get("mtime_ns") == info.st_mtime_ns
                ):
                    etag = _md5_file(handle)
            parts.append(UploadedPart(part_number=int(entry.name), etag=etag, size=info.st_size))
        return sorted(parts, key=lambda part: part.part_number)

    def _complete_sync(self, key: str, upload_id: str, parts: list[UploadedPart]) -> StoredObject:
        upload = self._load_upload(key, upload_id)
        folder = self._upload_dir(upload_id)
        uploaded = {part.part_number: part for part in self._list_parts_sync(key, upload_id)}
        for index, listed in enumerate(parts):
            actual = uploaded.get(listed.part_number)
            if actual is None:
                raise InvalidPart(f"Part {listed.part_number} was not uploaded.")
            if normalize_etag(actual.etag) != normalize_etag(listed.etag):
                raise InvalidPart(f"The ETag of part {listed.part_number} does not match the uploaded part.")
            if index < len(parts) - 1 and actual.size < self.min_part_size:
                raise EntityTooSmall(
                    f"Part {listed.part_number} is {actual.size} bytes; all but the last part need "
                    f"at least {self.min_part_size}."
                )
        temp, handle = self._new_temp()
        try:
            with handle:
                for listed in parts:
                    with open(folder / str(listed.part_number), "rb") as source:
                        shutil.copyfileobj(source, handle, _COPY_BUFFER)
            etag = multipart_etag([uploaded[listed.part_number].etag for listed in parts])
            content_type = upload.get("content_type") or DEFAULT_CONTENT_TYPE
            stored = self._publish_object(key, temp, etag, content_type)
        finally:
            temp.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        return stored

    def _abort_sync(self, key: str, upload_id: str) -> None:
        try:
            self._load_upload(key, upload_id)
        except NoSuchUpload:
            return  # aborting twice, or after completion, is not an error worth surfacing
        shutil.rmtree(self._upload_dir(upload_id), ignore_errors=True)
