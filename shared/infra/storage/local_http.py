"""The dev server's stand-in for S3: serves LocalStorage's signed URLs under /_storage/ (GET, HEAD, PUT)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from typing import BinaryIO

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from shared.errors import AppError, NotFound
from shared.http.problems import app_error_response, problem_response
from shared.infra.storage.base import Storage
from shared.infra.storage.local import LocalStorage, OpenedObject, SignedGrant
from shared.infra.storage.rules import (
    CHECKSUM_SHA256_HEADER,
    ChecksumHeaderMismatch,
    ContentLengthMismatch,
    ContentTypeMismatch,
    ObjectTooLarge,
    checksum_sha256_value,
    content_disposition,
)

StorageProvider = Callable[[], Awaitable[Storage]]

_READ_CHUNK = 256 * 1024
_RANGE = re.compile(r"\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*")
_LENGTH = re.compile(r"[0-9]{1,20}")

# Signed URLs are capabilities carrying no cookies, so any origin may use them (like a bucket CORS rule
# of "*"); the browser must be allowed to read ETag, which multipart uploads need to complete.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "ETag, Content-Length, Content-Range, Accept-Ranges",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, PUT",
    "Access-Control-Allow-Headers": f"Content-Type, Range, If-None-Match, If-Range, {CHECKSUM_SHA256_HEADER}",
    "Access-Control-Max-Age": "3600",
}
# Uploaded files are served from the app's own origin in dev: never let one run as a page there.
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
}


class RangeNotSatisfiable(AppError):
    """The requested byte range starts beyond the end of the object."""

    status = 416
    code = "range_not_satisfiable"
    title = "Range not satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b`, `a-` or `-n` range as inclusive (start, end); None means send it all."""
    if not header:
        return None
    match = _RANGE.fullmatch(header)
    if not match or not any(match.groups()):
        return None  # several ranges or another unit: ignoring Range is allowed (RFC 9110 14.2)
    first, last = match.groups()
    unsatisfiable = RangeNotSatisfiable(
        f"The object has {size} bytes.", headers={"Content-Range": f"bytes */{size}", **CORS_HEADERS}
    )
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored like an unknown unit
    if start >= size:
        raise unsatisfiable  # includes "bytes=20-" on a shorter object
    return start, min(int(last) if last else size - 1, size - 1)


async def _file_chunks(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(_READ_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def _etag_matches(header: str, etag: str) -> bool:
    candidates = [item.strip().removeprefix("W/") for item in header.split(",")]
    return "*" in candidates or etag in candidates


def _download(request: Request, opened: OpenedObject, grant: SignedGrant) -> Response:
    info = opened.info
    headers = {
        "ETag": info.etag,
        "Accept-Ranges": "bytes",
        "Last-Modified": formatdate(opened.modified, usegmt=True),
        "Cache-Control": "private, no-cache",
        **CORS_HEADERS,
        **SAFETY_HEADERS,
    }
    if grant.filename:
        headers["Content-Disposition"] = content_disposition(grant.filename)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and _etag_matches(if_none_match, info.etag):
        opened.file.close()
        return Response(status_code=304, headers=headers)
    byte_range = None
    if_range = request.headers.get("if-range")
    if if_range is None or if_range.strip() == info.etag:
        byte_range = parse_range(request.headers.get("range"), info.size)
    media_type = info.content_type or "application/octet-stream"
    return ranged_response(opened, byte_range, method=request.method, headers=headers, media_type=media_type)


def ranged_response(
    opened: OpenedObject,
    byte_range: tuple[int, int] | None,
    *,
    method: str,
    headers: dict[str, str],
    media_type: str,
) -> Response:
    """The object (or a range of it: 206) streamed, or its headers alone for HEAD; the file is closed."""
    size = opened.info.size
    start, end, status = 0, size - 1, 200
    if byte_range is not None:
        start, end = byte_range
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if method == "HEAD":
        opened.file.close()
        return Response(status_code=status, headers=headers, media_type=media_type)
    # The generator closes the file; the background task covers a response never started.
    return StreamingResponse(
        _file_chunks(opened.file, start, length),
        status_code=status,
        headers=headers,
        media_type=media_type,
        background=BackgroundTask(opened.file.close),
    )


def _refuse_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if _LENGTH.fullmatch(declared) and int(declared) > limit:
        raise ObjectTooLarge(f"The body exceeds the limit of {limit} bytes.")


def _require_signed_length(request: Request, grant: SignedGrant) -> None:
    # S3 signs Content-Length when the URL binds it: another value, or none (chunked), fails the signature.
    expected = grant.content_length
    if expected is not None and request.headers.get("content-length") != str(expected):
        raise ContentLengthMismatch(f"This URL accepts only a body of exactly {expected} bytes.")


async def _upload(request: Request, storage: LocalStorage, grant: SignedGrant) -> Response:
    # S3 signs the header, so anything but the exact signed value is refused, as there.
    if request.headers.get("content-type", "") != grant.content_type:
        raise ContentTypeMismatch(f"This URL accepts only Content-Type: {grant.content_type}.")
    _require_signed_length(request, grant)
    if grant.sha256 and request.headers.get(CHECKSUM_SHA256_HEADER) != checksum_sha256_value(grant.sha256):
        raise ChecksumHeaderMismatch(f"This URL needs the {CHECKSUM_SHA256_HEADER} header it was signed for.")
    _refuse_declared_length(request, storage.max_object_size)
    stored = await storage.write_object_stream(
        grant.key,
        request.stream(),
        content_type=grant.content_type,
        content_length=grant.content_length,
        sha256=grant.sha256 or None,
    )
    headers = {"ETag": stored.etag, **CORS_HEADERS}
    if grant.sha256:
        headers[CHECKSUM_SHA256_HEADER] = checksum_sha256_value(grant.sha256)  # as S3 answers
    return Response(status_code=200, headers=headers)


async def _upload_part(request: Request, storage: LocalStorage, grant: SignedGrant) -> Response:
    _require_signed_length(request, grant)
    _refuse_declared_length(request, storage.max_part_size)
    part = await storage.write_part_stream(
        grant.key, grant.upload_id, grant.part_number, request.stream(), content_length=grant.content_length
    )
    return Response(status_code=200, headers={"ETag": part.etag, **CORS_HEADERS})


def _problem(request: Request, error: AppError) -> Response:
    return app_error_response(error, instance=request.url.path, headers=CORS_HEADERS)


async def _default_provider() -> Storage:
    from shared.infra.storage import get_storage

    return await get_storage()


def create_storage_app(provider: StorageProvider | None = None) -> Starlette:
    """The ASGI app for /_storage/ URLs, serving the storage `provider` returns (get_storage by default)."""
    get = provider or _default_provider

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=PREFLIGHT_HEADERS)
        try:
            storage = await get()
            if not isinstance(storage, LocalStorage):
                raise NotFound("Signed /_storage/ URLs are served only with STORAGE_BACKEND=local.")
            grant = storage.verify(request.path_params["key"], request.query_params, method=request.method)
            if grant.op == "get":
                opened = await storage.open_object(grant.key)
                try:
                    return _download(request, opened, grant)
                except BaseException:
                    opened.file.close()
                    raise
            if grant.op == "put":
                return await _upload(request, storage, grant)
            return await _upload_part(request, storage, grant)
        except AppError as error:
            return _problem(request, error)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; the temp file is already gone

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem_response(
            status=exc.status_code,
            code=code,
            title=code.replace("_", " ").capitalize(),
            detail=str(exc.detail),
            instance=request.url.path,
            headers={**CORS_HEADERS, **dict(exc.headers or {})},
        )

    return Starlette(
        routes=[Route("/_storage/{key:path}", endpoint, methods=["GET", "HEAD", "PUT", "OPTIONS"])],
        exception_handlers={HTTPException: http_error},
    )


app = create_storage_app()
